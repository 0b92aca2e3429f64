"""A run killed midway and started again with ``--use_cache`` recomputes nothing it finished.

Through the real ``lc-eval`` CLI on a tiny random Llama: an uninterrupted run; the same run
with lm-eval's ``--use_cache``, killed with SIGKILL once the second task's requests have
started to land in the cache; then the same command again. lc_hf writes each finished request
to the cache at once, so the second start must compute exactly the requests the cache lacks
(lm-eval logs "Cached requests: X, Requests remaining: Y", and lc_hf logs how many it
computes), and its results must equal the uninterrupted run's.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import time

import pytest
from conftest import executable, read_run, run_cli

TASKS = "lc_passkey_1k,lc_niah_single_1k"  # different generation kwargs: two passes
DOCS = 4
ENV = {"OMP_NUM_THREADS": "1"}


def args(model, out, cache=None):
    return [
        "run", "--model", "lc_hf", "--model_args", f"pretrained={model},chunk_size=32",
        "--device", "cpu", "--tasks", TASKS, "--limit", str(DOCS),
        "--metadata", json.dumps({"num_samples": DOCS}), "--output_path", str(out),
        "--log_samples", *(["--use_cache", str(cache)] if cache else []),
    ]  # fmt: skip


def cached_rows(cache) -> int:
    db = f"{cache}_rank0.db"
    if not os.path.exists(db):
        return 0
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            return conn.execute("SELECT COUNT(*) FROM unnamed").fetchone()[0]
    except sqlite3.Error:  # not created yet, or locked for a moment
        return 0


def responses(out):
    found = {}
    for path in out.rglob("samples_*.jsonl"):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            found[(row["doc"]["family"], row["doc_id"])] = row["resps"]
    return found


@pytest.fixture(scope="module")
def model(tiny_model):
    return tiny_model("llama", tie_word_embeddings=False)


def test_a_killed_run_resumes_from_the_cache_and_gives_the_same_results(model, tmp_path):
    whole = tmp_path / "whole"
    run_cli("lc-eval", *args(model, whole), env=ENV)

    cache, out = tmp_path / "cache" / "lc", tmp_path / "resumed"
    proc = subprocess.Popen([executable("lc-eval"), *args(model, out, cache)],
                            env={**os.environ, **ENV}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while cached_rows(cache) <= DOCS and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)  # the first task's DOCS answers, then at least one of the second's
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = cached_rows(cache)
    assert DOCS < done < 2 * DOCS, f"killed with {done} of {2 * DOCS} requests cached"
    assert not list(out.rglob("results_*.json")), "the killed run wrote results"

    again = run_cli("lc-eval", *args(model, out, cache), env=ENV)
    log = again.stdout + again.stderr
    remaining = [int(n) for n in re.findall(r"Requests remaining: (\d+)", log)]
    computed = [int(n) for n in re.findall(r"lc_hf: computing (\d+) generate_until", log)]
    assert sum(remaining) == 2 * DOCS - done, log[-3000:]
    assert computed == [2 * DOCS - done], "lc_hf recomputed requests the cache held"
    assert read_run(out)["results"] == read_run(whole)["results"]
    assert responses(out) == responses(whole)
    assert not list(out.rglob(".*.tmp")), "a temporary results file was left behind"


def test_results_are_written_atomically(tmp_path, monkeypatch):
    """A crash while the results file is written leaves the previous file, never half a JSON:
    the text goes to a temporary file, renamed into place only once it is whole."""
    import pathlib

    from lm_eval.loggers.evaluation_tracker import EvaluationTracker

    from lc_eval import cli

    target = tmp_path / "results_x.json"
    target.write_text('{"old": true}')

    def dies_halfway(path, data, *args, **kwargs):  # the process dies inside the write
        with open(path, "w") as f:
            f.write(data[: len(data) // 2])
        raise KeyboardInterrupt

    def save(self, results=None, samples=None):  # what lm-eval's save does: one write_text
        target.write_text(json.dumps(results))

    monkeypatch.setattr(EvaluationTracker, "save_results_aggregated", save)
    monkeypatch.setattr(pathlib.Path, "write_text", dies_halfway)
    cli._atomic_results()
    with pytest.raises(KeyboardInterrupt):
        EvaluationTracker.save_results_aggregated(None, results={"new": list(range(100))})
    assert json.loads(target.read_text()) == {"old": True}
    assert pathlib.Path.write_text is dies_halfway, "write_text was not restored"
