"""Progress lines when stderr is not a terminal: what is done of what, and so far how it went, at intervals."""
from __future__ import annotations

import io
import re
import time

from rich.console import Console

from shared.run.progress import ProgressReport


def test_lines_at_intervals_and_at_the_end_when_not_a_terminal():
    out = io.StringIO()
    console = Console(file=io.StringIO(), force_terminal=False)
    with ProgressReport("run run-1", 4, console=console, interval_s=0.2, stream=out) as progress:
        progress.update(1, "[green]accepted 1[/] · rejected 0")
        progress.update(1, "[green]accepted 1[/] · rejected 0")  # within the interval: no line
        time.sleep(0.25)
        progress.update(3, "[green]accepted 2[/] · rejected 1")
        progress.update(4, "[green]accepted 3[/] · rejected 1", total=5)  # another round raised the total
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert re.fullmatch(r"\[\d\d:\d\d:\d\d\] run run-1: 3/4 done, accepted 2 · rejected 1 \(0s\)", lines[0])
    assert "run run-1: 4/5 done, accepted 3 · rejected 1" in lines[1]  # the last line: markup gone


def test_a_terminal_gets_the_live_bar_and_no_lines():
    out = io.StringIO()
    console = Console(file=io.StringIO(), force_terminal=True)
    with ProgressReport("run run-1", 2, console=console, interval_s=0, stream=out) as progress:
        progress.update(2, "accepted 2")
    assert out.getvalue() == ""
