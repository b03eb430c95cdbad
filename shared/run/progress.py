"""How far a run or an evaluation has come: a live bar on a terminal, otherwise a line at intervals.

A command whose stderr is a log file or a CI job's output would show nothing for minutes; the lines say what is
done out of what, and how it went so far, every PROGRESS_INTERVAL_S and once more at the end.
"""
from __future__ import annotations

import sys
import time
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

PROGRESS_INTERVAL_S = 30.0


def _elapsed(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


class ProgressReport:
    """`with ProgressReport("run run-1", total) as p: p.update(done, summary)`; `summary` may carry rich markup."""

    def __init__(self, what: str, total: int, *, console: Console | None = None,
                 interval_s: float = PROGRESS_INTERVAL_S, stream: TextIO | None = None):
        self.what, self.total, self.interval_s = what, total, interval_s
        self.console = console or Console(stderr=True)
        self.stream = stream or sys.stderr
        self.live = self.console.is_terminal
        self.done, self.summary = 0, ""
        self._started = self._last_line = time.monotonic()
        self._bar: Progress | None = None

    def __enter__(self) -> "ProgressReport":
        if self.live:
            columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            self._bar = Progress(*columns, console=self.console)
            self._bar.start()
            self._task = self._bar.add_task("", total=self.total)
        return self

    def update(self, done: int, summary: str, total: int | None = None) -> None:
        self.done, self.summary, self.total = done, summary, total if total is not None else self.total
        if self._bar is not None:
            self._bar.update(self._task, description=summary, completed=done, total=self.total)
        elif time.monotonic() - self._last_line >= self.interval_s:
            self._line()

    def line(self) -> str:
        summary = Text.from_markup(self.summary).plain
        return (f"[{time.strftime('%H:%M:%S')}] {self.what}: {self.done}/{self.total} done"
                f"{', ' + summary if summary else ''} ({_elapsed(time.monotonic() - self._started)})")

    def _line(self) -> None:
        self._last_line = time.monotonic()
        print(self.line(), file=self.stream, flush=True)

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()
        else:
            self._line()
