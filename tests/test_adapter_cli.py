"""lc_hf through the real executables: ``lc-eval run`` end to end, and a two-process
``accelerate launch`` run on CPU that gives the results of one process.

On one machine, ``accelerate launch --cpu --num_processes 2`` starts a single process
(accelerate spawns CPU workers only through an MPI hostfile). Two CPU processes come
from its torchrun launcher (``--multi_gpu``) with ``ACCELERATE_USE_CPU=1``, which is
the environment ``--cpu`` sets: accelerate then runs them as MULTI_CPU over gloo.

Two CLI runs in all (each pays lm-eval's task indexing): the passkey task plus two
small local tasks whose scores depend on every document (multiple choice and
rolling log-likelihood), so that a mix-up between processes would show.
"""

from __future__ import annotations

import json
import socket
import textwrap

import pytest
from conftest import run_cli

TASKS = "lc_passkey_1k,lc_test_choice,lc_test_rolling"
LIMIT = 4
DOCS = [
    {
        "context": f"Document {i}. " + "The grass is green and the sky is blue. " * (2 + i),
        "choices": [" yes", " no", f" {i * 7919 % 1000}"],
        "text": f"Note {i}: " + "there and back again, " * (3 + 2 * i),
    }
    for i in range(LIMIT)
]
# threads fight over 2 shared cores; tiny models are fastest on one
ENV = {"OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def local_tasks(tmp_path_factory):
    folder = tmp_path_factory.mktemp("local-tasks")
    data = folder / "docs.jsonl"
    data.write_text("".join(json.dumps(d) + "\n" for d in DOCS))
    common = f"""
        dataset_path: json
        dataset_kwargs:
          data_files:
            test: {data}
        test_split: test
    """
    (folder / "choice.yaml").write_text(
        textwrap.dedent(common)
        + textwrap.dedent("""
        task: lc_test_choice
        output_type: multiple_choice
        doc_to_text: "{{context}}"
        doc_to_choice: choices
        doc_to_target: 0
        metric_list: [{metric: acc}]
        """)
    )
    (folder / "rolling.yaml").write_text(
        textwrap.dedent(common)
        + textwrap.dedent("""
        task: lc_test_rolling
        output_type: loglikelihood_rolling
        doc_to_text: ""
        doc_to_target: "{{text}}"
        metric_list: [{metric: word_perplexity}]
        """)
    )
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_args(model, tasks_dir, out):
    return [
        "run",
        "--model", "lc_hf",
        "--model_args", f"pretrained={model},chunk_size=16",
        "--device", "cpu",
        "--tasks", TASKS,
        "--include_path", str(tasks_dir),
        "--limit", str(LIMIT),
        "--output_path", str(out),
        "--log_samples",
    ]  # fmt: skip


def leaves(resps):
    """Logged responses as a flat list: floats for log-likelihoods, strings otherwise."""
    if isinstance(resps, (list, tuple)):
        return [leaf for item in resps for leaf in leaves(item)]
    try:
        return [float(resps)]
    except ValueError:
        return [resps]


def read_run(out):
    """(results json, {task: {doc_id: resps}}) of one run's output folder."""
    results = json.loads(max(out.rglob("results_*.json")).read_text())
    samples = {}
    for path in out.rglob("samples_*.jsonl"):
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        task = path.name[len("samples_") :].rsplit("_", 1)[0]
        samples[task] = {row["doc_id"]: row["resps"] for row in rows}
    return results, samples


@pytest.fixture(scope="module")
def one_process(tiny_model, local_tasks, tmp_path_factory):
    out = tmp_path_factory.mktemp("one-process")
    model = tiny_model("llama", tie_word_embeddings=False)
    proc = run_cli("lc-eval", *run_args(model, local_tasks, out), env=ENV)
    return read_run(out), proc


@pytest.fixture(scope="module")
def two_processes(tiny_model, local_tasks, tmp_path_factory):
    out = tmp_path_factory.mktemp("two-processes")
    model = tiny_model("llama", tie_word_embeddings=False)
    launch = [
        "accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(free_port()), "-m", "lc_eval",
    ]  # fmt: skip
    env = {**ENV, "ACCELERATE_USE_CPU": "1"}
    proc = run_cli(*launch, *run_args(model, local_tasks, out), env=env)
    return read_run(out), proc


def test_lc_eval_run_passkey_end_to_end(one_process):
    (results, samples), _ = one_process
    assert 0.0 <= results["results"]["lc_passkey_1k"]["acc,none"] <= 1.0
    assert len(samples["lc_passkey_1k"]) == LIMIT
    assert "chunk_size" in str(results["config"]["model_args"])
    for resps in samples["lc_passkey_1k"].values():
        assert isinstance(resps[0][0], str)


def test_two_processes_split_the_work(two_processes):
    _, proc = two_processes
    log = proc.stdout + proc.stderr
    assert "data-parallel rank 0 of 2" in log and "data-parallel rank 1 of 2" in log, log[-3000:]


def test_two_processes_give_the_results_of_one(one_process, two_processes):
    (_, single), _ = one_process
    (_, double), _ = two_processes
    assert sorted(double) == sorted(single)
    for task in single:
        assert double[task].keys() == single[task].keys(), task
        for doc, want in single[task].items():
            got = double[task][doc]
            if task == "lc_passkey_1k":
                assert got == want, (task, doc)
            else:
                assert any(isinstance(x, float) for x in leaves(want)), want
                assert leaves(got) == pytest.approx(leaves(want), abs=1e-5), (task, doc)
