"""Write the task folder an lm-eval pull request would add under ``lm_eval/tasks/``.

    python scripts/make_upstream_folder.py --out /tmp/upstream
    cp -r /tmp/upstream/lc_eval <lm-evaluation-harness>/lm_eval/tasks/

See ``lc_tasks.upstream`` for the folder's shape and why, and the README's "Contributing
upstream" section for the steps of the pull request.
"""

from __future__ import annotations

import argparse

from lc_tasks.upstream import EXTRA, write_folder


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder to write lc_eval/ into")
    folder = write_folder(parser.parse_args(argv).out)
    print(f"wrote {folder}; add to lm-eval's pyproject.toml [project.optional-dependencies]: "
          f"{EXTRA}")


if __name__ == "__main__":
    main()
