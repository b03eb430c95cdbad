"""Processes tied to the command that started them: they end when it ends, however it ends.

A command with a stack of its own (`turnforge run --embedded`) stops that stack itself on Ctrl-C, SIGTERM and
SIGHUP. Nothing runs in it after a SIGKILL or a crash, so each process of the stack is tied to it as well:

- on Linux the kernel signals each process of it when its parent dies (prctl PR_SET_PDEATHSIG, asked for between
  fork and exec: `tied`), whatever it runs: the broker, PostgreSQL, a model server, a service;
- elsewhere a small launcher (this module's main) runs the component and passes the signal on when the parent is gone;
- every service also watches its parent's pid from a thread (`tie_to_parent`): the portable way, and a second line of
  defence on Linux.

The tie is opt-in: the parent puts its pid in TURNFORGE_PARENT_PID. `turnforge up` does not, so its stack outlives it.
The kernel's signal follows the *thread* that started the child: tied processes are started from the main thread.

The launcher: `python -m shared.runtime.lifeline [--signal NAME] -- ARGV...`; it imports nothing of TurnForge.
"""
from __future__ import annotations

import argparse
import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Callable

PARENT_ENV = "TURNFORGE_PARENT_PID"
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
WATCH_INTERVAL_S = 1.0
# After its parent died a tied process has nobody to report to (and its private broker is gone too): it gets this
# long to stop by its own SIGTERM handler, then it exits hard.
GRACE_S = 10.0

log = logging.getLogger("turnforge.lifeline")


def die_with_parent(sig: int = signal.SIGTERM) -> bool:
    """Ask the kernel to send `sig` to this process when its parent dies; False where that is not available."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0


def expected_parent() -> int | None:
    """The pid this process is tied to, from TURNFORGE_PARENT_PID; None when it is not tied."""
    value = os.environ.get(PARENT_ENV, "")
    return int(value) if value.isdigit() else None


def watch_parent(parent: int, *, sig: int = signal.SIGTERM, interval_s: float = WATCH_INTERVAL_S,
                 grace_s: float = GRACE_S) -> threading.Thread:
    """A daemon thread that signals this process (`sig`, its usual clean stop) once its parent is no longer
    `parent`, and exits it hard `grace_s` later if it is still there."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval_s)
        log.warning("parent process %d is gone: stopping", parent)
        os.kill(os.getpid(), sig)
        time.sleep(grace_s)
        os._exit(1)

    thread = threading.Thread(target=watch, name="parent-watch", daemon=True)
    thread.start()
    return thread


def tie_to_parent() -> int | None:
    """Called where a service starts: when TURNFORGE_PARENT_PID names its parent, end with it (the kernel's signal
    and a watching thread). A parent already gone ends the process now. Returns the parent's pid, or None."""
    parent = expected_parent()
    if parent is None:
        return None
    if os.getppid() == parent:
        die_with_parent(signal.SIGTERM)
    if os.getppid() != parent:  # it died before the kernel was asked to tell us
        log.warning("parent process %d is gone before start: exiting", parent)
        sys.exit(1)
    watch_parent(parent)
    return parent


def tied(argv: list[str], env: dict[str, str], sig: int = signal.SIGTERM
         ) -> tuple[list[str], dict[str, str], Callable[[], None] | None]:
    """(argv, env, preexec_fn) for subprocess.Popen that tie the child to this process: on Linux the kernel's signal
    is asked for between fork and exec (after Popen's change of user, which would clear it; the function imports
    and allocates nothing, as code run there must not); elsewhere the launcher below supervises the child."""
    parent = os.getpid()
    env = {**env, PARENT_ENV: str(parent)}
    if not sys.platform.startswith("linux"):
        return [sys.executable, "-m", __name__, "--signal", signal.Signals(sig).name, "--", *argv], env, None
    prctl, getppid, exit_now = ctypes.CDLL(None, use_errno=True).prctl, os.getppid, os._exit

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if getppid() != parent:
            exit_now(1)

    return argv, env, preexec


def _supervise(argv: list[str], parent: int, sig: int) -> int:
    """Run `argv` as a child and pass it `sig` once our parent is gone (where the kernel offers no such signal)."""
    child = subprocess.Popen(argv, env=dict(os.environ, **{PARENT_ENV: str(os.getpid())}))  # its parent is us now
    while child.poll() is None:
        if os.getppid() != parent:
            child.send_signal(sig)
            try:
                return child.wait(GRACE_S)
            except subprocess.TimeoutExpired:
                child.kill()
                return child.wait()
        time.sleep(WATCH_INTERVAL_S)
    return child.returncode


def main(args: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.runtime.lifeline",
                                     description="run a command that ends when TURNFORGE_PARENT_PID does")
    parser.add_argument("--signal", default="SIGTERM", help="what the command gets when the parent is gone")
    parser.add_argument("argv", nargs=argparse.REMAINDER)
    options = parser.parse_args(args)
    argv = options.argv[1:] if options.argv[:1] == ["--"] else options.argv
    parent = expected_parent()
    if not argv or parent is None:
        parser.error("give a command after --, and the parent's pid in " + PARENT_ENV)
    return _supervise(argv, parent, signal.Signals[options.signal])


if __name__ == "__main__":
    sys.exit(main())
