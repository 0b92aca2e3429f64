"""RWKV-7 (x070) runs exactly through lc_hf, checked against BlinkDL's own `rwkv` package.

The tests write tiny random checkpoints in BlinkDL's native ``.pth`` format and in fla's HF
format (``lc_models.zoo.tiny_native.save_rwkv7``, the same weights, key names written from the
package and from fla's converter), and compare:
* our logits with the ``rwkv`` package's (``RWKV_V7_ON=1``, ``RWKV(..., "cpu fp32")
  .forward(full_output=True)``), in one call and continued from its state; the package reads
  its environment at import, so it runs in a process of its own;
* chunked prefill with the full forward, and greedy decoding with full recomputation;
* the two formats with each other.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from lc_models import models
from lc_models.adapter import LongContextLM
from lc_models.lengths import built_for
from lc_models.models import rwkv7
from lc_models.zoo.tiny_native import rwkv7_state, save_rwkv7

TOLERANCE = 1e-4  # relative to the largest |logit|; absolute for log-probabilities; fp32
PACKAGE = """
import json, sys, torch
from rwkv.model import RWKV
path, ids, first, second, out = sys.argv[1], *map(json.loads, sys.argv[2:5]), sys.argv[5]
model = RWKV(model=path, strategy="cpu fp32")
full, _ = model.forward(ids, None, full_output=True)
_, state = model.forward(first, None)
cont, _ = model.forward(second, state, full_output=True)
torch.save({"full": full, "continued": cont}, out)
"""


def tokens(n, seed=0, vocab=65536):
    return torch.randint(0, vocab, (n,), generator=torch.Generator().manual_seed(seed)).tolist()


def relative(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


def logprob_gap(logits, want):
    """The largest difference of the two log-probability tables (vocab axis last)."""
    return (logits.log_softmax(-1) - want.log_softmax(-1)).abs().max().item()


@pytest.fixture(scope="module")
def pth(tmp_path_factory):
    return save_rwkv7(tmp_path_factory.mktemp("rwkv7") / "tiny.pth", "pth", seed=3,
                      n_layer=3)


@pytest.fixture(scope="module")
def ours(pth):
    return models.find(pth).load(dtype=torch.float32)


def run_package(pth, out, vocab=65536, **env):
    """BlinkDL's rwkv package on ``pth``, in its own process (RWKV_V7_ON=1 and ``env``)."""
    ids, first, second = tokens(70, 0, vocab), tokens(23, 1, vocab), tokens(9, 2, vocab)
    env = {**os.environ, "RWKV_V7_ON": "1", "RWKV_CUDA_ON": "0", **env}
    proc = subprocess.run([sys.executable, "-c", PACKAGE, str(pth)[: -len(".pth")],
                           json.dumps(ids), json.dumps(first), json.dumps(second), str(out)],
                          check=False, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {"ids": ids, "first": first, "second": second, **torch.load(out)}


@pytest.fixture(scope="module")
def package_logits(pth, tmp_path_factory):
    return run_package(pth, tmp_path_factory.mktemp("package") / "logits.pt")


def test_logits_equal_blinkdl_rwkv_package(package_logits, ours):
    want = package_logits["full"]  # (70, vocab)
    got = ours(torch.tensor([package_logits["ids"]])).logits[0]
    assert relative(got, want) < TOLERANCE
    assert logprob_gap(got, want) < TOLERANCE


def test_state_carried_across_calls_equals_the_package_s_state(package_logits, ours):
    """Both continue a sequence from their own state: the continuations must agree."""
    state = ours.new_state(1)
    ours.prefill(torch.tensor([package_logits["first"]]), state)
    got = ours.prefill(torch.tensor([package_logits["second"]]), state)[0]
    assert logprob_gap(got, package_logits["continued"]) < TOLERANCE


def test_deep_embed_equals_the_package_with_rwkv_de_version_1(tmp_path):
    """The DeepEmbed variant (ffn.s_emb, s0/s1/s2) as rwkv 0.8.32 defines it."""
    path = save_rwkv7(tmp_path / "de.pth", seed=4, vocab_size=500, deep_embed=32)
    model = models.find(path).load(dtype=torch.float32)
    assert model.cfg.deep_embed == 32
    want = run_package(path, tmp_path / "logits.pt", vocab=500, RWKV_DE_VERSION="1")
    got = model(torch.tensor([want["ids"]])).logits[0]
    assert logprob_gap(got, want["full"]) < TOLERANCE
    state = model.new_state(1)
    model.prefill(torch.tensor([want["first"]]), state)
    got = model.prefill(torch.tensor([want["second"]]), state)[0]
    assert logprob_gap(got, want["continued"]) < TOLERANCE


@pytest.mark.parametrize("chunk", [1, 7, 16, 64])
def test_chunked_prefill_equals_the_full_forward(chunk, ours):
    ids = torch.tensor([tokens(100, seed=4), tokens(100, seed=5)])
    full = ours(ids).logits
    state = ours.new_state(2)
    parts = [ours.prefill(ids[:, s : s + chunk], state) for s in range(0, 100, chunk)]
    assert relative(torch.cat(parts, 1), full) < TOLERANCE
    assert state.layers[0].wkv.dtype == torch.float32


def test_greedy_generation_equals_decoding_by_full_recomputation(ours):
    prompt = tokens(12, seed=6)
    state = ours.new_state(1)
    logits = ours.prefill(torch.tensor([prompt]), state, last_only=True)
    fed, again = list(prompt), list(prompt)
    for _ in range(8):
        fed.append(int(logits[0, -1].argmax()))
        logits = ours.prefill(torch.tensor([fed[-1:]]), state)
        again.append(int(ours(torch.tensor([again])).logits[0, -1].argmax()))
    assert fed == again


def test_hf_format_and_native_pth_give_identical_logits(tmp_path):
    """Heads of 64, as every released RWKV-7 has: the package's GroupNorm eps 64e-5 is then
    fla's head_dim * norm_eps (they differ for other head sizes; each format keeps its own)."""
    shape = {"seed": 3, "n_layer": 3, "n_embd": 128, "head_size": 64, "vocab_size": 1000}
    folder = save_rwkv7(tmp_path / "hf", "hf", **shape)
    assert "model.layers.1.attn.v_lora.lora.0.weight" in _safetensors_keys(folder)
    hf = models.find(folder).load(dtype=torch.float32)
    pth = models.find(save_rwkv7(tmp_path / "m.pth", "pth", **shape)).load(dtype=torch.float32)
    ids = torch.tensor([tokens(31, vocab=1000)])
    assert torch.equal(hf(ids).logits, pth(ids).logits)


def test_group_norm_eps_follows_each_format(tmp_path, ours):
    hf = models.find(save_rwkv7(tmp_path / "hf", "hf", head_size=8)).config
    assert (ours.cfg.ln_x_eps, hf.ln_x_eps) == (64e-5, 8 * 1e-5)


def _safetensors_keys(folder):
    from safetensors import safe_open

    with safe_open(folder / "model.safetensors", framework="pt") as f:
        return set(f.keys())


def test_shapes_are_read_from_the_weights(tmp_path):
    path = save_rwkv7(tmp_path / "m.pth", n_embd=64, n_layer=3, head_size=16, decay_lora=4,
                      iclr_lora=12, value_lora=8, gate_lora=20, vocab_size=300)
    cfg = models.find(path).config
    assert (cfg.n_embd, cfg.n_layer, cfg.n_head, cfg.head_size, cfg.decay_lora, cfg.iclr_lora,
            cfg.value_lora, cfg.gate_lora, cfg.vocab_size, cfg.dim_ffn) == (
        64, 3, 4, 16, 4, 12, 8, 20, 300, 256)


def test_an_x060_pth_still_goes_to_the_rwkv6_loader(tmp_path):
    from lc_models.zoo.tiny_native import save_rwkv6

    assert models.find(save_rwkv6(tmp_path / "six.pth")).family.__name__.endswith("rwkv6")


def test_no_length_limit_whatever_fla_s_config_says(tmp_path, ours):
    """fla's max_position_embeddings (2048) is no limit: the model config names none."""
    hf = models.find(save_rwkv7(tmp_path / "hf", "hf")).hf_config
    assert hf.model_type == rwkv7.MODEL_TYPE
    assert built_for(hf) is None and built_for(ours.config) is None


def test_lc_hf_uses_the_world_tokenizer_for_rwkv7_checkpoints(pth):
    lm = LongContextLM(pretrained=str(pth), device="cpu", dtype="float32")
    assert type(lm.tokenizer).__name__ == "RwkvWorldTokenizer"
    assert lm.tok_encode("Hello world") == [33155, 40213]


def test_tasks_size_rwkv7_checkpoints_with_the_world_tokenizer(pth, tmp_path):
    from lc_tasks import tokenizer as task_tokenizer

    for pretrained in (pth, pth.parent, save_rwkv7(tmp_path / "hf", "hf")):
        tok = task_tokenizer.resolve_tokenizer({"pretrained": str(pretrained)})
        assert type(tok).__name__ == "RwkvWorldTokenizer", pretrained


def broken_pth(tmp_path, change):
    state = rwkv7_state(n_embd=32, vocab_size=100)
    change(state)
    torch.save(state, tmp_path / "bad.pth")
    return tmp_path / "bad.pth"


@pytest.mark.parametrize("change, message", [
    (lambda s: s.pop("blocks.1.att.k_a"), "missing key 'blocks.1.att.k_a'"),
    (lambda s: s.pop("blocks.0.att.w1"),
     r"is an RWKV-7 \(x070\) checkpoint without key 'blocks.0.att.w1'"),
    (lambda s: s.update({"blocks.0.ffn.s_emb.weight": torch.zeros(100, 32)}),
     "unexpected key 'blocks.0.ffn.s_emb.weight'"),
    (lambda s: [s.pop(k) for k in list(s) if k.endswith(".r_k")] and s.update(
        {"blocks.0.att.time_mix_k": torch.zeros(32)}), r"is an RWKV-4/5 checkpoint"),
], ids=["missing-key", "missing-shape-key", "unexpected-key", "rwkv5"])
def test_broken_pth_files_are_one_clear_error(change, message, tmp_path):
    with pytest.raises(ValueError, match=message) as err:
        models.find(broken_pth(tmp_path, change)).load()
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("edit, message", [
    ({"rescale_layers": 6}, "config.json field 'rescale_layers' is unknown"),
    ({"hidden_size": 64}, "config.json says hidden_size=64, but the weights have 32"),
    ({"attn": {"layers": [1], "num_heads": 4}}, "config.json attn=.* is not supported"),
    ({"value_dim": [64, 64]}, "value_dim=.* differs from hidden_size 32"),
], ids=["unknown-field", "wrong-size", "hybrid-attention", "value-dim"])
def test_hf_configs_it_does_not_understand_are_refused(edit, message, tmp_path):
    folder = save_rwkv7(tmp_path / "hf", "hf")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **edit}))
    with pytest.raises(ValueError, match=message) as err:
        models.find(folder)
    assert "\n" not in str(err.value)


def test_fla_reads_num_heads_only_without_head_dim(tmp_path):
    """fla-hub's configs say num_heads 32 beside head_dim 64; fla then ignores num_heads."""
    folder = save_rwkv7(tmp_path / "hf", "hf")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "num_heads": 32}))
    assert models.find(folder).config.n_head == 4
    (folder / "config.json").write_text(json.dumps({**config, "num_heads": 2,
                                                    "head_dim": None}))
    with pytest.raises(ValueError, match="config.json says num_heads=2, but the weights have 4"):
        models.find(folder)


def test_the_state_has_a_fixed_size_whatever_the_input_length(ours):
    state = ours.new_state(1)
    per_layer = 2 * 32 * 4 + 4 * 8 * 8 * 4  # two shifts of n_embd fp32, one 8x8 WKV per head
    assert state.nbytes() == per_layer * ours.cfg.n_layer
    ours.prefill(torch.tensor([tokens(50)]), state)
    assert state.nbytes() == per_layer * ours.cfg.n_layer


def test_lc_hf_scores_and_generates_with_a_tiny_rwkv7(pth):
    """lc_hf's loglikelihood (equal to one full forward) and generate_until, in process."""
    from lm_eval.api.instance import Instance

    lm = LongContextLM(pretrained=str(pth), device="cpu", dtype="float32", chunk_size=16)
    context = "The pass key is 12345. Remember it. " * 8 + "The pass key is"
    [(logprob, _)] = lm.loglikelihood([Instance("loglikelihood", {}, (context, " 12345"), 0)])
    [text] = lm.generate_until([Instance("generate_until", {}, (
        context, {"until": ["\n"], "max_gen_toks": 5, "do_sample": False}), 0)])
    ids = lm.tok_encode(context + " 12345")
    n = len(ids) - len(lm.tok_encode(context))
    want = ours_logprob(lm.model, ids, n)
    assert abs(logprob - want) < 1e-3 * max(1.0, abs(want))
    assert isinstance(text, str)


def ours_logprob(model, ids, n):
    """log p(last n tokens | the rest) by one full forward."""
    logp = model(torch.tensor([ids])).logits[0].log_softmax(-1)
    return sum(logp[i - 1, ids[i]].item() for i in range(len(ids) - n, len(ids)))


def test_lc_eval_cli_runs_passkey_1k_on_a_tiny_rwkv7_pth(tmp_path):
    from conftest import read_run, run_cli

    from lc_models.models.rwkv_world import world_tokenizer

    path = save_rwkv7(tmp_path / "model" / "tiny.pth", "pth")
    out = tmp_path / "out"
    run_cli("lc-eval", "run", "--model", "lc_hf", "--model_args",
            f"pretrained={path},chunk_size=64,dtype=float32", "--tasks", "lc_passkey_1k",
            "--limit", "2", "--device", "cpu", "--metadata", json.dumps({"num_samples": 2}),
            "--output_path", str(out), "--log_samples")
    results = read_run(out)
    assert 0.0 <= results["results"]["lc_passkey_1k"]["acc,none"] <= 1.0
    samples = [json.loads(line) for p in out.rglob("samples_lc_passkey_1k*.jsonl")
               for line in p.read_text().splitlines()]
    assert len(samples) == 2
    tok = world_tokenizer()
    for sample in samples:  # prompts sized with the World tokenizer, picked by itself
        doc = sample["doc"]
        assert len(tok(doc["input"])["input_ids"]) == doc["n_tokens"]
        assert doc["n_tokens"] + 16 <= 1024


def test_a_batch_of_different_lengths_scores_as_one_at_a_time(pth):
    """No padding reaches the state: batch_size 2 gives the numbers of batch_size 1."""
    from lm_eval.api.instance import Instance

    requests = [Instance("loglikelihood", {}, ("A short context.", " Yes"), 0),
                Instance("loglikelihood", {}, ("A much longer context, " * 9, " no"), 1)]
    scores = {}
    for batch_size in (1, 2):
        lm = LongContextLM(pretrained=str(pth), device="cpu", dtype="float32", chunk_size=16,
                           batch_size=batch_size)
        scores[batch_size] = [s for s, _ in lm.loglikelihood(requests)]
    assert scores[2] == pytest.approx(scores[1], abs=1e-4)
