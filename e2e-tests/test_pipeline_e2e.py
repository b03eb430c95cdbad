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
from fake_llm import play_agent
from shared.run import runner, stats
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
    config = runner.RunConfig(domains=["telecom"], num_trajectories=2, tasks_per_trajectory=3,
                              write_task_share=1.0, max_user_turns=8, timeout_s=120, output_dir=str(tmp_path))
    result = runner.run(settings, config)
    assert result.accepted == 2, (tmp_path / "report.md").read_text() + service_logs(settings)
    assert result.missing == 0

    lines = [json.loads(line) for line in (tmp_path / "dataset.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and len({r["id"] for r in lines}) == 2
    for record in lines:
        roles = [m["role"] for m in record["messages"]]
        assert roles[0] == "system" and "user" in roles and "tool" in roles
        assert roles[-2:] == ["assistant", "user"]  # the closing turn answers the last reply
        calls = [c for m in record["messages"] for c in m.get("tool_calls", [])]
        assert calls and all(c["type"] == "function" and json.loads(c["function"]["arguments"]) is not None
                             for c in calls)
        assert {t["function"]["name"] for t in record["tools"]} >= {c["function"]["name"] for c in calls}
        assert record["metadata"]["tool_sources"] == ["sql"]
        assert len(record["metadata"]["tasks"]) == 3
        assert any(t["changes_data"] for t in record["metadata"]["tasks"])  # accepted: its golden state matched
    assert (tmp_path / "report.md").exists()

    # Every trajectory event travelled keyed by its trajectory id, with strictly increasing steps.
    steps: dict[str, list[int]] = {}
    for topic in (Topics.TURNS_USER, Topics.TURNS_AGENT, Topics.TOOL_CALLS, Topics.TRAJECTORIES_COMPLETE):
        for record in read_topic(settings, topic):
            state = TrajectoryState.FromString(record.value)
            assert record.key.decode() == state.trajectory_id
            assert state.toolset_digest and not state.HasField("toolset")  # sent once, referred to on every hop
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


def plant_wrong_update(body: dict) -> str:
    """The fake agent does the right thing, and also updates the neighbouring record: a wrong write."""
    fmt = body["response_format"]
    schema = fmt.get("schema") or fmt["json_schema"]["schema"]
    decision = play_agent(body["messages"], schema)
    for call in list(decision.get("tool_calls", [])):
        if call["name"].startswith("update_"):
            # the neighbouring key, and a value no row has yet: the write surely changes something
            wrong = {k: v + 1 if isinstance(v, int) else f"{v} (wrong)" if isinstance(v, str) else v
                     for k, v in call["arguments"].items()}
            decision["tool_calls"].append({"name": call["name"], "arguments": wrong})
    return json.dumps(decision)


def test_a_planted_wrong_update_is_rejected_by_the_state_hash(services, fake_llm, tmp_path):
    fake_llm.overrides["agent_step"] = plant_wrong_update
    try:
        config = runner.RunConfig(domains=["telecom"], num_trajectories=1, action_mix={"update": 1.0}, random_seed=3,
                                  timeout_s=120, output_dir=str(tmp_path))
        result = runner.run(services, config)
    finally:
        fake_llm.overrides.pop("agent_step")
    assert result.rejected == 1, (tmp_path / "report.md").read_text()
    rejected = json.loads((tmp_path / "rejected.jsonl").read_text().splitlines()[0])
    # The state hash, the writes check and the argument check (a key nobody gave) see it; nothing else is wrong.
    reasons = rejected["reasons"]
    assert "golden_state: the sandbox's final state differs from the golden actions' end state" in reasons
    assert any(r.startswith("writes_requested: update_") for r in reasons), reasons
    assert any(r.startswith("call_arguments_grounded: values nobody gave: update_") for r in reasons), reasons
    assert len(reasons) == 3, reasons
    checks = {c["name"]: c["passed"] for c in rejected["checks"]}
    assert checks["user_closed_conversation"] and checks["call_arguments_match_schema"] and not checks["golden_state"]


def test_both_pipeline_modes_and_their_statistics(services, tmp_path):
    paths = []
    for mode in ("user_oriented", "task_oriented"):
        out = tmp_path / mode
        config = runner.RunConfig(domains=["telecom"], num_trajectories=1, tasks_per_trajectory=2,
                                  pipeline_mode=mode, write_task_share=0.5, timeout_s=120, output_dir=str(out))
        assert runner.run(services, config).accepted == 1
        paths.append(out / "dataset.jsonl")
    figures = stats.dataset_stats(stats.load_records(paths))
    assert set(figures) == {"user_oriented", "task_oriented"}
    for f in figures.values():
        assert f["samples"] == 1 and f["tasks_mean"] == 2 and f["turns_max"] >= 4 and f["steps_max"] >= 1
        assert f["latency_s_per_sample"] > 0 and f["generated_tokens_per_s"] > 0
    # The baseline states everything at once: fewer user turns than the piecemeal user.
    users = {p.parent.name: sum(m["role"] == "user" for m in json.loads(p.read_text())["messages"]) for p in paths}
    assert users["task_oriented"] < users["user_oriented"]
    text = stats.render(figures)
    assert "Table 1" in text and "Table 4" in text and "task_oriented" in text


def test_simulated_tool_execution_with_the_expert_persona(services, fake_llm, tmp_path):
    before = len(fake_llm.requests)
    config = runner.RunConfig(domains=["telecom"], num_trajectories=1, tasks_per_trajectory=2, tool_execution="simulated",
                              user_persona="expert", write_task_share=0.5, timeout_s=120, output_dir=str(tmp_path))
    result = runner.run(services, config)
    assert result.accepted == 1, (tmp_path / "report.md").read_text()
    record = json.loads((tmp_path / "dataset.jsonl").read_text())
    assert record["metadata"]["tool_sources"] == ["simulated"]
    simulator_calls = [r for r in fake_llm.requests[before:] if "backend of the tool" in r["messages"][0]["content"]]
    assert simulator_calls  # the model answered for the tools, constrained to their output schemas
    assert all("response_format" in r for r in simulator_calls)
    assert live_sandboxes(services) == []  # nothing ran in PostgreSQL


def test_generation_continues_from_a_given_conversation_and_database_state(services, tmp_path):
    prefix = [{"role": "user", "content": "Hi, I called yesterday about my line."},
              {"role": "assistant", "content": "Welcome back! I have suspended customer 3's account as asked."}]
    setup = [{"tool": "update_customer_status", "arguments": {"customer_id": 3, "status": "suspended"}}]
    config = runner.RunConfig(domains=["telecom"], num_trajectories=1, write_task_share=1.0, timeout_s=120,
                              start_state={"prefix": prefix, "setup_actions": setup}, output_dir=str(tmp_path))
    result = runner.run(services, config)
    # Accepted means the sandbox ended where setup + golden actions end: the setup was applied before the dialogue.
    assert result.accepted == 1, (tmp_path / "report.md").read_text()
    messages = json.loads((tmp_path / "dataset.jsonl").read_text())["messages"]
    assert [m["content"] for m in messages[1:3]] == [m["content"] for m in prefix]
    assert messages[3]["role"] == "user" and len(messages) > 4

    bad = runner.RunConfig(domains=["telecom"], num_trajectories=1, timeout_s=120, output_dir=str(tmp_path / "bad"),
                           start_state={"setup_actions": [{"tool": "drop_everything", "arguments": {}}]})
    result = runner.run(services, bad)
    assert result.dead_lettered == 1
    assert "drop_everything" in (tmp_path / "bad" / "report.md").read_text()


def test_seed_tools_without_a_database(services, tmp_path):
    specs = [
        {"type": "function", "function": {"name": "get_weather", "description": "Get the weather forecast for a city.",
                                          "parameters": {"type": "object", "properties": {
                                              "city": {"type": "string"}, "days": {"type": "integer"}},
                                              "required": ["city", "days"]}}},
        {"name": "book_table", "description": "Book a restaurant table.",
         "parameters": {"type": "object", "properties": {"restaurant": {"type": "string"}, "guests": {"type": "integer"}},
                        "required": ["restaurant", "guests"]}},
    ]
    path = tmp_path / "tools.json"
    path.write_text(json.dumps(specs))
    config = runner.RunConfig(domains=["travel"], num_trajectories=1, tasks_per_trajectory=2, seed_tools=str(path),
                              timeout_s=120, output_dir=str(tmp_path / "out"))
    result = runner.run(services, config)
    assert result.accepted == 1, (tmp_path / "out" / "report.md").read_text()
    record = json.loads((tmp_path / "out" / "dataset.jsonl").read_text())
    assert record["metadata"]["tool_sources"] == ["simulated"]
    assert {t["function"]["name"] for t in record["tools"]} == {"get_weather", "book_table"}


def test_rounds_continue_until_enough_are_accepted(services, tmp_path):
    config = runner.RunConfig(domains=["telecom"], num_trajectories=1, write_task_share=0.0, min_accepted=2,
                              max_rounds=3, timeout_s=120, output_dir=str(tmp_path))
    result = runner.run(services, config)
    assert (result.seeded, result.accepted) == (2, 2)  # a second round was seeded, and no third
    ids = [json.loads(line)["id"] for line in (tmp_path / "dataset.jsonl").read_text().splitlines()]
    assert len(set(ids)) == 2 and any("-r1-" in i for i in ids)
