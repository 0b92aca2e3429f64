"""The bundled tiny models: listed, loadable by path and by short name, really retrieving.

Each bundled model is trained at 1024 tokens (``scripts/train_tiny.py``). Through
the stock ``lm_eval --model hf`` CLI it must find the pass key at its training
length. Its scores at every swept length, through ``lc_hf``, are recorded below:
a change in the tasks, the scorer or the adapter moves them and fails loudly.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import read_run, run_cli

from lc_models import zoo

BUNDLED = ["tiny-llama", "tiny-mamba2"]
# The sweep in two runs: the short lengths (a fast path), and the long ones, marked slow
# (tiny-llama's attention at 32k tokens is most of the minutes they take).
SWEEPS = {"1k-4k": ["1k", "2k", "4k"], "8k-32k": ["8k", "16k", "32k"]}
FAMILIES = ["passkey", "niah_single"]
# Two docs per task, needles at 10% and 90% depth.
METADATA = json.dumps({"depths": [10, 90]})
LIMIT = 2
# A float difference between machines may flip one borderline doc; more is a change.
TOLERATED_FLIPS = 1

# Scores (acc) through lc_hf with METADATA and LIMIT, recorded on the project's machine.
RECORDED: dict[str, dict[str, float]] = {
    "tiny-llama": {
        "lc_passkey_1k": 1.0,
        "lc_passkey_2k": 0.5,
        "lc_passkey_4k": 0.5,
        "lc_passkey_8k": 0.0,
        "lc_passkey_16k": 0.0,
        "lc_passkey_32k": 0.0,
        "lc_niah_single_1k": 1.0,
        "lc_niah_single_2k": 0.5,
        "lc_niah_single_4k": 0.5,
        "lc_niah_single_8k": 0.0,
        "lc_niah_single_16k": 0.0,
        "lc_niah_single_32k": 0.0,
    },
    "tiny-mamba2": {
        "lc_passkey_1k": 1.0,
        "lc_passkey_2k": 1.0,
        "lc_passkey_4k": 0.5,
        "lc_passkey_8k": 0.5,
        "lc_passkey_16k": 0.5,
        "lc_passkey_32k": 0.5,
        "lc_niah_single_1k": 1.0,
        "lc_niah_single_2k": 0.5,
        "lc_niah_single_4k": 0.5,
        "lc_niah_single_8k": 0.5,
        "lc_niah_single_16k": 0.5,
        "lc_niah_single_32k": 0.0,
    },
}


def _sweep(lengths: list[str]) -> str:
    return ",".join(f"lc_{family}_{length}" for family in FAMILIES for length in lengths)


def test_bundled_models_are_listed_with_their_folders():
    assert zoo.tiny_names() == BUNDLED
    lines = run_cli("lc-eval", "zoo", "--tiny").stdout.strip().splitlines()
    listed = dict(line.split("\t") for line in lines)
    assert sorted(listed) == BUNDLED
    total = 0
    for name, folder in listed.items():
        folder = Path(folder)
        assert folder == zoo.path(name)
        for part in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
            assert (folder / part).is_file(), f"{name} lacks {part}"
        config = json.loads((folder / "config.json").read_text())
        assert config["lc_eval_training_length"] == 1024
        total += sum(p.stat().st_size for p in folder.iterdir())
    assert total < 12 * 2**20, f"bundled models take {total / 2**20:.1f} MiB"


def test_unknown_short_name_gets_one_line_naming_the_known_ones():
    with pytest.raises(ValueError, match="tiny-llama"):
        zoo.path("tiny-gpt")


@pytest.mark.parametrize("name", [pytest.param("tiny-llama"),  # one fast path; both slow
                                  pytest.param("tiny-mamba2", marks=pytest.mark.slow)])
def test_stock_hf_finds_the_pass_key_at_the_training_length(name, tmp_path):
    """All 100 docs of lc_passkey_1k through lm-eval's own `hf` model, loaded by path."""
    import lc_tasks

    run_cli(
        "lm_eval", "run",
        "--model", "hf",
        "--model_args", f"pretrained={zoo.path(name)},dtype=float32",
        "--device", "cpu",
        "--include_path", lc_tasks.include_path(),
        "--tasks", "lc_passkey_1k",
        "--batch_size", "16",
        "--output_path", str(tmp_path),
    )  # fmt: skip
    acc = read_run(tmp_path)["results"]["lc_passkey_1k"]["acc,none"]
    assert acc >= 0.95, f"{name}: acc {acc} on lc_passkey_1k through stock hf"


@pytest.mark.parametrize("sweep", [pytest.param("1k-4k"),
                                   pytest.param("8k-32k", marks=pytest.mark.slow)])
@pytest.mark.parametrize("name", BUNDLED)
def test_scores_at_every_length_match_the_recorded_ones(name, sweep, tmp_path):
    """The sweep through lc_hf, by short name: at most one doc differs from the record."""
    tasks = _sweep(SWEEPS[sweep])
    run_cli(
        "lc-eval", "run",
        "--model", "lc_hf",
        "--model_args", f"pretrained={name}",
        "--tasks", tasks,
        "--metadata", METADATA,
        "--limit", str(LIMIT),
        "--output_path", str(tmp_path),
    )  # fmt: skip
    results = read_run(tmp_path)["results"]
    got = {task: round(results[task]["acc,none"], 4) for task in tasks.split(",")}
    want = {task: RECORDED[name][task] for task in tasks.split(",")}
    assert sorted(got) == sorted(want)
    flips = sum(round(abs(got[t] - want[t]) * LIMIT) for t in want)
    off = {t: (got[t], want[t]) for t in want if got[t] != want[t]}
    assert flips <= TOLERATED_FLIPS, f"{name}: {flips} docs changed; (got, recorded): {off}"
