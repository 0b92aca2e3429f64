"""The lc-eval application, on top of the task package and the model plugin.

The floors, bottom to top (imports point down only; ``tests/test_layout.py`` checks it):

* ``lc_tasks``: the tasks, exactly what ships to lm-eval (``lm_eval.tasks.lc_eval``);
* ``lc_models``: ``lc_hf`` and the models, ops and runners behind it;
* ``lc_eval`` (this package): the ``lc-eval`` command and its subcommands (``cli``,
  ``tasks_cli``, ``zoo_cli``, ``report``), the run's guards (``preflight`` before the model
  loads, ``truncation`` after), the checks and amendments for served engines (``server``,
  ``served``, ``served_failures``), the run summary (``summary``) and the upstream tooling
  (``upstream``, ``upstream_folder``, ``upstream_readme``).

Importing it loads the model plugin (``lc_models``: ``lc_hf`` in lm-eval's registry, our
checkpoints' short names and tokenizers in the tasks' resolver), which imports neither
torch nor transformers.
"""

import lc_models  # noqa: F401  (registers lc_hf and our checkpoints' tokenizer hooks)
