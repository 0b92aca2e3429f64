"""The tasks inside real lm-eval: registry, groups, --limit, and two oracle models.

The oracle answers every prompt by reading it (perfect retrieval) and must
score acc 1.0 everywhere; the window oracle sees only the last W tokens and
must score 1 on needles inside W and 0 on needles outside. Together they show
that answers, needle positions and the scorer agree. One TaskManager that
indexes only our folder is shared (indexing lm-eval's own tasks takes ~30 s).
"""

from __future__ import annotations

import fnmatch
import subprocess
import sys
from pathlib import Path

import pytest
from lc_oracles import OracleLM
from lm_eval import simple_evaluate
from lm_eval.tasks import TaskManager

import lc_tasks
from lc_models.zoo.tiny import build_tokenizer
from lc_tasks.families import (
    DEFAULT_DEPTHS,
    FAMILIES,
    LENGTHS,
    PAIR_SWEEPS,
    RULER13,
    SUITE,
    pair_task_name,
)

GENERATING = [f for f, info in FAMILIES.items() if info.output_type == "generate_until"]

ROOT = Path(__file__).resolve().parents[1]


def manager(**metadata) -> TaskManager:
    return TaskManager(include_path=lc_tasks.include_path(), include_defaults=False,
                       metadata=metadata)


@pytest.fixture(scope="module")
def index() -> TaskManager:
    return manager()


def run(tm: TaskManager, model, tasks, **kw):
    return simple_evaluate(model=model, tasks=tasks, task_manager=tm, **kw)


def test_every_family_at_every_length_is_listed(index):
    expected = {f"lc_{f}_{label}" for f in FAMILIES for label in LENGTHS}
    sweeps = {pair_task_name(LENGTHS[label], n) for label, ns in PAIR_SWEEPS.items() for n in ns}
    assert expected | sweeps <= set(index.all_subtasks)
    assert len(expected) == 19 * 11 and len(sweeps) == 24
    assert {f"lc_{g}_{label}" for g in ("suite", "ruler") for label in LENGTHS} == set(
        index.all_groups)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_group_names_do_not_match_family_globs(family, index):
    assert not fnmatch.filter(index.all_groups, f"lc_{family}_*")
    assert len(index.match_tasks([f"lc_{family}_*[km]"])) == 11  # the length sweep


@pytest.mark.parametrize("group, members, count", [("suite", SUITE, 11), ("ruler", RULER13, 13)])
def test_groups_hold_the_ruler_families(group, members, count):
    from lm_eval.tasks._yaml_loader import load_yaml

    assert len(members) == count and "passkey" not in members
    assert ("qa_squad" in members) == (group == "ruler")
    for label in LENGTHS:
        cfg = load_yaml(Path(lc_tasks.include_path()) / group / f"lc_{group}_{label}.yaml",
                        resolve_func=False)
        assert cfg["task"] == [f"lc_{f}_{label}" for f in members]
        assert cfg["aggregate_metric_list"][0]["metric"] == "acc"


def test_committed_task_configs_match_the_generator_script():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_task_configs.py"),
                          "--check"], capture_output=True, text=True, check=False)
    assert out.returncode == 0, "task_configs/ is stale; rerun scripts/gen_task_configs.py\n" \
        + out.stdout


@pytest.fixture(scope="module")
def char_dir(tokenizer_dir):
    return str(tokenizer_dir("char"))


@pytest.mark.parametrize(
    "kind,label", [("char", "1k"), ("bpe", "4k")], ids=["char-1k", "bpe-4k"])
def test_oracle_scores_one_on_every_family(kind, label, tokenizer_dir, qa_options):
    tm = manager(tokenizer=str(tokenizer_dir(kind)), num_samples=11, **qa_options)
    res = run(tm, OracleLM(), [f"lc_passkey_{label}", f"lc_kvrecall_{label}",
                               f"lc_ruler_{label}", *(f"lc_{f}_{label}" for f in
                                                      ("copy", "niah_latent", "statetrack"))]
              )["results"]
    for family in GENERATING:
        name = f"lc_{family}_{label}"
        assert res[name]["acc,none"] == 1.0, (name, res[name])
    assert res[f"lc_ruler_{label}"]["acc,none"] == 1.0


def test_limit_spans_every_depth(char_dir):
    tm = manager(tokenizer=char_dir, num_samples=33)
    out = run(tm, OracleLM(), ["lc_niah_single_2k", "lc_passkey_2k"], limit=11,
              log_samples=True)
    for name in ("lc_niah_single_2k", "lc_passkey_2k"):
        depths = sorted(s["doc"]["depth"] for s in out["samples"][name])
        assert depths == list(DEFAULT_DEPTHS), (name, depths)


@pytest.mark.parametrize("family", ["passkey", "niah_single", "niah_prose", "niah_needles",
                                    "niah_multikey", "kvrecall"])
def test_window_model_finds_needles_only_inside_its_window(family, char_dir):
    window = 2048
    tm = manager(tokenizer=char_dir, num_samples=22)
    model = OracleLM(window=window, tokenizer=build_tokenizer("char"))
    samples = run(tm, model, [f"lc_{family}_4k"], log_samples=True)["samples"][f"lc_{family}_4k"]
    inside, outside = [], []
    for s in samples:
        doc = s["doc"]
        start = doc["n_tokens"] - window  # first visible token
        pos = doc["needle_positions"][0]  # the asked needle
        if pos >= start:
            inside.append(s["acc"])
        elif pos + 100 < start:  # wholly outside (needles are < 100 tokens)
            outside.append(s["acc"])
    assert len(inside) >= 5 and len(outside) >= 5, (len(inside), len(outside))
    assert sum(inside) / len(inside) == 1.0, inside
    assert sum(outside) == 0.0, outside


def test_missing_tokenizer_is_one_clear_error():
    tm = manager(num_samples=2)
    with pytest.raises(ValueError, match="lc_passkey_1k sizes its prompts") as err:
        run(tm, OracleLM(), ["lc_passkey_1k"])
    assert "--model_args pretrained=" in str(err.value)


@pytest.mark.parametrize("read", [{"query_first": True}, {"repeat_context": 2}],
                         ids=["query-first", "twice"])
def test_oracle_scores_one_on_read_twice_prompts(read, char_dir, qa_options):
    tm = manager(tokenizer=char_dir, num_samples=4, **read, **qa_options)
    tasks = ["lc_passkey_2k", "lc_niah_single_2k", "lc_niah_multiquery_2k", "lc_vt_2k",
             "lc_cwe_2k", "lc_fwe_2k", "lc_qa_hotpot_2k", "lc_kvrecall_2k"]
    res = run(tm, OracleLM(), tasks)["results"]
    assert all(res[t]["acc,none"] == 1.0 for t in tasks), {t: res[t]["acc,none"] for t in tasks}
