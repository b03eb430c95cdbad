"""Waiting for something started in the background (a broker, a database server, a model server) to serve."""
from __future__ import annotations

import time
from typing import Callable


class NotReady(RuntimeError):
    pass


def wait_ready(what: str, ready: Callable[[], bool], timeout_s: float, *, interval_s: float = 0.2,
               alive: Callable[[], bool] = lambda: True, detail: Callable[[], str] = lambda: "") -> None:
    """Poll `ready` until it holds; fail early once `alive` says the process is gone. `detail` (e.g. the last
    lines of its log) is appended to the failure."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        if not alive():
            raise NotReady(f"{what} exited during start-up{detail()}")
        if time.monotonic() > deadline:
            raise NotReady(f"{what} did not become ready within {timeout_s:.0f}s{detail()}")
        time.sleep(interval_s)
