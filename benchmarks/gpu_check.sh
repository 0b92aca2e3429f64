#!/usr/bin/env bash
# Our tasks under lm-eval's in-process vLLM beside lc_hf, on one small model, on a CUDA GPU.
#
#   bash benchmarks/gpu_check.sh                      # SmolLM2-135M-Instruct, 4k-32k
#   LENGTHS="4k 8k" LIMIT=3 bash benchmarks/gpu_check.sh /path/to/hf-folder
#
# For each length: lc_passkey and lc_niah_single (LIMIT docs, 3 depths) through
# `lc-eval run --model vllm` (max_model_len = the length, so the guard and the sizing are the
# ones a user meets) and `--model lc_hf --device cuda`, then the two runs' greedy answers side
# by side (benchmarks/bench_served.py's comparison). Needs vllm (pip install vllm) and the
# model: a local HF folder, or by default the SmolLM2 GGUF of `lc-eval zoo`, dequantized to a
# float32 HF folder here. vLLM takes lengths past the model's trained 8192 positions only with
# VLLM_ALLOW_LONG_MAX_MODEL_LEN=1, which this script sets: those cells measure the model past its
# training length, as lc_hf's do. It has not run yet: no GPU machine was lent where it was written.
set -euo pipefail
cd "$(dirname "$0")/.."

MODEL=${1:-smollm2-135m-instruct}
OUT=${OUT:-benchmarks/out/gpu_check}
LENGTHS=${LENGTHS:-4k 8k 16k 32k}
LIMIT=${LIMIT:-6}
mkdir -p "$OUT"

python -c "import vllm, torch; assert torch.cuda.is_available()" 2>/dev/null || {
  echo "gpu_check: needs vllm (pip install vllm) and a CUDA GPU" >&2; exit 2; }

if [ ! -d "$MODEL" ]; then  # a zoo name or .gguf: an HF folder vLLM loads
  HF="$OUT/hf-model"
  python - "$MODEL" "$HF" <<'EOF'
import sys
from pathlib import Path
from lc_tasks.tokenizer import checkpoint_location, load_tokenizer
from transformers import AutoModelForCausalLM
folder, gguf = checkpoint_location(sys.argv[1])
if not Path(sys.argv[2], "config.json").is_file():
    AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf).save_pretrained(sys.argv[2])
    load_tokenizer(sys.argv[1]).save_pretrained(sys.argv[2])
EOF
  MODEL="$HF"
fi

export VLLM_ALLOW_LONG_MAX_MODEL_LEN=1
declare -A TOKENS=([1k]=1024 [2k]=2048 [4k]=4096 [8k]=8192 [16k]=16384 [32k]=32768 [64k]=65536)
for L in $LENGTHS; do
  TASKS="lc_passkey_$L,lc_niah_single_$L"
  META="{\"num_samples\": $LIMIT, \"depths\": 3}"
  /usr/bin/time -f "vllm $L %e s" lc-eval run --model vllm \
    --model_args "pretrained=$MODEL,max_model_len=${TOKENS[$L]},dtype=float32,gpu_memory_utilization=0.5" \
    --tasks "$TASKS" --limit "$LIMIT" --metadata "$META" \
    --output_path "$OUT/vllm_$L" --log_samples 2>&1 | tail -n 8
  /usr/bin/time -f "lc_hf $L %e s" lc-eval run --model lc_hf \
    --model_args "pretrained=$MODEL,dtype=float32" --device cuda \
    --tasks "$TASKS" --limit "$LIMIT" --metadata "$META" \
    --output_path "$OUT/lc_hf_$L" --log_samples 2>&1 | tail -n 8
  python - "$OUT/vllm_$L" "$OUT/lc_hf_$L" <<'EOF'
import sys
from pathlib import Path
sys.path.insert(0, "benchmarks")
from bench_served import compare, samples
rows, agree = compare(samples(Path(sys.argv[1])), samples(Path(sys.argv[2])))
print(f"{Path(sys.argv[1]).name}: answers agree on {agree}/{len(rows)} docs")
for r in rows:
    if r["served"].strip() != r["lc_hf"].strip() or not r["same_prompt"]:
        print(f"  {r['task']} doc {r['doc']}: vllm {r['served']!r} lc_hf {r['lc_hf']!r} "
              f"same prompt {r['same_prompt']}")
EOF
done
