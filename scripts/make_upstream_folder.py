"""Write the task folder an lm-eval pull request would add under ``lm_eval/tasks/``.

    python scripts/make_upstream_folder.py --out /tmp/upstream
    cp -r /tmp/upstream/lc_eval <lm-evaluation-harness>/lm_eval/tasks/

The folder holds the YAMLs, the READMEs and ``lc_tasks/``, a copy of lc-eval's task package, the
code they run. See ``lc_eval.upstream`` for its shape and why, docs/contributing-upstream.md
for the steps of the pull request, and ``scripts/check_upstream.sh`` for
lm-eval's own checks on it.
"""

from __future__ import annotations

import argparse

from lc_eval.upstream import HOMEPAGE, write_folder
from lc_eval.upstream_readme import tasks_readme_line
from lc_tasks.errors import UsageError


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder to write lc_eval/ into")
    parser.add_argument("--homepage", default=HOMEPAGE,
                        help=f"the README's Homepage URL (default {HOMEPAGE})")
    args = parser.parse_args(argv)
    try:
        folder = write_folder(args.out, homepage=args.homepage)
    except UsageError as err:  # --out cannot hold the folder (write_folder's check_out)
        parser.error(str(err))  # one line, exit 2
    print(f"wrote {folder}; add this row to lm-eval's lm_eval/tasks/README.md, in "
          f"alphabetical order:\n{tasks_readme_line()}")


if __name__ == "__main__":
    main()
