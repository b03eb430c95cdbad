"""A service killed with SIGKILL mid-run and started again: every trajectory still ends exactly once."""
from __future__ import annotations

import json
import signal
import threading
import time

import pytest

from harness import live_sandboxes, service_logs
from shared.ops import stack
from shared.run import runner

pytestmark = pytest.mark.e2e


def test_kill_9_of_services_mid_run_loses_and_duplicates_nothing(services, fake_llm, tmp_path):
    settings = services
    fake_llm.delay_s = 0.2  # keep trajectories in flight while services die
    killed = []

    def chaos():
        time.sleep(4)
        for name in ("agent", "user_sim", "sql_executor"):
            stack.stop_service(settings, name, sig=signal.SIGKILL)
            killed.append(name)
            time.sleep(1.5)
            stack.start_service(settings, name, check_s=0)

    thread = threading.Thread(target=chaos)
    thread.start()
    try:
        config = runner.RunConfig(domains=["telecom"], num_trajectories=4, tasks_per_trajectory=2,
                                  write_task_share=0.5, max_user_turns=8, timeout_s=180, random_seed=11,
                                  output_dir=str(tmp_path))
        result = runner.run(settings, config)
    finally:
        thread.join()
        fake_llm.delay_s = 0.0
    assert killed == ["agent", "user_sim", "sql_executor"]
    assert result.missing == 0 and result.dead_lettered == 0, (tmp_path / "report.md").read_text() + service_logs(settings)
    assert result.accepted + result.rejected == 4
    ids = [json.loads(line)["id"] for line in (tmp_path / "dataset.jsonl").read_text().splitlines()]
    assert len(ids) == len(set(ids)) == result.accepted
    deadline = time.monotonic() + 30
    while live_sandboxes(settings) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert live_sandboxes(settings) == []
