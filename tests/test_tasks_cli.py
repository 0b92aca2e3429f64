"""The stock ``lm_eval run`` executable with ``--model hf`` runs our tasks end to end.

One real CLI run (each costs ~30 s of lm-eval task indexing) on a tiny random
Llama saved locally: the passkey task and the whole 1k suite, results written.
"""

from __future__ import annotations

import json

import pytest
from conftest import run_cli

import lc_tasks
from lc_tasks.families import SUITE


@pytest.fixture(scope="module")
def cli_results(tiny_model, tmp_path_factory):
    model = tiny_model("llama")
    out = tmp_path_factory.mktemp("lm-eval-out")
    run_cli(
        "lm_eval", "run",
        "--model", "hf",
        "--model_args", f"pretrained={model},dtype=float32",
        "--device", "cpu",
        "--include_path", lc_tasks.include_path(),
        "--tasks", "lc_passkey_1k,lc_suite_1k",
        "--limit", "1",
        "--batch_size", "8",
        "--metadata", json.dumps({"num_samples": 1}),
        "--output_path", str(out),
        "--log_samples",
    )
    found = sorted(out.rglob("results_*.json"))
    assert found, f"lm_eval wrote no results under {out}"
    return json.loads(found[-1].read_text()), out


def test_results_hold_passkey_and_every_suite_member(cli_results):
    results = cli_results[0]["results"]
    names = ["lc_passkey_1k", "lc_suite_1k", *(f"lc_{f}_1k" for f in SUITE)]
    for name in names:
        assert name in results, sorted(results)
        assert 0.0 <= results[name]["acc,none"] <= 1.0


def test_the_model_saw_prompts_sized_to_its_tokenizer(cli_results):
    from transformers import AutoTokenizer

    results, out = cli_results
    model_args = results["config"]["model_args"]
    if isinstance(model_args, str):
        model_args = dict(kv.split("=", 1) for kv in model_args.split(","))
    tok = AutoTokenizer.from_pretrained(model_args["pretrained"])
    samples = sorted(out.rglob("samples_lc_passkey_1k_*.jsonl"))
    assert samples, "no logged samples"
    for line in samples[-1].read_text().splitlines():
        sample = json.loads(line)
        prompt = sample["arguments"]["gen_args_0"]["arg_0"]
        assert prompt == sample["doc"]["input"], "lm-eval must send the doc's prompt unchanged"
        assert len(tok(prompt)["input_ids"]) + 16 <= 1024
