"""The READMEs of lm-eval's task folder ``lc_eval/``, in lm-eval's task README template.

``readme`` writes the folder's own README from the family table and the folder's task names;
``patch_family_readme`` adapts a family README of ``task_configs/`` to the folder (its template
headings, only the folder's tasks, placeholders that GitHub does not hide as HTML);
``group_readme`` writes one for a group folder that has none (``ruler/``).

>>> escape_placeholders("lc_kvrecall_<len>_p<N> and `lc_suite_<len>`")
'lc_kvrecall_&lt;len&gt;_p&lt;N&gt; and `lc_suite_<len>`'
"""

from __future__ import annotations

import re

from lc_tasks.citations import DATASETS, RULER, paper_of
from lc_tasks.families import FAMILIES, GROUPS

__all__ = ["escape_placeholders", "group_readme", "patch_family_readme", "readme",
           "tasks_readme_line"]

_PLACEHOLDER = re.compile(r"<([^<>`\s][^<>`]*)>")
_ROW = re.compile(r"^\| `(lc_[^`]+)` \|")


def _added() -> str:
    """The families that are not RULER's, e.g. ``passkey, kvrecall, ppl``."""
    return ", ".join(name for name, f in FAMILIES.items() if f.ruler is None)


def tasks_readme_line() -> str:
    """The row of ``lm_eval/tasks/README.md`` (its table of task folders) for this folder."""
    return (f"| [lc_eval](lc_eval/README.md) | Length-sweeping synthetic long-context tasks "
            f"(RULER's 13 and {_added()}), prompts sized to the model's own tokenizer. "
            "| English |")


def escape_placeholders(markdown: str) -> str:
    """``<word>`` outside code spans and fences as ``&lt;word&gt;``: GitHub renders a bare
    ``<len>`` as an HTML tag and shows nothing."""
    out, fenced = [], False
    for line in markdown.split("\n"):
        if line.startswith("```"):
            fenced = not fenced
        if not fenced:
            parts = line.split("`")
            parts[::2] = [_PLACEHOLDER.sub(r"&lt;\1&gt;", p) for p in parts[::2]]
            line = "`".join(parts)
        out.append(line)
    return "\n".join(out)


def patch_family_readme(text: str, names: set[str], lengths: tuple[str, ...]) -> str:
    """A family README of ``task_configs/`` for the folder: ``## Paper`` as in lm-eval's
    template, task rows only for the folder's ``names``, a line on the lengths."""
    lines = [line for line in text.split("\n")
             if not (_ROW.match(line) and _ROW.match(line).group(1) not in names)]
    text = "\n".join(lines).replace("\n### Paper\n", "\n## Paper\n", 1)
    note = (f"lm-eval's copy holds the lengths {', '.join(lengths)}; lc-eval "
            "(`lc-eval tasks`) has every length from 1k to 1m.\n\n")
    text = text.replace("\n#### Tasks\n\n", f"\n#### Tasks\n\n{note}", 1)
    return escape_placeholders(text)


def group_readme(group: str, lengths: tuple[str, ...]) -> str:
    """The README of a group folder (``lc_<group>_<len>``) that ``task_configs/`` leaves
    without one."""
    if group not in GROUPS:
        raise ValueError(f"task_configs/{group}/ has no README.md and is not a group of "
                         "families.GROUPS: give it a README in scripts/gen_task_configs.py")
    families = GROUPS[group]
    members = ", ".join(f"`lc_{f}_<len>`" for f in families)
    qa = [f for f in families if FAMILIES[f].kind == "qa"]
    data = (f" {' and '.join(f'`lc_{f}`' for f in qa)} read their dev sets from the Hugging "
            "Face Hub unless `--metadata` names a local file." if qa else "")
    rows = "\n".join(f"* `lc_{group}_{label}`" for label in lengths)
    return f"""# lc_{group}

## Paper

Title: `{RULER.title}`

Abstract: `{RULER.abstract}`

One group per length: the unweighted mean `acc` of {len(families)} families at one length:
{members}.{data}

Homepage: `{RULER.homepage}`

### Citation

See `../README.md`.

### Groups, Tags, and Tasks

#### Groups

{rows}

#### Tags

None.

#### Tasks

The member tasks, each described in its family's folder.

### Checklist

See `../README.md`.

### Changelog

* 1.0: first version.
"""


def _task_lines(names: set[str], lengths: tuple[str, ...]) -> str:
    """One line per family, then one per other name pattern (parameter sweeps)."""
    lines = []
    for name, family in FAMILIES.items():
        if any(f"lc_{name}_{label}" in names for label in lengths):
            ruler = f" (RULER `{family.ruler}`)" if family.ruler else ""
            lines.append(f"* `lc_{name}_<len>`: {family.summary}{ruler}")
    plain = {f"lc_{name}_{label}" for name in FAMILIES for label in lengths}
    plain |= {f"lc_{group}_{label}" for group in GROUPS for label in lengths}
    patterns = sorted({re.sub(r"(_[a-z]+)\d+$", r"\1<N>", re.sub(r"_\d+[km](?=_|$)", "_<len>", n))
                       for n in names - plain})
    lines += [f"* `{p}`: a sweep of one parameter at a fixed length (see the family's README)"
              for p in patterns]
    return "\n".join(lines)


def readme(*, names: set[str], lengths: tuple[str, ...], tag: str, homepage: str,
           checked: str) -> str:
    """The folder's README: ``names`` its task and group names, ``lengths`` its length labels,
    ``checked`` the summary line of ``scripts/check_upstream.sh``."""
    # the papers of the families in the folder, in the family table's order
    papers = list(dict.fromkeys(paper_of(family.kind) for name, family in FAMILIES.items()
                                if any(f"lc_{name}_{label}" in names for label in lengths)))
    bibtex = [paper.bibtex for paper in papers]
    qa_sets = [f.params["dataset"] for f in FAMILIES.values() if f.kind == "qa"
               and any(f"lc_{f.name}_{label}" in names for label in lengths)]
    bibtex += [DATASETS[d] for d in qa_sets if d in DATASETS]
    titles = "; ".join(f"`{paper.title}`" for paper in papers)
    abstracts = ", ".join(f"`{paper.abstract}`" for paper in papers)
    groups = "\n".join(
        f"* `lc_{g}_<len>`: the unweighted mean `acc` of {len(fams)} families at one length "
        f"({', '.join(f'`{f}`' for f in fams)})" for g, fams in GROUPS.items()
        if any(f"lc_{g}_{label}" in names for label in lengths))
    n_tasks = len([n for n in names if not any(n == f"lc_{g}_{label}" for g in GROUPS
                                               for label in lengths)])
    citations = "\n".join(bibtex)
    return f"""# lc_eval

## Paper

Title: {titles}

Abstract: {abstracts}

`Length-sweeping long-context tasks: every family at {len(lengths)} lengths ({', '.join(lengths)} tokens of the model's own tokenizer), each prompt sized exactly to that tokenizer, needles at controlled depths, deterministic, and built offline (no download but the QA dev sets). They reproduce RULER's 13 tasks and add the families {_added()}, for comparing attention, state-space, linear-RNN and hybrid models at and past their training lengths (Huang, 2024, arXiv 2407.08112).`

Homepage: `{homepage}`

The generators, prompt templates, word lists and scorers are in this folder (`lc_tasks/`):
a generated copy of the `lc_tasks` package of lc-eval, byte for byte but for a three-line
header and its import name, which lc-eval's test suite checks against the package. They need
only lm-eval's own dependencies (`transformers` for the tokenizer, as RULER's tasks). The header
holds `# ruff: noqa` and `# fmt: off`, so that lm-eval's hooks leave the tested code as it is:
please send fixes to lc-eval, whose `scripts/make_upstream_folder.py` writes this folder.

> [!NOTE]
> * The tokenizer that sizes the prompts comes from the model arguments (`tokenizer`, then
>   `pretrained`, then `model`) or `--metadata '{{"tokenizer": "<name or path>"}}'`. Loaded
>   without one (lm-eval's task tests, `TaskManager().load`), a task builds 10 docs sized by a
>   stand-in word-level tokenizer, for validation only: each is marked `validation_only`, and scoring
>   one is an error.
> * Docs per task: 100 (`lc_ppl`: 20); `--metadata '{{"num_samples": N}}'` changes it. Docs
>   are cached in `~/.cache/lc-eval` (`LC_EVAL_CACHE=off` to turn it off).
> * `lc_qa_squad_<len>` and `lc_qa_hotpot_<len>` read their dev sets from the Hugging Face
>   Hub; `--metadata '{{"squad": "<path of dev-v2.0.json>"}}'` or
>   `'{{"hotpotqa": "<path of hotpot_dev_distractor_v1.json>"}}'` reads local files instead.
> * Set `max_length` in the model arguments to the longest length you run: lm-eval's `hf`
>   model truncates longer prompts from the left.
> * This folder holds the lengths RULER reports ({', '.join(lengths)}). The lc-eval package
>   (`lc-eval tasks`) has 1k to 1m, and more options per family.

### Citation

```text
{citations}
```

### Groups, Tags, and Tasks

#### Groups

{groups}

#### Tags

* `{tag}`: every task of this folder ({n_tasks} tasks; `--tasks {tag}` runs them all).

#### Tasks

{_task_lines(names, lengths)}

`<len>` is one of {', '.join(f'`{label}`' for label in lengths)}. Each family's folder has its
README: what a doc holds, its options (through `--metadata`), its tasks.

Checked with lm-eval's own task tests: {checked}

### Checklist

For adding novel benchmarks/datasets to the library:

* [x] Is the task an existing benchmark in the literature?
  * [x] Have you referenced the original paper that introduced the task?
  * [ ] If yes, does the original paper provide a reference implementation? If so, have you checked against the reference implementation and documented how to run such a test?
    RULER's reference implementation is NVIDIA's (`https://github.com/NVIDIA/RULER`,
    `scripts/data/synthetic/`). These generators follow its templates, needle formats and
    two scorers (string-match-all and string-match-part), but they have not been run side by
    side with NVIDIA's scripts: no such comparison exists yet.

If other tasks on this dataset are already supported:

* [x] Is the "Main" variant of this task clearly denoted? (`lc_ruler_<len>`, all 13 RULER tasks)
* [x] Have you provided a short sentence in a README on what each new variant adds / evaluates?
* [x] Have you noted which, if any, published evaluation setups are matched by this variant?
  (each family names the RULER task it reproduces)

### Changelog

* 1.0: first version.
"""
