"""The task folder an lm-eval pull request would add as ``lm_eval/tasks/lc_eval/``.

**Shape: a folder of YAMLs that depends on this package as an optional extra**, the way
lm-eval ships its own RULER tasks (their ``wonderwords`` and ``nltk`` are its ``ruler``
extra). The YAMLs are ours, unchanged but for the ``longcxt`` tag RULER's tasks carry: their
``custom_dataset: !function lc_tasks.dataset.build`` and ``process_results`` name functions of
the ``lc_tasks`` package, which ``pip install "lm_eval[lc_eval]"`` installs. Why not a
self-contained copy of the generators: they are some 2,000 lines with their word lists,
templates and tests; a copy inside lm-eval would drift from the tested code, and a fix would
need two pull requests. With the dependency, lm-eval carries 150 small YAMLs and a README,
and the docs are those of the tested package, byte for byte. The data library ``lc_tasks``
needs nothing of lc-eval's model plugin (``lc_models``), which lm-eval does not import.

>>> import tempfile
>>> folder = write_folder(tempfile.mkdtemp())
>>> folder.name, (folder / "README.md").is_file(), (folder / "passkey" / "lc_passkey_1k.yaml").is_file()
('lc_eval', True, True)
"""

from __future__ import annotations

import shutil
from pathlib import Path

from lc_tasks import include_path
from lc_tasks.families import FAMILIES, LENGTHS, SUITE

FOLDER = "lc_eval"  # lm_eval/tasks/<FOLDER>
EXTRA = 'lc_eval = ["lc-eval>=0.1.0"]'  # lm-eval's pyproject.toml, [project.optional-dependencies]
TAG = "longcxt"  # lm-eval's tag for long-context tasks (RULER's tasks carry it)


def write_folder(parent: str | Path) -> Path:
    """Write ``<parent>/lc_eval/`` (YAMLs, per-family READMEs, the task README, the extra's
    line for lm-eval's pyproject) and return it."""
    source = Path(include_path())
    target = Path(parent) / FOLDER
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    base = target / "_lc_base.yaml"
    base.write_text(base.read_text().replace("output_type: generate_until\n",
                                             f"output_type: generate_until\ntag:\n  - {TAG}\n"))
    (target / "README.md").write_text(readme())
    (target / "pyproject-extra.toml").write_text(
        "# Add to lm-eval's pyproject.toml, under [project.optional-dependencies]:\n"
        f"{EXTRA}\n")
    return target


def readme() -> str:
    """The folder's README, in lm-eval's task README template, with its checklist."""
    families = "\n".join(f"* `lc_{name}_<len>`: {f.summary}"
                         + (f" (RULER `{f.ruler}`)" if f.ruler else "")
                         for name, f in FAMILIES.items())
    return f"""# lc_eval

### Paper

Title: `RULER: What's the Real Context Size of Your Long-Context Language Models?` (the
needle, tracing and aggregation families); `Landmark Attention: Random-Access Infinite Context
Length for Transformers` (passkey); `Zoology: Measuring and Improving Recall in Efficient
Language Models` (kvrecall); `Stuffed Mamba: Oversized States Lead to the Inability to Forget`
(ppl, loss by position)

Abstract: `https://arxiv.org/abs/2404.06654`, `https://arxiv.org/abs/2305.16300`,
`https://arxiv.org/abs/2312.04927`, `https://arxiv.org/abs/2410.07145`

Length-sweeping long-context tasks: every family at {len(LENGTHS)} lengths
({', '.join(LENGTHS)} tokens of the model's own tokenizer), prompts sized exactly to the
tokenizer, needles at controlled depths, deterministic and offline (no dataset download). The
study they were built for compares attention, state-space, linear-RNN and hybrid models past
their training lengths (Huang, 2024, arXiv 2407.08112).

Homepage: the `lc-eval` package (`pip install lc-eval`), whose README is the user's manual.

Install: `pip install "lm_eval[lc_eval]"` (the tasks' data builder and scorer are the
`lc_tasks` package of `lc-eval`).

### Citation

```
@article{{hsieh2024ruler,
  title={{RULER: What's the Real Context Size of Your Long-Context Language Models?}},
  author={{Cheng-Ping Hsieh and Simeng Sun and Samuel Kriman and Shantanu Acharya and Dima Rekesh and Fei Jia and Yang Zhang and Boris Ginsburg}},
  year={{2024}},
  journal={{arXiv preprint arXiv:2404.06654}},
}}
@article{{huang2024longsequence,
  title={{How Well Can a Long Sequence Model Model Long Sequences? Comparing Architectural Inductive Biases on Long-Context Abilities}},
  author={{Jerry Huang}},
  year={{2024}},
  journal={{arXiv preprint arXiv:2407.08112}},
}}
```

### Groups, Tags, and Tasks

#### Groups

* `lc_suite_<len>`: the mean `acc` of the {len(SUITE)} RULER-like families at one length.

#### Tags

* `{TAG}`: long-context tasks (every task here).

#### Tasks

{families}

`<len>` is one of {', '.join(LENGTHS)}; `lc_kvrecall_<len>_p<N>` also sweeps the number of
key-value pairs at 1k, 4k and 16k. Options (docs per task, seed, depths, haystack, ...)
go through `--metadata`; the tokenizer that sizes the prompts comes from the model arguments.
Each family's folder has its README.

### Checklist

For adding novel benchmarks/datasets to the library:
* [x] Is the task an existing benchmark in the literature?
  * [x] Have you referenced the original paper that introduced the task?
  * [x] If yes, does the original paper provide a reference implementation? If so, have you checked against the reference implementation and documented how to run such a test?
    RULER's generators are lm-eval's own `ruler` tasks; `benchmarks/bench_tasks.py` of
    lc-eval builds the same needle task with both and compares them.

If other tasks on this dataset are already supported:
* [x] Is the "Main" variant of this task clearly denoted? (`lc_suite_<len>`)
* [x] Have you provided a short sentence in a README on what each new variant adds / evaluates?
* [x] Have you noted which, if any, published evaluation setups are matched by this variant?
  (each family names the RULER task it reproduces)
"""
