"""Processes tied to their parent end when it is killed: by the kernel's signal, the launcher, or a service's
watching thread. Each test kills a real parent with SIGKILL and checks its child by pid."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest

from shared.ops.stack import pid_alive
from shared.runtime import lifeline

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


def _parent(child_code: str) -> tuple[subprocess.Popen, int]:
    """A parent process that starts a child as `child_code` says and prints the child's pid; (parent, child pid)."""
    code = textwrap.dedent("""
        import os, subprocess, sys, time
        from shared.runtime import lifeline
        SLEEPER = {sleeper!r}
        {child}
        print(child.pid, flush=True)
        time.sleep(120)
    """).format(sleeper=SLEEPER, child=child_code)
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    return parent, int(parent.stdout.readline())


def _gone_within(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _kill(parent: subprocess.Popen) -> None:
    parent.kill()
    parent.wait(10)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_tied_child_dies_with_its_parent_and_keeps_its_pid():
    parent, child = _parent("""
argv, env, preexec = lifeline.tied(SLEEPER, dict(os.environ))
child = subprocess.Popen(argv, env=env, preexec_fn=preexec)
""")
    try:
        assert pid_alive(child)
        with open(f"/proc/{child}/cmdline") as f:  # the command itself, no launcher between
            assert "time.sleep(120)" in f.read()
        _kill(parent)
        assert _gone_within(child, 10)
    finally:
        _kill(parent)


def test_an_untied_child_outlives_its_parent():
    parent, child = _parent("child = subprocess.Popen(SLEEPER, start_new_session=True)")
    try:
        _kill(parent)
        time.sleep(1.5)
        assert pid_alive(child)
    finally:
        _kill(parent)
        os.kill(child, 9)


def test_the_launcher_passes_the_signal_on_where_the_kernel_would_not():
    parent, child = _parent("""
env = dict(os.environ, **{lifeline.PARENT_ENV: str(os.getpid())})
child = subprocess.Popen([sys.executable, "-m", "shared.runtime.lifeline", "--", *SLEEPER], env=env)
""")
    try:
        time.sleep(1)  # the launcher's child is started
        _kill(parent)
        assert _gone_within(child, 10)
    finally:
        _kill(parent)


def test_a_service_watches_its_parent_and_stops_by_its_own_sigterm_handler():
    """What a service's entry point does (tie_to_parent), without the kernel's signal: only the thread can notice."""
    service = textwrap.dedent("""
        import signal, sys, time
        from shared.runtime import lifeline
        lifeline.die_with_parent = lambda sig=None: False  # as on a system without PR_SET_PDEATHSIG
        signal.signal(signal.SIGTERM, lambda *_: (print("clean stop", flush=True), sys.exit(0)))
        lifeline.tie_to_parent()
        time.sleep(120)
    """)
    log = f"/tmp/turnforge-lifeline-{os.getpid()}.log"
    parent, child = _parent(f"""
env = dict(os.environ, **{{lifeline.PARENT_ENV: str(os.getpid())}})
child = subprocess.Popen([sys.executable, "-c", {service!r}], env=env, stdout=open({log!r}, "w"))
""")
    try:
        time.sleep(1.5)
        assert pid_alive(child)
        _kill(parent)
        assert _gone_within(child, lifeline.WATCH_INTERVAL_S + 10)
        with open(log) as f:
            assert "clean stop" in f.read()
    finally:
        _kill(parent)
        os.unlink(log)


def test_a_service_whose_parent_is_already_gone_does_not_start(monkeypatch):
    monkeypatch.setenv(lifeline.PARENT_ENV, "1" if os.getppid() != 1 else "2")
    with pytest.raises(SystemExit):
        lifeline.tie_to_parent()
    monkeypatch.delenv(lifeline.PARENT_ENV)
    assert lifeline.tie_to_parent() is None  # not tied: nothing to watch
