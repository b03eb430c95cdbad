"""End to end: seeds in, validated trajectories out, through seven services, a real broker and PostgreSQL.

The model is the scripted fake (deterministic); everything else is real. Checks the dataset lines, what travelled
on the topics, that sandboxes are dropped, and that a malformed seed is dead-lettered while good work completes.
"""
from __future__ import annotations

import json
import time

import pytest
from kafka import KafkaConsumer, KafkaProducer

from harness import live_sandboxes, service_logs
from shared import runner
from shared.contracts import DeadLetter, SeedEvent, Topics, TrajectoryState

pytestmark = pytest.mark.e2e


def read_topic(settings, topic: str, timeout_ms: int = 3000) -> list:
    consumer = KafkaConsumer(settings.topic(topic), bootstrap_servers=settings.kafka.bootstrap_servers,
                             auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=timeout_ms)
    records = list(consumer)
    consumer.close()
    return records


def wait_for(predicate, timeout_s: float = 30):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.3)
    return False


def test_two_trajectories_end_to_end(services, tmp_path):
    settings = services
    config = runner.RunConfig(domains=["telecom"], num_trajectories=2, tasks_per_trajectory=2,
                              write_task_share=1.0, max_user_turns=8, timeout_s=120, output_dir=str(tmp_path))
    result = runner.run(settings, config)
    assert result.accepted == 2, (tmp_path / "report.md").read_text() + service_logs(settings)
    assert result.missing == 0

    lines = [json.loads(line) for line in (tmp_path / "dataset.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and len({r["id"] for r in lines}) == 2
    for record in lines:
        roles = [m["role"] for m in record["messages"]]
        assert roles[0] == "system" and "user" in roles and "tool" in roles
        assert roles[-1] == "assistant"
        calls = [c for m in record["messages"] for c in m.get("tool_calls", [])]
        assert calls and all(c["type"] == "function" and json.loads(c["function"]["arguments"]) is not None
                             for c in calls)
        assert {t["function"]["name"] for t in record["tools"]} >= {c["function"]["name"] for c in calls}
        assert record["metadata"]["tool_sources"] == ["sql"]
        assert len(record["metadata"]["tasks"]) == 2
        assert any(t["changes_data"] for t in record["metadata"]["tasks"])
    assert (tmp_path / "report.md").exists()

    # Every trajectory event travelled keyed by its trajectory id, with strictly increasing steps.
    steps: dict[str, list[int]] = {}
    for topic in (Topics.TURNS_USER, Topics.TURNS_AGENT, Topics.TOOL_CALLS, Topics.TRAJECTORIES_COMPLETE):
        for record in read_topic(settings, topic):
            state = TrajectoryState.FromString(record.value)
            assert record.key.decode() == state.trajectory_id
            steps.setdefault(state.trajectory_id, []).append(state.step)
    assert set(steps) == {r["id"] for r in lines}
    for s in steps.values():
        assert len(s) == len(set(s))  # no step produced twice
    assert wait_for(lambda: live_sandboxes(settings) == []), live_sandboxes(settings)


def test_malformed_seed_is_dead_lettered_and_the_next_good_one_completes(services, tmp_path):
    settings = services
    producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers)
    producer.send(settings.topic(Topics.SEEDS), key=b"garbage", value=b"\x08\x96\x01 not a protobuf \xff")
    bad = SeedEvent(seed_id="bad-seed", domain="")  # no domain, no source, no trajectories
    producer.send(settings.topic(Topics.SEEDS), key=b"bad-seed", value=bad.SerializeToString())
    producer.flush()
    producer.close()

    config = runner.RunConfig(domains=["telecom"], num_trajectories=1, write_task_share=0.0, timeout_s=120,
                              output_dir=str(tmp_path))
    result = runner.run(settings, config)
    assert result.accepted == 1, (tmp_path / "report.md").read_text() + service_logs(settings)

    letters = [DeadLetter.FromString(r.value) for r in read_topic(settings, Topics.DEAD_LETTER)]
    by_key = {letter.key.decode(): letter for letter in letters}
    assert "malformed message" in by_key["garbage"].reason
    assert by_key["garbage"].service == "tool-synth" and by_key["garbage"].payload.startswith(b"\x08\x96")
    assert "domain is empty" in by_key["bad-seed"].reason and "no source" in by_key["bad-seed"].reason
    assert by_key["bad-seed"].attempts <= 1  # permanent: not retried
