"""The paper's last three model kinds run end to end through the real ``lc-eval`` CLI.

Tiny random checkpoints in their native formats: a mamba_ssm Mamba2-Attn and Transformer++
(config.json + pytorch_model.bin, the char tokenizer passed as ``tokenizer=``), and an
RWKV-6 in the HF format, whose task prompts are sized with the RWKV World tokenizer that lc_hf
picks by itself.
"""

from __future__ import annotations

import json

import pytest
from conftest import read_run, run_cli

from lc_models.models.rwkv_world import world_tokenizer

KINDS = ["mamba2attn", "transformerpp", "rwkv6_hf"]


@pytest.fixture(scope="module")
def runs(native_model, tmp_path_factory):
    """kind -> (results json, samples of lc_passkey_1k)."""
    done = {}

    def run(kind):
        if kind not in done:
            path, tokenizer = native_model(kind)
            out = tmp_path_factory.mktemp(f"cli-{kind}")
            args = f"pretrained={path},chunk_size=64,dtype=float32"
            args += f",tokenizer={tokenizer}" if tokenizer else ""
            run_cli(
                "lc-eval", "run", "--model", "lc_hf", "--model_args", args,
                "--tasks", "lc_passkey_1k", "--limit", "2", "--device", "cpu",
                "--metadata", json.dumps({"num_samples": 2}),
                "--output_path", str(out), "--log_samples",
            )  # fmt: skip
            samples = [json.loads(line) for p in out.rglob("samples_lc_passkey_1k*.jsonl")
                       for line in p.read_text().splitlines()]
            done[kind] = (read_run(out), samples)
        return done[kind]

    return run


@pytest.mark.parametrize("kind", KINDS)
def test_lc_eval_run_passkey_1k(kind, runs):
    results, samples = runs(kind)
    assert 0.0 <= results["results"]["lc_passkey_1k"]["acc,none"] <= 1.0
    assert len(samples) == 2
    assert all(isinstance(s["resps"][0][0], str) for s in samples)


def test_rwkv6_prompts_are_sized_with_the_world_tokenizer(runs):
    _, samples = runs("rwkv6_hf")
    tok = world_tokenizer()
    for sample in samples:
        doc = sample["doc"]
        assert len(tok(doc["input"])["input_ids"]) == doc["n_tokens"]
        assert doc["n_tokens"] + 16 <= 1024  # the prompt and max_gen_toks fit in 1k
