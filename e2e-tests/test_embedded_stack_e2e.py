"""`turnforge run --embedded` as a user runs it: a stack of the command's own, gone with the command however the
command ends, never shared with another command's; and without a stack, one line and a non-zero exit.

Each test runs the real command line in a subprocess against the scripted fake model (the real 1.5B would take
minutes per trajectory); the command starts its own broker, PostgreSQL and seven services.
"""
from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from shared.ops import stack
from shared.runtime.ports import free_port
from test_pipeline_e2e import wait_for

pytestmark = pytest.mark.e2e

COMPONENTS = ("broker", "postgres", *stack.SERVICES)


def _config(tmp_path: Path, fake_llm, name: str, **generation) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({
        "generation": {"domains": ["telecom"], "num_trajectories": 2, "timeout_s": 300,
                       "output_dir": str(tmp_path / name / "out"), **generation},
        # Addresses the private stack replaces (nothing answers at them), and the fake model it leaves as it is.
        "kafka": {"bootstrap_servers": f"127.0.0.1:{free_port()}", "partitions": 2},
        "postgres": {"dsn": f"postgresql://postgres@127.0.0.1:{free_port()}/turnforge"},
        "llm": {"default": {"base_url": fake_llm.base_url, "model": "fake", "structured_output": "json_schema",
                            "timeout_s": 30, "extra_body": {}}},
        "service": {"concurrency": 4, "backoff_initial_s": 0.05, "backoff_max_s": 0.2},
        "state_dir": str(tmp_path / "state"),
    }))
    return path


def _turnforge(tmp_path: Path, name: str, *args: str) -> subprocess.Popen:
    out, err = (open(tmp_path / f"{name}.{s}", "w") for s in ("stdout", "stderr"))
    return subprocess.Popen([sys.executable, "-m", "shared.cli", *args], stdout=out, stderr=err, cwd=tmp_path,
                            start_new_session=True)  # a signal for it alone, as `kill PID` sends


def _private_state(tmp_path: Path, proc: subprocess.Popen) -> Path:
    return tmp_path / "state" / "embedded" / f"run-{proc.pid}"


def _component_pids(state: Path) -> dict[str, int]:
    pids = {}
    for name in COMPONENTS:
        try:
            pids[name] = int((state / "pids" / f"{name}.pid").read_text())
        except (OSError, ValueError):
            pass
    return pids


def _logs(tmp_path: Path, name: str) -> str:
    return "\n".join(f"--- {name}.{s}\n" + (tmp_path / f"{name}.{s}").read_text()[-3000:] for s in ("stdout", "stderr"))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL], ids=lambda s: s.name)
def test_the_runner_leaves_no_process_behind(sig, fake_llm, tmp_path):
    fake_llm.delay_s = 1.0  # trajectories stay in flight while the command is signalled
    try:
        proc = _turnforge(tmp_path, "run", "run", "--config", str(_config(tmp_path, fake_llm, "run")), "--embedded")
        state = _private_state(tmp_path, proc)
        started = wait_for(lambda: "seed(s)" in (tmp_path / "run.stdout").read_text() or proc.poll() is not None,
                           timeout_s=240)
        assert started and proc.poll() is None, _logs(tmp_path, "run")
        pids = _component_pids(state)
        assert set(pids) == set(COMPONENTS) and all(stack.pid_alive(p) for p in pids.values()), pids

        proc.send_signal(sig)
        code = proc.wait(120)
        assert code == (-sig if sig == signal.SIGKILL else 128 + sig), _logs(tmp_path, "run")
        assert wait_for(lambda: not any(stack.pid_alive(p) for p in pids.values()), timeout_s=60), \
            {name: pid for name, pid in pids.items() if stack.pid_alive(pid)}
        if sig != signal.SIGKILL:  # the command stopped its stack itself: no pid file, no data left
            assert f"{sig.name}: stopping what this command started" in (tmp_path / "run.stderr").read_text()
            assert not list((state / "pids").glob("*.pid")) and not (state / "pgdata").exists()
    finally:
        fake_llm.delay_s = 0.0


def test_two_embedded_commands_at_once_each_run_on_a_stack_of_their_own(fake_llm, tmp_path):
    runs = {name: _turnforge(tmp_path, name, "run", "--embedded",
                             "--config", str(_config(tmp_path, fake_llm, name, random_seed=seed)))
            for name, seed in (("first", 1), ("second", 2))}
    codes = {name: proc.wait(600) for name, proc in runs.items()}
    assert codes == {"first": 0, "second": 0}, _logs(tmp_path, "first") + _logs(tmp_path, "second")

    brokers, run_ids = set(), set()
    for name in runs:
        stderr, stdout = (tmp_path / f"{name}.stderr").read_text(), (tmp_path / f"{name}.stdout").read_text()
        brokers.add(re.search(r"own \(broker (\S+),", stderr).group(1))
        run_id = re.search(r"run (run-\S+): 1 seed", stdout).group(1)
        run_ids.add(run_id)
        assert "seeded 2, " in stdout and "missing 0" in stdout  # every trajectory of its own came back
        out = tmp_path / name / "out"
        records = [json.loads(line) for f in ("dataset.jsonl", "rejected.jsonl")
                   for line in (out / f).read_text().splitlines()]
        seed_ids = {r.get("seed_id") or r["metadata"]["seed_id"] for r in records}
        assert seed_ids == {f"{run_id}-telecom"}, seed_ids  # its own outcomes, none of the other's
    assert len(brokers) == 2 and len(run_ids) == 2, (brokers, run_ids)
    assert not [p for p in (tmp_path / "state" / "embedded").glob("*/pgdata")]


def test_without_a_stack_one_line_and_a_non_zero_exit(fake_llm, tmp_path):
    config = _config(tmp_path, fake_llm, "nothing")
    for command in (["run"], ["produce-seed", str(config)]):
        proc = _turnforge(tmp_path, "nothing", *command, "--config", str(config))
        assert proc.wait(120) == 1
        stderr = (tmp_path / "nothing.stderr").read_text()
        assert stderr.startswith("turnforge: no Kafka broker answers at 127.0.0.1:"), stderr
        assert len(stderr.strip().splitlines()) == 1 and "ECONNREFUSED" not in stderr, stderr
        assert "--embedded" in stderr and "turnforge up" in stderr
