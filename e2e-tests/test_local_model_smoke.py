"""Smoke test with a real local model behind llama-cpp-python's OpenAI API: one short trajectory.

It runs Qwen2.5-Coder-0.5B-Instruct, not `make run`'s 1.5B: it generates about half again as fast on 2 cores, and
it comes through the same chunk packages, assembly and hash check. A model that small cannot play a convincing
user, so this checks structure only: the trajectory ends (accepted or rejected, never lost), the structured
answers parsed, and an accepted line is a well-formed OpenAI chat record with SQL-executed tool results.
"""
from __future__ import annotations

import json
import uuid

import pytest

from harness import service_logs
from shared.ops import stack
from shared.run import runner
from shared.runtime.config import Settings
from shared.ops.local_postgres import create_database
from shared.runtime.ports import free_port

pytestmark = pytest.mark.model

SMOKE_MODEL = "qwen2.5-coder-0.5b-instruct"


@pytest.fixture(scope="module")
def model_stack(postgres_server, kafka_bootstrap, tmp_path_factory):
    name = "smoke_" + uuid.uuid4().hex[:8]
    settings = Settings(
        kafka={"bootstrap_servers": kafka_bootstrap, "topic_prefix": f"{name}.", "partitions": 1},
        postgres={"dsn": create_database(postgres_server, name)},
        llm={"default": {"base_url": f"http://127.0.0.1:{free_port()}/v1", "model": SMOKE_MODEL}},
        state_dir=tmp_path_factory.mktemp("smoke"),
    )
    stack.load_demo_domains(settings.postgres.dsn)
    stack.start_model(settings)
    for service in stack.SERVICES:
        stack.start_service(settings, service, check_s=0)
    yield settings
    for service in stack.SERVICES:
        stack.stop_service(settings, service)
    stack.stop_service(settings, "model")


def test_one_short_trajectory_with_the_local_model(model_stack, tmp_path):
    config = runner.RunConfig(domains=["telecom"], num_trajectories=1, max_user_turns=2, write_task_share=0.0,
                              tools_per_trajectory=4, difficulty_mix={"easy": 1, "medium": 0, "hard": 0},
                              task_wording="rules",  # the real model's calls here are the dialogue's and the judge's
                              # Waits for the outcome however slow a busy machine makes the model; the bound only
                              # ends a run that hangs (a machine's load must not fail this test).
                              timeout_s=3000, output_dir=str(tmp_path))
    result = runner.run(model_stack, config)
    assert result.missing == 0, service_logs(model_stack)
    if result.accepted:
        record = json.loads((tmp_path / "dataset.jsonl").read_text().splitlines()[0])
        assert record["messages"][0]["role"] == "system"
        assert record["metadata"]["tool_sources"] == ["sql"]
        assert any(m.get("tool_calls") for m in record["messages"])
    elif result.rejected:
        rejected = json.loads((tmp_path / "rejected.jsonl").read_text().splitlines()[0])
        assert rejected["reasons"] and rejected["messages"][1]["role"] == "user"
    else:  # a dead letter is allowed only for a model answer that stayed invalid JSON, with that reason
        report = (tmp_path / "report.md").read_text()
        assert "InvalidModelOutput" in report, report
