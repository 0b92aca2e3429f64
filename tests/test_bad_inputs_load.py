"""Bad inputs found at load, each one clear line through the real ``lc-eval`` executable
(issue 34): a tokenizer with ids past the model's embedding (every checkpoint format), a
checkpoint with integer weights (native, or a transformers folder), a sparse-attention model
lc_hf cannot run exactly, a report over NaN scores. Each case asserts a non-zero exit, no traceback, and a last line that
names the value and the fix (the pattern of ``test_cli_errors.py``)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from conftest import run_cli, tiny_sparse

from lc_models import zoo

RUN = ["run", "--device", "cpu", "--tasks", "lc_passkey_1k", "--limit", "1",
       "--metadata", json.dumps({"num_samples": 1})]
SMOL = "smollm2-135m-instruct"
GGUF_CASE = "GGUF with a tokenizer past its rows"  # run only where SMOL is installed


def lc_hf(args: str) -> list[str]:
    return ["--model", "lc_hf", "--model_args", args]


def wide_tokenizer(folder, offset=60000):
    """A word-level tokenizer whose ids start at ``offset`` (past any tiny model's rows)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<unk>", "<s>", "</s>", "the", "pass", "key", "is"]
    tok = Tokenizer(models.WordLevel({w: offset + i for i, w in enumerate(words)}, "<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>",
                            eos_token="</s>").save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def cases(tmp_path_factory, tiny_model, tokenizer_dir):
    """id -> (lc-eval arguments, what the last line must contain)."""
    import shutil

    from report_helpers import write_run
    from safetensors.torch import load_file, save_file

    from lc_models.zoo.tiny import build_tokenizer
    from lc_models.zoo.tiny_native import MAMBA_SSM_CONFIGS, rwkv6_state, save_mamba_ssm

    root = tmp_path_factory.mktemp("load-checks")
    char, bpe = tokenizer_dir("char"), tokenizer_dir("bpe")
    wide = wide_tokenizer(root / "wide")
    mamba = root / "mamba-small-vocab"
    save_mamba_ssm(mamba, MAMBA_SSM_CONFIGS["mamba2"], vocab_size=40)  # 48 rows, char has 104
    rwkv_small = root / "rwkv-small.pth"
    torch.save(rwkv6_state(vocab_size=64), rwkv_small)  # the World tokenizer has 65529 ids
    rwkv_int = root / "rwkv-int.pth"
    state = rwkv6_state()
    state["head.weight"] = (state["head.weight"] * 100).to(torch.int16)
    torch.save(state, rwkv_int)
    hf_int = root / "hf-int"
    shutil.copytree(tiny_model("llama"), hf_int)
    weights = load_file(hf_int / "model.safetensors")
    key = "model.layers.0.mlp.down_proj.weight"
    weights[key] = (weights[key] * 100).to(torch.int8)
    save_file(weights, hf_int / "model.safetensors", metadata={"format": "pt"})
    hf_bin = root / "hf-bin"
    shutil.copytree(tiny_model("llama"), hf_bin, ignore=shutil.ignore_patterns("*.safetensors"))
    weights = load_file(tiny_model("llama") / "model.safetensors")
    weights["model.norm.weight"] = weights["model.norm.weight"].to(torch.int32)
    torch.save(weights, hf_bin / "pytorch_model.bin")
    sparse = root / "sparse"
    tok = build_tokenizer("char")
    tiny_sparse(len(tok), index_topk=8, bos_token_id=1, eos_token_id=2,
                pad_token_id=0).save_pretrained(sparse)
    tok.save_pretrained(sparse)
    nan_runs = root / "nan-runs"
    write_run(nan_runs, {"pretrained": "/ckpt/llama"},
              {"lc_passkey_1k": [1.0, 0.0], "lc_vt_1k": [float("nan"), 1.0]})
    out = {
        "HF folder with a bigger tokenizer": (
            [*RUN, *lc_hf(f"pretrained={tiny_model('llama')},tokenizer={bpe}")],
            (f"tokenizer='{bpe}' has token ids up to 511, but the model's input embedding "
             "has 104 rows")),
        "native mamba_ssm with a bigger tokenizer": (
            [*RUN, *lc_hf(f"pretrained={mamba},tokenizer={char}")],
            "has token ids up to 103, but the model's input embedding has 48 rows"),
        "native RWKV .pth with the World tokenizer past its rows": (
            [*RUN, *lc_hf(f"pretrained={rwkv_small}")],
            "has token ids up to 65529, but the model's input embedding has 64 rows"),
        "native .pth with integer weights": (
            [*RUN, *lc_hf(f"pretrained={rwkv_int}")],
            "weight 'head.weight' holds int16 values, not floating point"),
        "HF folder with integer weights": (
            [*RUN, *lc_hf(f"pretrained={hf_int}")],
            ("model.safetensors stores weight 'model.layers.0.mlp.down_proj.weight' as I8, "
             "not floating point")),
        "HF folder with integer weights in a .bin": (
            [*RUN, *lc_hf(f"pretrained={hf_bin}")],
            "pytorch_model.bin stores weight 'model.norm.weight' as int32, not floating point"),
        "sparse attention lc_hf cannot run exactly": (
            [*RUN, *lc_hf(f"pretrained={sparse},chunk_size=16")],
            ("refuses model type 'deepseek_v32': chunked prefill with its state differs "
             "from the full forward pass past index_topk=8")),
        "report over NaN scores": (
            ["report", str(nan_runs), "--out", str(root / "report"), "--no-figures"],
            "lc_vt_1k's acc,none is NaN, a run that failed or scored nothing; rerun that task"),
    }
    if zoo.REAL[SMOL].installed():
        out[GGUF_CASE] = (
            [*RUN, *lc_hf(f"pretrained={zoo.path(SMOL)},tokenizer={wide}")],
            "has token ids up to 60006, but the model's input embedding has 49152 rows")
    return out


@pytest.fixture(scope="module")
def outcomes(cases):
    def one(case):
        args, _ = cases[case]
        return run_cli("lc-eval", *args, check=False, timeout=600)

    with ThreadPoolExecutor(2) as pool:
        return dict(zip(cases, pool.map(one, cases)))


CASES = ["HF folder with a bigger tokenizer", "native mamba_ssm with a bigger tokenizer",
         "native RWKV .pth with the World tokenizer past its rows",
         "native .pth with integer weights", "HF folder with integer weights",
         "HF folder with integer weights in a .bin",
         "sparse attention lc_hf cannot run exactly",
         "report over NaN scores", GGUF_CASE]


@pytest.mark.parametrize("case", CASES)
def test_a_bad_input_at_load_is_one_line(case, cases, outcomes):
    if case not in cases:
        assert case == GGUF_CASE, f"{case!r} is not a case of the cases fixture"
        pytest.skip(f"{SMOL} is not installed")
    proc, expected = outcomes[case], cases[case][1]
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, f"{case}: exited 0\n{out[-2000:]}"
    assert "Traceback" not in out, f"{case}: a traceback\n{out[-3000:]}"
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert expected in lines[-1], f"{case}: last line {lines[-1]!r} lacks {expected!r}"
