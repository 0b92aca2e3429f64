"""Every bad input gets one clear line: a corpus of wrong invocations of the real executables.

Each ``lc-eval`` case asserts a non-zero exit, no traceback, and a last line (on stderr) that
names the offending value or name. Most fail in lc-eval's pre-flight checks, before lm-eval
indexes its tasks or loads a model, so each costs about a second. The same inputs through
stock ``lm_eval --include_path ...`` keep lm-eval's traceback, but its last line is ours; those
runs pay lm-eval's full task index (~20 s each), so all but one are marked slow.
"""

from __future__ import annotations

import json

import pytest
from conftest import run_cli

import lc_tasks

RUN = ["run", "--device", "cpu"]


def lc_hf(pretrained="{llama}", extra=""):
    return ["--model", "lc_hf", "--model_args", f"pretrained={pretrained}{extra}"]


def meta(options: dict):
    return ["--metadata", json.dumps(options)]


PASSKEY = ["--tasks", "lc_passkey_1k"]
# id -> (arguments after `lc-eval`, what the last line must contain)
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

    from lc_models import zoo
    from lc_models.tiny_native import MAMBA_SSM_CONFIGS

    root = tmp_path_factory.mktemp("bad-inputs")
    (root / "empty.txt").write_text("")
    (root / "binary.txt").write_bytes(b"abc \xff\xfe not utf-8")
    (root / "folder").mkdir()
    llama = tiny_model("llama")
    no_weights = root / "no-weights"
    no_weights.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(llama / name, no_weights / name)
    truncated = root / "truncated"
    shutil.copytree(llama, truncated)
    weights = truncated / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    bad_native = root / "bad-native"
    bad_native.mkdir()
    (bad_native / "config.json").write_text(json.dumps({**MAMBA_SSM_CONFIGS["mamba2attn"],
                                                        "d_stat": 8}))
    return {"llama": llama, "llama_1k": zoo.path("tiny-llama"), "gpt2": tiny_model("gpt2"),
            "tok": tokenizer_dir("char"), "empty_txt": root / "empty.txt",
            "binary": root / "binary.txt", "folder": root / "folder",
            "no_weights": no_weights, "truncated": truncated, "bad_native": bad_native}


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


def test_the_corpus_covers_at_least_forty_invocations():
    assert len(CORPUS) >= 40


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_lc_eval_ends_a_bad_invocation_with_one_line(case, files):
    args, expected = CORPUS[case]
    proc = run_cli("lc-eval", *fill(args, files), check=False, timeout=300)
    out = assert_one_clear_line(proc, expected, case)
    assert "Traceback" not in out, f"{case}: a traceback\n{out[-3000:]}"


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
