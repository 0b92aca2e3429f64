#!/usr/bin/env bash
# lm-eval's own checks on the upstream task folder, as its CI would run them on the pull request.
#
#   PYTHON=/tmp/venv-up/bin/python scripts/check_upstream.sh LM_EVAL_CHECKOUT [--all-lengths]
#
# LM_EVAL_CHECKOUT: a checkout of lm-evaluation-harness (left untouched: the script works on a
# copy in a temporary folder). PYTHON: an interpreter with lm-eval's CI install of that
# checkout (`pip install -e "LM_EVAL_CHECKOUT[dev,hf]"`) and without lc-eval, as lm-eval's CI
# has it; pre-commit, ruff and pre-commit-hooks beside it for the hooks.
# LC_EVAL_SITE (optional): a folder holding an lc-eval install (e.g. `pip install --no-deps
# --target DIR lc_eval-*.whl`) to make the folder from, instead of this checkout's sources.
#
# 1. writes the folder (scripts/make_upstream_folder.py) into the copy's lm_eval/tasks/, with
#    its row in lm_eval/tasks/README.md;
# 2. runs lm-eval's tests/test_tasks.py unmodified, as the "Tasks Modified" job does: the
#    changed files listed in .github/outputs/tasks_all_changed_and_modified_files.txt, which
#    tests/utils.py reads. The list holds the folder's task files at 4k (every length with
#    --all-lengths). Group files are left aside: lm-eval's test loads every listed file in one
#    TaskManager.load, and a group beside its own members is "Duplicate task" (lm-eval's ruler/
#    too). The QA task files and lm-eval's own Hub-reading regression tests need the Hugging
#    Face Hub; without it they are left aside, and the report says so;
# 3. `lm_eval validate` on every task and group of the folder, and each group loaded alone;
# 4. lm-eval's pre-commit hooks on the new files (its .pre-commit-config.yaml; where the hook
#    repositories cannot be fetched, the same tools at the same versions, run directly);
# 5. prints a report; exits 1 if any step failed.
set -uo pipefail

usage() { echo "usage: PYTHON=<python> $0 LM_EVAL_CHECKOUT [--all-lengths]" >&2; exit 2; }
[[ $# -ge 1 && -d ${1:-} ]] || usage
checkout=$(cd "$1" && pwd)
lengths=4k
[[ ${2:-} == --all-lengths ]] && lengths=all
[[ $# -le 2 ]] || usage
[[ -f $checkout/tests/test_tasks.py && -d $checkout/lm_eval/tasks ]] ||
  { echo "$checkout is not a checkout of lm-evaluation-harness" >&2; exit 2; }
repo=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-python}
bindir=$(dirname "$("$py" -c 'import sys; print(sys.executable)')")
if (cd / && "$py" -c "import lc_tasks" 2>/dev/null); then
  echo "$py can import lc_tasks: use an interpreter without lc-eval, as lm-eval's CI has" >&2
  exit 2
fi

work=$(mktemp -d /tmp/lc-upstream-XXXXXX)
log=$work/log
echo "working copy: $work/lm-eval (logs in $log.*)"
cp -r "$checkout" "$work/lm-eval" && rm -rf "$work/lm-eval/.git"
cd "$work/lm-eval" || exit 2
git init -q && git add -A && git -c user.name=check -c user.email=check@localhost commit -qm base \
  --no-verify || { echo "git init of the copy failed" >&2; exit 2; }

# 1. the folder and its README row
PYTHONPATH=${LC_EVAL_SITE:-$repo} "$py" "$repo/scripts/make_upstream_folder.py" --out lm_eval/tasks \
  >"$log.make" ||
  { cat "$log.make"; exit 2; }
row=$(tail -n 1 "$log.make")
"$py" - "$row" <<'EOF' || exit 2
import re, sys
path, row = "lm_eval/tasks/README.md", sys.argv[1]
lines = open(path, encoding="utf-8").read().split("\n")
rows = [i for i, line in enumerate(lines) if re.match(r"\| \[[^\]]+\]\(", line)]
at = next((i for i in rows if re.match(r"\| \[([^\]]+)\]", lines[i]).group(1).lower() > "lc_eval"),
          rows[-1] + 1)
lines.insert(at, row)
open(path, "w", encoding="utf-8").write("\n".join(lines))
EOF
git add -A
changed=$(git diff --cached --name-only)

# Is the Hugging Face Hub reachable (QA dev sets, lm-eval's own regression tests)?
hub=yes
"$py" -c "import urllib.request; urllib.request.urlopen('https://huggingface.co', timeout=5)" \
  2>/dev/null || hub=no

# 2. lm-eval's task tests on the changed-files list
mkdir -p .github/outputs
"$py" - "$lengths" "$hub" $changed >.github/outputs/tasks_all_changed_and_modified_files.txt <<'EOF'
import re, sys
lengths, hub, files = sys.argv[1], sys.argv[2], sys.argv[3:]
for path in files:
    if not (path.startswith("lm_eval/tasks/lc_eval/") and path.endswith(".yaml")):
        continue
    text = open(path, encoding="utf-8").read()
    name = re.search(r"^(?:task|group): (\S+)$", text, re.M)
    if re.search(r"^group:", text, re.M) or name is None:
        continue  # groups: "Duplicate task" beside their members; checked in step 3
    if lengths == "4k" and not re.search(r"_4k(_|$)", name.group(1)):
        continue
    if hub == "no" and "/qa_" in path:
        continue  # reads its dev set from the Hub
    print(path)
EOF
n_files=$(wc -l <.github/outputs/tasks_all_changed_and_modified_files.txt)
deselect=()
if [[ $hub == no ]]; then
  for t in fda swde squad_completion; do
    deselect+=(--deselect "tests/test_tasks.py::test_strip_whitespace_in_target_and_metric[$t]")
  done
fi
TQDM_DISABLE=1 HF_HUB_DISABLE_PROGRESS_BARS=1 "$py" -m pytest -x -s -vv -p no:cacheprovider \
  tests/test_tasks.py "${deselect[@]}" >"$log.pytest" 2>&1
pytest_rc=$?
pytest_summary=$(grep -E "^=+ .*(passed|failed|error).* in .*=+$" "$log.pytest" | tail -n 1)

# 3. lm_eval validate on every task and group; each group loaded alone
names=$("$py" - <<'EOF'
import pathlib, re
out = []
for p in sorted(pathlib.Path("lm_eval/tasks/lc_eval").rglob("*.yaml")):
    out.append(re.search(r"^(?:task|group): (\S+)$", p.read_text(), re.M).group(1))
print(",".join(out))
EOF
)
"$py" -m lm_eval validate --tasks "$names" >"$log.validate" 2>&1
validate_rc=$?
"$py" - "$lengths" "$hub" >"$log.groups" 2>&1 <<'EOF'
import pathlib, re, sys
from lm_eval.tasks import TaskManager
from lm_eval.tasks._yaml_loader import load_yaml
lengths, hub = sys.argv[1:]
manager = TaskManager()
paths = {}
for p in sorted(pathlib.Path("lm_eval/tasks/lc_eval").rglob("*.yaml")):
    found = re.search(r"^group: (\S+)$", p.read_text(), re.M)
    if found:
        paths[found.group(1)] = p
for group in paths:
    if lengths == "4k" and not group.endswith("_4k"):
        continue
    members = load_yaml(paths[group], resolve_func=False)["task"]
    if hub == "no" and any("_qa_" in m for m in members):
        print(f"SKIP {group}: its QA members read their dev sets from the Hub")
        continue
    loaded = manager.load([group])["tasks"]
    docs = {t.config.task: len(list(t.test_docs())) for t in loaded.values()}
    assert sorted(docs) == sorted(members), (group, sorted(docs))
    print(f"OK {group}: {len(docs)} tasks, {sum(docs.values())} docs")
EOF
groups_rc=$?

# 4. pre-commit
new_files=$(git diff --cached --name-only)
"$bindir/pre-commit" run --files $new_files >"$log.precommit-run" 2>&1
precommit_rc=$?
cp "$log.precommit-run" "$log.precommit"
precommit_how="pre-commit run (lm-eval's .pre-commit-config.yaml)"
if [[ $precommit_rc -ne 0 ]] && grep -qE "An unexpected error|CalledProcessError|Could not resolve|unable to access" "$log.precommit-run"; then
  # The hook repositories could not be fetched: the same hooks, run directly
  precommit_how="the hooks run directly (their repositories could not be fetched): pre-commit-hooks $("$py" -c 'import importlib.metadata as m; print(m.version("pre-commit-hooks"))'), ruff $("$bindir/ruff" --version | cut -d' ' -f2); codespell and pymarkdown exclude lm_eval/tasks/"
  py_files=$(echo "$new_files" | grep '\.py$')
  yaml_files=$(echo "$new_files" | grep '\.yaml$')
  precommit_rc=0
  hook() {  # a hook fails when its tool fails or changes a file, as in pre-commit
    local before after
    before=$(git diff | md5sum)
    echo "+ ${1##*/} ${2:0:1}${2:1:40} ... ($(($# - 1)) arguments)"
    "$@" || precommit_rc=1
    after=$(git diff | md5sum)
    [[ $before == "$after" ]] || { echo "  ^ changed files"; precommit_rc=1; }
  }
  {
    hook "$bindir/check-added-large-files" $new_files
    hook "$bindir/check-ast" $py_files
    hook "$bindir/fix-byte-order-marker" $new_files
    hook "$bindir/check-case-conflict" $new_files
    hook "$bindir/check-merge-conflict" --assume-in-merge $new_files
    hook "$bindir/check-yaml" --unsafe $yaml_files
    hook "$bindir/detect-private-key" $new_files
    hook "$bindir/end-of-file-fixer" $new_files
    hook "$bindir/trailing-whitespace-fixer" --markdown-linebreak-ext=md $new_files
    hook "$bindir/mixed-line-ending" --fix=lf $new_files
    hook "$bindir/ruff" check --fix $py_files
    hook "$bindir/ruff" format $py_files
  } >"$log.precommit" 2>&1
fi

# 5. report
ok() { [[ $1 -eq 0 ]] && echo PASS || echo FAIL; }
echo
echo "lm-eval checkout: $checkout ($(git -C "$checkout" rev-parse --short HEAD 2>/dev/null || cat "$checkout/.commit" 2>/dev/null || echo "no git"))"
echo "folder: $(echo "$new_files" | grep -c '^lm_eval/tasks/lc_eval/') files, made from ${LC_EVAL_SITE:-$repo}; Hub reachable: $hub"
echo "[$(ok $pytest_rc)] tests/test_tasks.py on $n_files changed task files ($lengths): $pytest_summary"
[[ $hub == no ]] && echo "       left aside without the Hub: the QA task files, lm-eval's test_strip_whitespace_in_target_and_metric (fda, swde, squad_completion)"
echo "[$(ok $validate_rc)] lm_eval validate on $(echo "$names" | tr ',' '\n' | wc -l) tasks and groups: $(tail -n 1 "$log.validate")"
echo "[$(ok $groups_rc)] each group loaded alone: $(grep -c '^OK' "$log.groups") loaded, $(grep -c '^SKIP' "$log.groups") left aside"
echo "[$(ok $precommit_rc)] pre-commit, by $precommit_how"
[[ $pytest_rc -eq 0 ]] || tail -n 40 "$log.pytest"
[[ $groups_rc -eq 0 ]] || tail -n 20 "$log.groups"
[[ $validate_rc -eq 0 ]] || tail -n 20 "$log.validate"
[[ $precommit_rc -eq 0 ]] || tail -n 40 "$log.precommit"
[[ $pytest_rc -eq 0 && $validate_rc -eq 0 && $groups_rc -eq 0 && $precommit_rc -eq 0 ]]
