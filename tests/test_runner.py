"""The runner's pure parts: run config, seed events, the tracker's dedupe/resolution rules and the report."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.runtime.config import Settings, load_settings
from shared.contracts import (ChatMessage, CheckResult, Counters, DeadLetter, PipelineMode, Task, ToolCall,
                              ToolExecution, ToolSynthesizer, Topics, TrajectoryState, Verdict, FunctionCall)
from shared.run.runner import (ACCEPTED, DEAD_LETTERED, REJECTED, RunConfig, RunTracker, build_seed_events,
                           load_run_config, rejection_record, render_report, write_outputs)

ROOT = Path(__file__).resolve().parents[1]


def verdict(tid: str, seed: str, accepted: bool = True, reasons=(), started_at: float = 100.0) -> Verdict:
    call = ToolCall(id="c1", type="function",
                                   function=FunctionCall(name="get_customer", arguments="{}"))
    state = TrajectoryState(
        trajectory_id=tid, seed_id=seed, domain="telecom", started_at=started_at,
        messages=[ChatMessage(role="system", content="sys"), ChatMessage(role="user", content="hi"),
                  ChatMessage(role="assistant", tool_calls=[call]),
                  ChatMessage(role="tool", tool_call_id="c1", content="{}"),
                  ChatMessage(role="assistant", content="done")],
        tasks=[Task(task_id="t1", description="Look up the customer.")],
        counters=Counters(prompt_tokens=120, completion_tokens=30),
    )
    checks = [CheckResult(name="final_state", passed=accepted, detail="" if accepted else "hash differs")]
    return Verdict(trajectory_id=tid, accepted=accepted, reasons=list(reasons), checks=checks, trajectory=state)


# -- config and seeds --------------------------------------------------------------------------------------------
def test_default_config_file_is_the_make_run_setup():
    path = ROOT / "configs" / "default.yaml"
    rc = load_run_config(path)
    assert rc.domains == ["telecom"] and rc.num_trajectories == 3 and rc.tasks_per_trajectory == 2
    assert rc.pipeline_mode == "user_oriented" and rc.tool_execution == "sql"
    assert rc.task_wording == "rules" and rc.judge == "none"  # what the 1.5B cannot do well is left to rules
    # The settings sections spell out the defaults but one: on a laptop the idle services poll the broker gently.
    settings = load_settings(path)
    assert settings.kafka.fetch_max_wait_ms == 500
    settings.kafka.fetch_max_wait_ms = Settings().kafka.fetch_max_wait_ms
    assert settings == Settings()


def test_run_config_rejects_unknown_keys(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("generation:\n  num_trajectoriez: 5\n")
    with pytest.raises(ValueError):
        load_run_config(path)
    assert load_run_config(None) == RunConfig()


def test_build_seed_events_one_per_domain():
    rc = RunConfig(domains=["telecom", "retail"], num_trajectories=4, pipeline_mode="task_oriented",
                   tool_execution="simulated", write_task_share=0.5)
    settings = Settings()
    settings.llm.roles["judge"] = settings.llm.default.model_copy(update={"model": "big-judge"})
    seeds = build_seed_events(rc, "run-x", settings)
    assert [s.seed_id for s in seeds] == ["run-x-telecom", "run-x-retail"]
    s = seeds[1]
    assert s.domain == "retail" and s.WhichOneof("source") == "database" and s.database.domain_database == "retail"
    assert s.settings.num_trajectories == 4 and s.settings.write_task_share == 0.5
    assert s.settings.pipeline_mode == PipelineMode.PIPELINE_MODE_TASK_ORIENTED
    assert s.settings.tool_execution == ToolExecution.TOOL_EXECUTION_SIMULATED
    assert s.settings.models["judge"] == "big-judge" and s.settings.models["agent"] == settings.llm.default.model
    assert s.created_at > 0
    # Unset, a database is tooled by the schema templates alone and seed tools are used as given.
    assert s.settings.tool_synthesizer == ToolSynthesizer.TOOL_SYNTHESIZER_TEMPLATE
    assert not s.settings.expand_seed_tools


def test_tool_preparation_choices_reach_the_seed_event():
    rc = RunConfig(tool_synthesizer="both", expand_seed_tools=True)
    (seed,) = build_seed_events(rc, "run-y", Settings())
    assert seed.settings.tool_synthesizer == ToolSynthesizer.TOOL_SYNTHESIZER_BOTH
    assert seed.settings.expand_seed_tools
    with pytest.raises(ValueError):
        RunConfig(tool_synthesizer="magic")


# -- the tracker -------------------------------------------------------------------------------------------------
def test_tracker_counts_each_trajectory_once_and_ignores_other_runs():
    t = RunTracker({"s1": 2})
    assert t.on_verdict(verdict("a", "s1"))
    assert not t.on_verdict(verdict("a", "s1"))  # redelivered
    assert not t.on_verdict(verdict("a", "s1", accepted=False))  # first verdict wins
    assert not t.on_verdict(verdict("x", "other-run"))
    assert not t.done
    assert t.on_verdict(verdict("b", "s1", accepted=False, reasons=["r"]))
    assert t.done
    assert t.counts() == {"seeded": 2, ACCEPTED: 1, REJECTED: 1, DEAD_LETTERED: 0, "missing": 0, "malformed": 0}


def test_tracker_dead_letters():
    t = RunTracker({"s1": 3, "s2": 2})
    t.on_verdict(verdict("a", "s1"))
    assert t.on_dead_letter(DeadLetter(service="agent", seed_id="s1", trajectory_id="b", reason="boom"))
    assert not t.on_dead_letter(DeadLetter(service="agent", seed_id="s1", trajectory_id="a"))  # a verdict stands
    # A verdict replaces a dead letter of the same trajectory (it was about a duplicate).
    assert t.on_verdict(verdict("b", "s1", accepted=False))
    # A seed-level failure closes the seed's open slots.
    assert t.on_dead_letter(DeadLetter(service="tool-synth", seed_id="s2", reason="no tools"))
    assert not t.on_dead_letter(DeadLetter(service="tool-synth", seed_id="s2", reason="no tools"))  # duplicate
    assert t.counts()[DEAD_LETTERED] == 2 and not t.done
    assert t.on_dead_letter(DeadLetter(service="agent", seed_id="s1", trajectory_id="c", offset=7))
    assert t.done
    assert t.counts() == {"seeded": 5, ACCEPTED: 1, REJECTED: 1, DEAD_LETTERED: 3, "missing": 0, "malformed": 0}
    assert len(t.dead_letters) == 4  # the report lists every distinct dead letter of the run, superseded or not


def test_seed_failure_after_some_trajectories_and_a_late_verdict():
    t = RunTracker({"s1": 3})
    t.on_verdict(verdict("a", "s1"))
    t.on_dead_letter(DeadLetter(service="task-generator", seed_id="s1", reason="gave up"))
    assert t.done and t.counts()[DEAD_LETTERED] == 2
    assert t.on_verdict(verdict("b", "s1"))  # was under way: takes one closed slot back
    assert t.counts()[ACCEPTED] == 2 and t.counts()[DEAD_LETTERED] == 1 and t.counts()["missing"] == 0


def test_tracker_skips_malformed_records():
    t = RunTracker({"s1": 1})
    assert not t.on_record(Topics.ACCEPTED, b"\xff\xff\xff")
    assert not t.on_record(Topics.ACCEPTED, verdict("a", "s1", accepted=False).SerializeToString())  # wrong topic
    assert not t.on_record(Topics.REJECTED, Verdict(accepted=False).SerializeToString())  # no ids
    assert not t.on_record(Topics.DEAD_LETTER, b"\xff\xff\xff")
    assert not t.on_record(Topics.REJECTED, None)  # a tombstone
    assert t.counts()["malformed"] == 5 and not t.resolved
    assert t.on_record(Topics.ACCEPTED, verdict("a", "s1").SerializeToString())
    assert t.done


# -- outputs -----------------------------------------------------------------------------------------------------
def _finished_tracker() -> RunTracker:
    t = RunTracker({"run-telecom": 3, "run-retail": 1})
    t.on_verdict(verdict("traj-1", "run-telecom"), arrived_at=112.5)
    t.on_verdict(verdict("traj-2", "run-telecom", accepted=False, reasons=["final state differs", "a|b"]), 130.0)
    t.on_verdict(verdict("traj-3", "run-telecom", accepted=False, reasons=["final state differs"]), 140.0)
    t.on_dead_letter(DeadLetter(service="tool-synth", seed_id="run-retail", reason="no valid tool\nat all"))
    return t


def test_report_from_synthetic_verdicts():
    report = render_report(_finished_tracker(), RunConfig(domains=["telecom", "retail"]), "run", 42.0)
    assert "# TurnForge run run" in report
    assert "| 4 | 1 | 2 | 1 | 0 |" in report  # seeded, accepted, rejected, dead-lettered, missing
    # turns exclude the system message; tokens are prompt + completion; wall time is verdict arrival - start.
    assert "| traj-1 | accepted | 4 | 1 | 1 | 1 | 150 | 12.5 |" in report
    assert "| final state differs | 2 |" in report
    assert "| a\\|b | 1 |" in report
    assert "| tool-synth | run-retail | (whole seed) | no valid tool at all |" in report
    assert "run-retail (1 not started)" in report


def test_write_outputs(tmp_path):
    t = _finished_tracker()
    paths = write_outputs(t, RunConfig(), "run", 1.0, tmp_path)
    lines = paths["dataset_path"].read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["id"] == "traj-1"
    rejected = [json.loads(line) for line in paths["rejected_path"].read_text().splitlines()]
    assert [r["trajectory_id"] for r in rejected] == ["traj-2", "traj-3"]
    assert rejected[0]["checks"] == [{"name": "final_state", "passed": False, "detail": "hash differs",
                                      "messages": []}]
    # A rejection carries what it was asked to do and could use, as a dataset record does.
    assert rejected[0]["metadata"]["tasks"][0]["description"] == "Look up the customer."
    assert rejected[0]["metadata"]["verdict"]["reasons"] == ["final state differs", "a|b"]
    [letter] = [json.loads(line) for line in paths["dead_letters_path"].read_text().splitlines()]
    assert (letter["service"], letter["seed_id"], letter["reason"]) == ("tool-synth", "run-retail",
                                                                         "no valid tool\nat all")
    assert paths["report_path"].exists()
    assert paths["page_path"] == tmp_path / "review.html" and '"traj-3"' in paths["page_path"].read_text()


def test_rejection_record_falls_back_to_failed_checks_in_report():
    t = RunTracker({"s": 1})
    t.on_verdict(verdict("a", "s", accepted=False))
    assert rejection_record(t.resolved["a"].verdict)["reasons"] == []
    assert "| final_state | 1 | final_state: check failed |" in render_report(t, RunConfig(), "r", 1.0)


def test_report_counts_rejections_per_check_and_steps_asked_again():
    t = RunTracker({"s": 3})
    for name, reason in (("a", "golden_state: differs"), ("b", "golden_state: no golden state recorded")):
        t.on_verdict(verdict(name, "s", accepted=False, reasons=[reason]))
    accepted = verdict("c", "s")
    accepted.trajectory.retries["agent/ungrounded_values"] = 2
    accepted.trajectory.retries["user_sim/meta_text"] = 1
    t.on_verdict(accepted)
    report = render_report(t, RunConfig(), "r", 1.0)
    assert "| golden_state | 2 | golden_state: differs |" in report
    assert "| agent/ungrounded_values | 2 |" in report and "| user_sim/meta_text | 1 |" in report


@pytest.mark.integration
def test_run_against_the_broker(kafka_bootstrap, tmp_path):
    """Records may be there before the run starts watching (earliest offsets), twice, malformed, or foreign."""
    from shared.runtime.bus import ensure_topics, make_producer
    from shared.runtime.config import KafkaConfig
    from shared.run.runner import run

    settings = Settings(kafka=KafkaConfig(bootstrap_servers=kafka_bootstrap, topic_prefix="tfrun."))
    ensure_topics(settings)
    producer = make_producer(settings)
    sends = [
        (Topics.ACCEPTED, verdict("r1-telecom-0", "r1-telecom")),
        (Topics.ACCEPTED, verdict("r1-telecom-0", "r1-telecom")),  # redelivered
        (Topics.REJECTED, verdict("r1-telecom-1", "r1-telecom", accepted=False, reasons=["no"])),
        (Topics.ACCEPTED, verdict("r0-telecom-0", "r0-telecom")),  # an earlier run
        (Topics.DEAD_LETTER, DeadLetter(service="tool-synth", seed_id="r1-retail", reason="no tools")),
    ]
    for topic, msg in sends:
        producer.send(settings.topic(topic), key=b"k", value=msg.SerializeToString()).get(30)
    producer.send(settings.topic(Topics.ACCEPTED), key=b"k", value=b"\xff\xff").get(30)
    producer.close()

    rc = RunConfig(domains=["telecom", "retail"], num_trajectories=2, timeout_s=30, output_dir=str(tmp_path))
    result = run(settings, rc, run_id="r1")
    assert (result.seeded, result.accepted, result.rejected, result.dead_lettered, result.missing) == (4, 1, 1, 2, 0)
    assert result.malformed == 1 and result.complete and not result.timed_out
    assert len(result.dataset_path.read_text().splitlines()) == 1


def test_the_task_mix_is_dysql_by_default_configurable_and_not_given_twice():
    settings = Settings()
    [default] = build_seed_events(RunConfig(), "run-x", settings)
    mix = default.settings.action_mix
    assert (mix.read, mix.insert, mix.update, mix.delete) == (0.3, 0.1, 0.5, 0.1)
    [only_deletes] = build_seed_events(RunConfig(action_mix={"delete": 1}), "run-x", settings)
    assert (only_deletes.settings.action_mix.delete, only_deletes.settings.action_mix.update) == (1, 0)
    [by_share] = build_seed_events(RunConfig(write_task_share=0.2), "run-x", settings)
    assert by_share.settings.write_task_share == 0.2 and by_share.settings.action_mix.update == 0  # split later
    with pytest.raises(ValueError):
        RunConfig(action_mix={"read": 1}, write_task_share=0.5)
