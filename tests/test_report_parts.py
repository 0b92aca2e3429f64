"""The report's pieces: task names, effective length, model names, training lengths."""

from __future__ import annotations

import json

import pytest

from lc_eval.report.cells import table
from lc_eval.report.effective import effective_length
from lc_eval.report.load import Run
from lc_eval.report.models import display_names, training_length
from lc_eval.report.names import SUITE, family_order, length_label, parse_length, parse_task


@pytest.mark.parametrize(
    "name, expected",
    [
        ("lc_passkey_1k", ("passkey", 1024)),
        ("lc_niah_single_16k", ("niah_single", 16384)),
        ("lc_niah_multivalue_128k", ("niah_multivalue", 131072)),
        ("lc_suite_1m", (SUITE, 1048576)),
        ("lc_vt_4096", ("vt", 4096)),
        ("hellaswag", None),
        ("lc_passkey", None),
        ("leaderboard_bbh_4k_x", None),
    ],
    ids=[
        "passkey",
        "two-word-family",
        "128k",
        "suite-1m",
        "plain-number",
        "other",
        "no-len",
        "other-lb",
    ],
)
def test_parse_task(name, expected):
    assert parse_task(name) == expected


@pytest.mark.parametrize(
    "tokens, label", [(1024, "1k"), (16384, "16k"), (1048576, "1m"), (3000, "3000"), (512, "512")],
    ids=["1k", "16k", "1m", "not-whole-k", "below-1k"],
)  # fmt: skip
def test_length_label_round_trips(tokens, label):
    assert length_label(tokens) == label
    assert parse_length(label) == tokens


def test_bad_length_names_the_accepted_forms():
    with pytest.raises(ValueError, match="4096, 4k or 1m"):
        parse_length("4kb")


def test_families_sort_suite_first_then_table_order_then_others():
    found = ["zeta", "vt", "passkey", SUITE, "niah_single", "alpha"]
    assert sorted(found, key=family_order) == [
        SUITE,
        "passkey",
        "niah_single",
        "vt",
        "alpha",
        "zeta",
    ]


@pytest.mark.parametrize(
    "scores, label, tokens",
    [
        ({1024: 95, 2048: 90, 4096: 40, 8192: 30}, "2k", 2048),
        ({1024: 85.6, 2048: 85.5}, "1k", 1024),  # the threshold itself passes (RULER: Llama-2 4K)
        ({1024: 50}, "< 1k", None),
        ({4096: 99, 1024: 99, 2048: 99}, ">= 4k", 4096),  # unordered input
        ({2048: 99, 16384: 99, 4096: 99, 8192: 20}, "4k", 4096),  # 16k after 8k, not after 2k
    ],
    ids=["drop", "at-threshold", "never", "always", "numeric-order"],
)
def test_effective_length(scores, label, tokens):
    eff = effective_length(scores, 85.6)
    assert (eff.label(), eff.tokens) == (label, tokens)


def test_effective_length_stops_at_first_failure_and_records_recovery():
    eff = effective_length({1024: 90, 2048: 10, 4096: 90}, 85.6)
    assert eff.tokens == 1024
    assert eff.recovers == (4096,)


def test_threshold_is_a_parameter():
    scores = {1024: 70, 2048: 60, 4096: 40}
    assert effective_length(scores, 50).label() == "2k"
    assert effective_length(scores, 85.6).label() == "< 1k"


def test_display_names_use_basenames_and_disambiguate():
    keys = [
        ("hf", "/x/llama"),
        ("vllm", "/x/llama"),
        ("hf", "/y/mamba/"),
        ("openai-completions", "gpt-4o"),
    ]
    assert display_names(keys) == {
        ("hf", "/x/llama"): "llama (hf)",
        ("vllm", "/x/llama"): "llama (vllm)",
        ("hf", "/y/mamba/"): "mamba",
        ("openai-completions", "gpt-4o"): "gpt-4o",
    }


def test_display_names_renames_and_rejects_unknown_or_clashing_names():
    keys = [("hf", "/x/llama"), ("hf", "/y/mamba")]
    assert display_names(keys, {"llama": "Llama-7B", "/y/mamba": "Mamba"}) == {
        ("hf", "/x/llama"): "Llama-7B",
        ("hf", "/y/mamba"): "Mamba",
    }
    with pytest.raises(ValueError, match="no model of that name"):
        display_names(keys, {"gpt2": "GPT-2"})
    with pytest.raises(ValueError, match="two models the name"):
        display_names(keys, {"llama": "same", "mamba": "same"})


def _run_on(path) -> Run:
    return Run(
        path=path / "results.json",
        date=0.0,
        model_name=str(path),
        model_source="hf",
        model_args={"pretrained": str(path)},
        results={},
        groups={},
        n_samples={},
        limit=None,
    )


@pytest.mark.parametrize(
    "config, tokens, source",
    [
        ({"model_type": "llama", "max_position_embeddings": 4096}, 4096, "max_position_embeddings"),
        (
            {
                "model_type": "llama",
                "max_position_embeddings": 4096,
                "lc_eval_training_length": 2048,
            },
            2048,
            "lc_eval_training_length",
        ),
        (
            {"model_type": "mamba2", "lc_eval_training_length": 2048},
            2048,
            "lc_eval_training_length",
        ),
        ({"model_type": "jamba", "max_position_embeddings": 262144}, None, "unknown"),
        ({"model_type": "mamba"}, None, "unknown"),
    ],
    ids=["attention", "our-key-wins", "ssm-with-key", "hybrid-ignores-positions", "ssm"],
)
def test_training_length_from_a_local_config(tmp_path, config, tokens, source):
    (tmp_path / "config.json").write_text(json.dumps(config))
    found = training_length(_run_on(tmp_path))
    assert found.tokens == tokens
    assert source in found.source


def test_training_length_of_real_tiny_checkpoints(tiny_model):
    llama = training_length(_run_on(tiny_model("llama")))
    mamba = training_length(_run_on(tiny_model("mamba")))
    assert (llama.tokens, mamba.tokens) == (4096, None), (llama, mamba)


def test_training_length_override_wins_and_hub_ids_stay_unknown(tmp_path):
    run = _run_on(tmp_path)
    assert training_length(run, 8192).tokens == 8192
    run.model_args = {"pretrained": "state-spaces/mamba2-2.7b"}
    assert training_length(run).tokens is None


def test_markdown_table_escapes_pipes():
    text = table(["model", "1k"], [["a|b", "1.00"]])
    assert text.splitlines()[2] == "| a\\|b | 1.00 |"
