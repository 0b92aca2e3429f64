"""Progress bars close their line: in a log file or pipe, whatever is printed next starts on
a line of its own (issue 34: the prefill bar ended with ``\\r``, and the next log line was
glued onto it). In a terminal a finished bar is still erased."""

from __future__ import annotations

import io
import re
import sys
import time
from pathlib import Path

import pytest
import torch

from lc_models import prefill
from lc_models.prefill import feed
from lc_tasks.progress import leave_bar

ROOT = Path(__file__).resolve().parent.parent


class SlowRunner:
    """A runner whose every chunk takes ``pause`` seconds (so the bar shows)."""

    device = torch.device("cpu")

    def __init__(self, pause: float):
        self.pause = pause

    def new_state(self, batch):
        from lc_models.state import TensorListState

        return TensorListState(None, 0, batch)

    def prefill(self, ids, state, last_only=False):
        time.sleep(self.pause)
        state.n_tokens += ids.shape[1]
        return torch.zeros(ids.shape[0], 1 if last_only else ids.shape[1], 5), state


def test_the_bar_ends_its_line_before_the_next_print(capfd, monkeypatch):
    monkeypatch.setattr(prefill, "PROGRESS_DELAY", 0.05)
    runner = SlowRunner(pause=0.05)
    feed(runner, [list(range(12))], runner.new_state(1), chunk_size=2)
    print("NEXT LINE", file=sys.stderr)
    err = capfd.readouterr().err
    assert "prefill" in err, "the bar never showed; the test proves nothing"
    last = err.rstrip("\n").split("\n")[-1]
    assert last == "NEXT LINE", f"the next line is glued onto the bar: {last[-120:]!r}"


def test_a_short_prefill_prints_nothing(capfd):
    runner = SlowRunner(pause=0.0)
    feed(runner, [list(range(12))], runner.new_state(1), chunk_size=2)
    assert capfd.readouterr().err == ""


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("stream, leave", [(io.StringIO(), True), (Terminal(), False)],
                         ids=["log file", "terminal"])
def test_a_bar_is_kept_and_closed_except_in_a_terminal(stream, leave):
    assert leave_bar(stream) is leave


def test_no_bar_of_the_package_erases_itself_everywhere():
    """Every tqdm bar of lc_tasks, lc_models and lc_eval takes its ``leave`` from ``leave_bar``."""
    for path in sorted(p for floor in ("lc_tasks", "lc_models", "lc_eval")
                       for p in ROOT.glob(f"{floor}/**/*.py")):
        text = path.read_text() if path.name != "progress.py" else ""
        assert not re.search(r"leave\s*=\s*False", text), f"{path}: a bar with leave=False"
