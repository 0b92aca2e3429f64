"""The stock ``lm_eval run`` executable with ``--model hf`` runs our tasks end to end.

One real CLI run (the session fixture ``stock_hf_run`` in conftest.py) on a tiny
random Llama saved locally: the passkey task and the whole 1k suite, results written.
"""

from __future__ import annotations

import json

from lc_tasks.families import SUITE


def test_results_hold_passkey_and_every_suite_member(stock_hf_run):
    results = stock_hf_run[0]["results"]
    names = ["lc_passkey_1k", "lc_suite_1k", *(f"lc_{f}_1k" for f in SUITE)]
    for name in names:
        assert name in results, sorted(results)
        assert 0.0 <= results[name]["acc,none"] <= 1.0


def test_the_model_saw_prompts_sized_to_its_tokenizer(stock_hf_run):
    from transformers import AutoTokenizer

    results, out = stock_hf_run
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
