"""Every bad input gets one clear line: a corpus of wrong invocations of the real executables.

Each ``lc-eval`` case asserts a non-zero exit, no traceback, and a last line (on stderr) that
names the offending value or name. Most fail in lc-eval's pre-flight checks, before lm-eval
indexes its tasks or loads a model, so each costs about a second. The same inputs through
stock ``lm_eval --include_path ...`` keep lm-eval's traceback, but its last line is ours; those
runs pay lm-eval's full task index (~20 s each), so all but one are marked slow.

The cases run a few at a time (one process each, ``WORKERS`` together), once per module; each
test then reads its case's outcome. A case may set environment variables (a third element).
"""

from __future__ import annotations

import importlib.util
import json
import os
import pickle
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import run_cli

import lc_tasks
from lc_tasks.errors import UsageError

RUN = ["run", "--device", "cpu"]


def lc_hf(pretrained="{llama}", extra=""):
    return ["--model", "lc_hf", "--model_args", f"pretrained={pretrained}{extra}"]


def meta(options: dict):
    return ["--metadata", json.dumps(options)]


PASSKEY = ["--tasks", "lc_passkey_1k"]
REPORT = ["report", "{runs}", "--out", "{folder}/r", "--no-figures"]
WORKERS = max(1, min(4, (os.cpu_count() or 1)))
# id -> (arguments after `lc-eval`, what the last line must contain[, environment])
CORPUS = {
    # task names
    "length that does not exist": ([*RUN, *lc_hf(), "--tasks", "lc_passkey_3k"],
                                   "'lc_passkey_3k': there is no length 3k"),
    "misspelt family": ([*RUN, *lc_hf(), "--tasks", "lc_paskey_1k"],
                        "did you mean 'lc_passkey_1k'"),
    "glob matching nothing": ([*RUN, *lc_hf(), "--tasks", "lc_nosuch_*"],
                              "no lc-eval task matches 'lc_nosuch_*'"),
    "suite at a missing length": ([*RUN, *lc_hf(), "--tasks", "lc_suite_5k"],
                                  "'lc_suite_5k': there is no length 5k"),
    # --metadata options
    "num_samples not a number": ([*RUN, *lc_hf(), *PASSKEY, *meta({"num_samples": "abc"})],
                                 "num_samples='abc'"),
    "num_samples zero": ([*RUN, *lc_hf(), *PASSKEY, *meta({"num_samples": 0})],
                         "num_samples=0 must be an integer >= 1"),
    "depth over 100": ([*RUN, *lc_hf(), *PASSKEY, *meta({"depths": [0, 150]})],
                       "depths=[0, 150]"),
    "depths not numbers": ([*RUN, *lc_hf(), *PASSKEY, *meta({"depths": "deep shallow"})],
                           "depths="),
    "misspelt option hops": ([*RUN, *lc_hf(), "--tasks", "lc_vt_1k", *meta({"hops": 2})],
                             "'hops' (did you mean 'num_hops'?)"),
    "misspelt option num_sample": ([*RUN, *lc_hf(), *PASSKEY, *meta({"num_sample": 5})],
                                   "'num_sample' (did you mean 'num_samples'?)"),
    "negative seed": ([*RUN, *lc_hf(), *PASSKEY, *meta({"seed": -1})], "seed=-1"),
    "--seed not a number": ([*RUN, *lc_hf(), *PASSKEY, "--seed", "abc"],
                            "--seed: 'abc' is not a seed; give one integer"),
    "reserve not a number": ([*RUN, *lc_hf(), *PASSKEY, *meta({"reserve": "x"})],
                             "reserve='x'"),
    "reserve leaves no room": ([*RUN, *lc_hf(), *PASSKEY, *meta({"reserve": 5000})],
                               "leaves no room for a prompt"),
    "num_hops zero": ([*RUN, *lc_hf(), "--tasks", "lc_vt_1k", *meta({"num_hops": 0})],
                      "num_hops=0"),
    "metadata not JSON": ([*RUN, *lc_hf(), *PASSKEY, "--metadata", "{num_samples: 2"],
                          "Invalid JSON: {num_samples: 2"),
    # haystack sources
    "haystack missing": ([*RUN, *lc_hf(), *PASSKEY, *meta({"haystack": "/no/such/book.txt"})],
                         "'/no/such/book.txt' is neither"),
    "haystack empty": ([*RUN, *lc_hf(), *PASSKEY, *meta({"haystack": "{empty_txt}"})],
                       "empty.txt' is empty"),
    "haystack a folder": ([*RUN, *lc_hf(), *PASSKEY, *meta({"haystack": "{folder}"})],
                          "is a folder, not a text file"),
    "haystack not UTF-8": ([*RUN, *lc_hf(), *PASSKEY, *meta({"haystack": "{binary}"})],
                           "binary.txt' is not UTF-8 text"),
    "haystack a number": ([*RUN, *lc_hf(), *PASSKEY, *meta({"haystack": 7})],
                          "haystack=7 must be a string"),
    # tokenizers
    "tokenizer missing": ([*RUN, *lc_hf(extra=",tokenizer=/no/such/tok"), *PASSKEY],
                          "cannot load tokenizer '/no/such/tok'"),
    "tokenizer folder without files": ([*RUN, *lc_hf(extra=",tokenizer={folder}"), *PASSKEY],
                                       "cannot load tokenizer"),
    "no tokenizer at all": ([*RUN, "--model", "dummy", *PASSKEY],
                            "sizes its prompts with the model's tokenizer"),
    # lc_hf model args
    "misspelt chunk_size": ([*RUN, *lc_hf(extra=",chunksize=64"), *PASSKEY],
                            "'chunksize' (did you mean 'chunk_size'?)"),
    "chunk_size not a number": ([*RUN, *lc_hf(extra=",chunk_size=abc"), *PASSKEY],
                                "chunk_size='abc'"),
    "chunk_size zero": ([*RUN, *lc_hf(extra=",chunk_size=0"), *PASSKEY], "chunk_size=0"),
    "dtype that does not exist": ([*RUN, *lc_hf(extra=",dtype=float7"), *PASSKEY],
                                  "dtype='float7'"),
    "max_length negative": ([*RUN, *lc_hf(extra=",max_length=-5"), *PASSKEY],
                            "max_length=-5"),
    "max_length not a number": ([*RUN, *lc_hf(extra=",max_length=lots"), *PASSKEY],
                                "max_length='lots'"),
    "batch_size auto": ([*RUN, *lc_hf(), *PASSKEY, "--batch_size", "auto"],
                        "not 'auto'"),
    "batch_size zero": ([*RUN, *lc_hf(), *PASSKEY, "--batch_size", "0"], "batch_size='0'"),
    "device without a GPU": ([*RUN[:1], *lc_hf(extra=",device=cuda"), *PASSKEY],
                             "device='cuda', but this machine has no CUDA GPU"),
    "device that does not exist": ([*RUN[:1], *lc_hf(extra=",device=warp9"), *PASSKEY],
                                   "device='warp9'"),
    "verify not a boolean": ([*RUN, *lc_hf(extra=",verify=maybe"), *PASSKEY],
                             "verify='maybe' must be true or false"),
    "misspelt pretrained": ([*RUN, "--model", "lc_hf", "--model_args", "pretraned={llama}",
                             *PASSKEY], "'pretraned' (did you mean 'pretrained'?)"),
    # checkpoints
    "checkpoint path missing": ([*RUN, *lc_hf("/no/such/model"), *PASSKEY],
                                "pretrained='/no/such/model': no such file or folder"),
    "hub id while offline": ([*RUN, *lc_hf("someone/not-cached-model"), *PASSKEY],
                             ("'someone/not-cached-model' is not a local path, and the hub is "
                              "offline")),
    "folder that is not a model": ([*RUN, *lc_hf("{folder}"), *PASSKEY],
                                   "is a folder but not a model"),
    "config without weights": ([*RUN, *lc_hf("{no_weights}"), *PASSKEY],
                               "cannot load its weights"),
    "truncated weights": ([*RUN, *lc_hf("{truncated}"), *PASSKEY], "cannot load its weights"),
    "native config field unknown": ([*RUN, *lc_hf("{bad_native}", ",tokenizer={tok}"),
                                     *PASSKEY], "unknown top-level field 'd_stat'"),
    # generation kwargs
    "max_gen_toks not a number": ([*RUN, *lc_hf(), *PASSKEY, "--gen_kwargs",
                                   "max_gen_toks=many"], "max_gen_toks='many'"),
    "unsupported generation kwarg": ([*RUN, *lc_hf(), *PASSKEY, "--gen_kwargs", "num_beams=4"],
                                     "'num_beams': 4"),
    "top_p out of range": ([*RUN, *lc_hf(), *PASSKEY, "--gen_kwargs", "top_p=2"], "top_p=2"),
    # models that cannot take the length
    "stock hf would truncate": ([*RUN, "--model", "hf", "--model_args",
                                 "pretrained={llama_1k}", "--tasks", "lc_passkey_2k", "--limit",
                                 "1", *meta({"num_samples": 1})],
                                "lc_passkey_2k needs 2048 tokens, but hf's max_length is 1024"),
    "learned positions too short": ([*RUN, *lc_hf("{gpt2}"), "--tasks", "lc_passkey_1k",
                                     "--limit", "1", *meta({"num_samples": 1})],
                                    "gpt2 has learned absolute positions for only 512 tokens"),
    # the command line itself, and the report
    "misspelt flag": ([*RUN, *lc_hf(), *PASSKEY, "--limt", "3"], "--limt"),
    "report of a missing folder": (["report", "/no/such/runs", "--out", "{folder}/r"],
                                   "/no/such/runs"),
    "report of a folder without results": (["report", "{folder}", "--out", "{folder}/r"],
                                           "no lm-eval results file"),
    # arguments given twice: lm-eval passes --device and --batch_size to every model
    "device twice, lc_hf": ([*RUN, *lc_hf(extra=",device=cpu"), *PASSKEY],
                            "device is given twice, --model_args device=cpu and --device cpu"),
    "batch_size twice, lc_hf": ([*RUN, *lc_hf(extra=",batch_size=2"), *PASSKEY, "--batch_size",
                                 "1"], "batch_size is given twice, --model_args batch_size=2"),
    "device twice, hf": ([*RUN, "--model", "hf", "--model_args", "pretrained={llama},device=cpu",
                          *PASSKEY], "pass it once, as --device cpu"),
    "batch_size twice, hf": ([*RUN, "--model", "hf", "--model_args",
                              "pretrained={llama},batch_size=2", "--batch_size", "4", *PASSKEY],
                             "pass it once, as --batch_size 2"),
    "max_batch_size twice": ([*RUN, *lc_hf(extra=",max_batch_size=2"), *PASSKEY,
                              "--max_batch_size", "3"], "max_batch_size is given twice"),
    # lm-eval flags that reach our tasks
    "few-shot on a generated task": ([*RUN, *lc_hf(), *PASSKEY, "--num_fewshot", "2"],
                                     "--num_fewshot 2: lc-eval tasks (lc_passkey_1k) are zero-"),
    "negative few-shot": ([*RUN, *lc_hf(), *PASSKEY, "--num_fewshot", "-1"],
                          "--num_fewshot -1 must be 0 or more"),
    "empty task list": ([*RUN, *lc_hf(), "--tasks", ""], "--tasks '' names no task"),
    "task list of commas": ([*RUN, *lc_hf(), "--tasks", ",,"], "--tasks ',,' names no task"),
    "limit zero": ([*RUN, *lc_hf(), *PASSKEY, "--limit", "0"], "--limit 0 is neither"),
    "limit negative": ([*RUN, *lc_hf(), *PASSKEY, "--limit", "-3"], "--limit -3 is neither"),
    "limit a fraction over one": ([*RUN, *lc_hf(), *PASSKEY, "--limit", "2.5"],
                                  "--limit 2.5 is neither"),
    "samples beyond the docs": ([*RUN, *lc_hf(), *PASSKEY, *meta({"num_samples": 3}),
                                 "--samples", json.dumps({"lc_passkey_1k": [1, 7]})],
                                "--samples lc_passkey_1k: index 7 is not a doc of it; it has 3"),
    "samples file not JSON": ([*RUN, *lc_hf(), *PASSKEY, "--samples", "{bad_json}"],
                              "bad.json: not a JSON file"),
    "samples neither JSON nor a file": ([*RUN, *lc_hf(), *PASSKEY, "--samples", "/no/such.json"],
                                        "--samples /no/such.json: not JSON, nor a file"),
    "samples a list": ([*RUN, *lc_hf(), *PASSKEY, "--samples", "[1, 2]"],
                       "--samples [1, 2]: a list, not a JSON object"),
    "verbosity unknown": ([*RUN, *lc_hf(), *PASSKEY, "--verbosity", "LOUD"],
                          "--verbosity LOUD: not a log level"),
    "output_path under a file": ([*RUN, *lc_hf(), *PASSKEY, "--output_path",
                                  "{empty_txt}/runs"], "empty.txt is a file, so the results"),
    "use_cache under a file": ([*RUN, *lc_hf(), *PASSKEY, "--use_cache", "{empty_txt}/c/db"],
                               "empty.txt is a file, so the cache"),
    "include_path missing": ([*RUN, *lc_hf(), *PASSKEY, "--include_path", "/no/such/tasks"],
                             "--include_path /no/such/tasks: no such folder"),
    "config not YAML": ([*RUN, *lc_hf(), *PASSKEY, "--config", "{binary}"], "binary.txt"),
    "model lm-eval does not have": ([*RUN, "--model", "lc_hff", "--model_args",
                                     "pretrained={llama}", *PASSKEY],
                                    "--model 'lc_hff' is not a model lm-eval knows (did you mean"),
    "lc_hf arg given to hf": ([*RUN, "--model", "hf", "--model_args",
                               "pretrained={llama},chunk_size=64", *PASSKEY],
                              "chunk_size=64 is an lc_hf model arg, which --model hf does not"),
    "model arg the model does not take": ([*RUN, "--model", "hf", "--model_args",
                                           "pretrained={llama},rope_sclaing=2", *PASSKEY],
                                          "unexpected keyword argument 'rope_sclaing'; the model "),
    **{f"{flag} without {package}": ([*RUN, *lc_hf(), *PASSKEY, f"--{flag}", "project=x"],
                                     f"--{flag} needs the {package} package")
       for flag, package in (("wandb_args", "wandb"), ("trackio_args", "trackio"))
       if importlib.util.find_spec(package) is None},
    "push to the hub without a token": ([*RUN, *lc_hf(), *PASSKEY, "--output_path",
                                         "{folder}/out", "--hf_hub_log_args",
                                         "hub_results_org=x,push_results_to_hub=True"],
                                        "set HF_TOKEN, or drop push_results_to_hub",
                                        {"HF_TOKEN": ""}),
    # a selection lm-eval refuses: two groups sharing tasks (a task beside its group runs once)
    "two groups that share tasks": ([*RUN, *lc_hf(), "--tasks", "lc_suite_1k,lc_ruler_1k"],
                                    "lc_suite_1k and lc_ruler_1k, which share 11 tasks"),
    "glob matching two groups": ([*RUN, *lc_hf(), "--tasks", "lc_*_1k"],
                                 "'lc_*_1k' selects both lc_ruler_1k and lc_suite_1k"),
    # the environment
    "LC_EVAL_CACHE a file": ([*RUN, *lc_hf(), *PASSKEY],
                             "LC_EVAL_CACHE='{empty_txt}' is not a folder",
                             {"LC_EVAL_CACHE": "{empty_txt}"}),
    "LC_EVAL_CACHE under a file": ([*RUN, *lc_hf(), *PASSKEY], "(under {empty_txt}, a file)",
                                   {"LC_EVAL_CACHE": "{empty_txt}/cache"}),
    "LC_EVAL_NATIVE misspelt": ([*RUN, *lc_hf(), *PASSKEY], "LC_EVAL_NATIVE='off' is not one of",
                                {"LC_EVAL_NATIVE": "off"}),
    "LC_EVAL_ALLOW_TRUNCATION misspelt": ([*RUN, *lc_hf(), *PASSKEY],
                                          "LC_EVAL_ALLOW_TRUNCATION='yes' is not one of",
                                          {"LC_EVAL_ALLOW_TRUNCATION": "yes"}),
    # files that are not what their name says
    "pth that is a plain pickle": ([*RUN, *lc_hf("{plain_pickle}", ",tokenizer={tok}"),
                                    *PASSKEY], "plain.pth is not a weights-only state dict"),
    "pth of a whole module": ([*RUN, *lc_hf("{module_pth}", ",tokenizer={tok}"), *PASSKEY],
                              "holds an object of class torch.nn.modules.linear.Linear"),
    # report options out of range
    "report threshold over 100": ([*REPORT, "--threshold", "150"],
                                  "'150' is not a percentage in [0, 100]"),
    "report threshold negative": ([*REPORT, "--threshold=-1"],
                                  "'-1' is not a percentage in [0, 100]"),
    "report depth step zero": ([*REPORT, "--depth-step", "0"],
                               "'0' is not a percentage in (0, 100]"),
    "report families empty": ([*REPORT, "--families", ","], "',' names no family"),
    "report lengths empty": ([*REPORT, "--leaderboard-lengths", ","],
                             "give one or more lengths"),
    "report lengths misspelt": ([*REPORT, "--leaderboard-lengths", "4k,8kb"],
                                "bad length '8kb'"),
    "report claimed length of nobody": ([*REPORT, "--claimed-length", "nobody=4k"],
                                        "--claimed-length nobody=...: no model of that name"),
    "report training length zero": ([*REPORT, "--training-length", "llama=0"],
                                    "--training-length llama=0: a length is at least one token"),
    "report out a file": (["report", "{runs}", "--out", "{empty_txt}"],
                          "empty.txt is a file; pass a folder"),
}
# stock lm_eval: the cases whose error is raised inside our tasks, during lm-eval's own run
STOCK = {"num_samples not a number", "misspelt option hops", "haystack missing",
         "haystack not UTF-8", "depth over 100", "reserve leaves no room",
         "misspelt option num_sample"}
FAST_STOCK = {"misspelt option hops"}  # one fast path; each stock run pays lm-eval's full index


@pytest.fixture(scope="module")
def files(tmp_path_factory, tiny_model, tokenizer_dir):
    """Paths the corpus refers to: broken haystacks and checkpoints, tiny models."""
    import shutil

    import torch
    from report_helpers import write_run

    from lc_models import zoo
    from lc_models.zoo.tiny_native import MAMBA_SSM_CONFIGS

    root = tmp_path_factory.mktemp("bad-inputs")
    (root / "empty.txt").write_text("")
    (root / "binary.txt").write_bytes(b"abc \xff\xfe not utf-8")
    (root / "folder").mkdir()
    (root / "bad.json").write_text("[1, 2")
    llama = tiny_model("llama")
    no_weights = root / "no-weights"
    no_weights.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(llama / name, no_weights / name)
    truncated = root / "truncated"
    shutil.copytree(llama, truncated)
    weights = truncated / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    plain_pickle = root / "plain.pth"
    plain_pickle.write_bytes(pickle.dumps({"weight": [1.0, 2.0]}))
    module_pth = root / "module.pth"
    torch.save(torch.nn.Linear(2, 2), module_pth)
    runs = root / "runs"
    write_run(runs, {"pretrained": "/ckpt/llama"}, {"lc_passkey_1k": [1, 0]})
    bad_native = root / "bad-native"
    bad_native.mkdir()
    (bad_native / "config.json").write_text(json.dumps({**MAMBA_SSM_CONFIGS["mamba2attn"],
                                                        "d_stat": 8}))
    return {"llama": llama, "llama_1k": zoo.path("tiny-llama"), "gpt2": tiny_model("gpt2"),
            "tok": tokenizer_dir("char"), "empty_txt": root / "empty.txt",
            "binary": root / "binary.txt", "folder": root / "folder",
            "no_weights": no_weights, "truncated": truncated, "bad_native": bad_native,
            "plain_pickle": plain_pickle, "module_pth": module_pth, "runs": runs,
            "bad_json": root / "bad.json"}


def fill(args, files):
    """The arguments with ``{name}`` replaced by the path of ``files[name]``."""
    out = []
    for arg in args:
        for name, path in files.items():
            arg = arg.replace("{" + name + "}", str(path))
        out.append(arg)
    return out


def assert_one_clear_line(proc, expected, what):
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, f"{what}: exited 0\n{out[-2000:]}"
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert lines, f"{what}: nothing on stderr"
    assert expected in lines[-1], f"{what}: last line {lines[-1]!r} lacks {expected!r}"
    return out


def test_the_corpus_covers_at_least_eighty_invocations():
    assert len(CORPUS) >= 80


def run_case(case, files):
    args, expected, *env = CORPUS[case]
    env = {k: fill([v], files)[0] for k, v in (env[0] if env else {}).items()}
    proc = run_cli("lc-eval", *fill(args, files), check=False, timeout=300, env=env)
    return proc, fill([expected], files)[0]


@pytest.fixture(scope="module")
def outcomes(files):
    """Every corpus case run through the real executable, ``WORKERS`` at a time."""
    with ThreadPoolExecutor(WORKERS) as pool:
        done = dict(zip(CORPUS, pool.map(lambda c: run_case(c, files), CORPUS)))
    return done


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_lc_eval_ends_a_bad_invocation_with_one_line(case, outcomes):
    proc, expected = outcomes[case]
    out = assert_one_clear_line(proc, expected, case)
    assert "Traceback" not in out, f"{case}: a traceback\n{out[-3000:]}"
    if "lc-eval: error: " in proc.stderr:  # a UsageError: lc-eval's own exit status
        assert proc.returncode == 2, f"{case}: exit {proc.returncode}"


def test_traceback_flag_shows_the_traceback_for_bug_reports(files):
    args, expected = CORPUS["num_samples not a number"]
    proc = run_cli("lc-eval", *fill(args, files), "--traceback", check=False)
    assert proc.returncode != 0 and "Traceback" in proc.stderr
    assert expected in proc.stderr.strip().splitlines()[-1]


def stock_case(case):
    marks = [] if case in FAST_STOCK else [pytest.mark.slow]
    return pytest.param(case, marks=marks, id=case)


@pytest.mark.parametrize("case", [stock_case(c) for c in sorted(STOCK)])
def test_stock_lm_eval_ends_with_our_line(case, files):
    args, expected = CORPUS[case]
    args = [a if a != "lc_hf" else "hf" for a in fill(args, files)]
    proc = run_cli("lm_eval", *args, "--include_path", lc_tasks.include_path(), check=False,
                   timeout=600)
    assert_one_clear_line(proc, expected, case)


def test_a_task_beside_its_group_runs_once_in_the_group(files, tmp_path):
    proc = run_cli("lc-eval", *RUN, *fill(lc_hf(), files), "--tasks",
                   "lc_niah_single_1k,lc_suite_1k", "--limit", "1", check=False, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "lc_niah_single_1k asked for beside lc_suite_1k, which holds it; it runs once" in out
    assert "| suite |" in proc.stdout, "the group's score is in the table"


@pytest.mark.slow  # an lm-eval task name makes lm-eval index all its tasks (~20 s)
def test_an_unknown_lm_eval_task_is_one_line(files):
    proc = run_cli("lc-eval", *RUN, *fill(lc_hf(), files), "--tasks", "lc_passkey_1k,nosuchtask",
                   check=False, timeout=600)
    out = assert_one_clear_line(proc, "Tasks not found: nosuchtask; list lm-eval's tasks", "")
    assert "Traceback" not in out and proc.returncode == 2


# The same checks from Python: each raises UsageError (the one type to catch).
GROUPS = {"lc_suite_1k": ("lc_niah_single_1k", "lc_vt_1k"), "lc_big_1k": ("lc_vt_1k",),
          "lc_other_1k": ("lc_cwe_1k",)}
KNOWN = {"lc_niah_single_1k", "lc_vt_1k", "lc_cwe_1k", "lc_passkey_1k", *GROUPS}


@pytest.mark.parametrize("entries,expected", [
    (["lc_passkey_1k", "lc_vt_1k"], ["lc_passkey_1k", "lc_vt_1k"]),
    (["lc_vt_1k", "lc_suite_1k"], ["lc_suite_1k"]),
    (["lc_passkey_1k", "lc_passkey_1k"], ["lc_passkey_1k"]),
    (["lc_other_1k", "lc_c*_1k"], ["lc_other_1k"]),
    (["hellaswag", "lc_niah_*", "lc_suite_1k"], ["hellaswag", "lc_suite_1k"]),
], ids=["distinct", "task-and-group", "twice", "glob-inside-group", "with-lm-eval-task"])
def test_run_once_keeps_each_task_once(entries, expected):
    from lc_eval.preflight import run_once

    assert run_once(entries, KNOWN, GROUPS) == expected


def test_run_once_refuses_groups_that_share_tasks():
    from lc_eval.preflight import run_once

    with pytest.raises(UsageError, match="lc_suite_1k and lc_big_1k, which share 1 tasks"):
        run_once(["lc_suite_1k", "lc_big_1k"], KNOWN, GROUPS)


def test_a_model_arg_given_only_in_model_args_moves_to_the_flag():
    import argparse

    from lc_eval.preflight import check_given_once

    args = argparse.Namespace(model_args={"pretrained": "m", "device": "cpu", "batch_size": 2},
                              device=None, max_batch_size=None)
    check_given_once(args)
    assert args.model_args == {"pretrained": "m"}
    assert (args.device, args.batch_size) == ("cpu", "2")
    args = argparse.Namespace(model_args={"device": "cpu"}, device="cuda")
    with pytest.raises(UsageError, match="device is given twice"):
        check_given_once(args)


@pytest.mark.parametrize("environ,message", [
    ({"LC_EVAL_NATIVE": "yes"}, "LC_EVAL_NATIVE='yes' is not one of 0, 1"),
    ({"LC_EVAL_ONEDNN": "auto"}, "LC_EVAL_ONEDNN='auto'"),
    ({"LC_EVAL_MALLOPT": "false"}, "LC_EVAL_MALLOPT='false'"),
    ({"LC_EVAL_TRACEBACK": "on"}, "LC_EVAL_TRACEBACK='on'"),
])
def test_a_switch_with_a_value_lc_eval_does_not_read_is_refused(environ, message):
    from lc_eval.preflight import check_environment

    with pytest.raises(UsageError, match=message):
        check_environment(environ)


def test_switches_with_values_lc_eval_reads_pass(tmp_path):
    from lc_eval.preflight import check_environment

    check_environment({"LC_EVAL_NATIVE": "0", "LC_EVAL_TRACEBACK": "True",
                       "LC_EVAL_CACHE": str(tmp_path / "new")})


def test_an_unwritable_doc_cache_still_serves_and_warns_once(tmp_path, monkeypatch, caplog):
    from lc_tasks import doc_cache

    cache = doc_cache.DocCache(tmp_path, {"family": "passkey"})
    cache.put(0, {"input": "kept"}, hints=[])
    monkeypatch.setattr(doc_cache.os, "replace", lambda *a: (_ for _ in ()).throw(
        PermissionError(13, "Permission denied")))  # a read-only folder
    with caplog.at_level("WARNING", logger="lm_eval.lc_tasks"):
        cache.put(1, {"input": "lost"}, hints=[])
        cache.put(2, {"input": "lost"}, hints=[])
    assert cache.get(0) == ({"input": "kept"}, [])
    assert cache.get(1) is None
    warnings = [r.getMessage() for r in caplog.records if "cannot be written" in r.getMessage()]
    assert len(warnings) == 1 and "Permission denied" in warnings[0], warnings
    assert not list(cache.folder.glob(".*.tmp")), "no temporary file left behind"


def test_a_doc_cache_under_a_file_is_one_usage_error(tmp_path):
    from lc_tasks.doc_cache import cache_root

    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="is not a folder"):
        cache_root(str(tmp_path / "file" / "cache"))
    assert cache_root("off") is None
    assert cache_root(str(tmp_path / "new")) == tmp_path / "new"


@pytest.mark.parametrize("content,message", [
    (lambda: pickle.dumps([1, 2]), "is not a weights-only state dict: it holds a plain pickle"),
    (lambda: b"not a torch file", "w.pth is not a weights file"),
], ids=["pickle", "text"])
def test_a_weights_file_that_is_not_one_is_one_line(content, message, tmp_path):
    from lc_models.models.checkpoint import read_weights

    path = tmp_path / "w.pth"
    path.write_bytes(content())
    with pytest.raises(UsageError, match=message) as info:
        read_weights(str(path))
    assert "\n" not in str(info.value) and str(path) in str(info.value)
