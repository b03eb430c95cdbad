"""Trial outcomes built from finished evaluation trajectories, the reference agents, the instruction-driven user's
turn, the frozen export of a generation record, and the figures over trials."""
from __future__ import annotations

import json

import pytest

from services.agent.reference import NOOP_REPLY, noop_decision, oracle_decision
from services.user_sim.instruction_user import apply_turn
from shared.contracts import (AgentKind, ChatMessage, EvaluationSettings, FunctionCall, GenerationSettings,
                              GoldenAction, Subtask, Task, ToolCall, ToolCallResult, Toolset, TrajectoryState,
                              TrajectoryStatus, Verdict)
from shared.env.tool_spec import raw_sql_tool
from shared.evaluation import report
from shared.evaluation.task_set import export_task_set
from shared.evaluation.trials import trial_outcome, turns_of
from shared.run.evaluation import parse_agent

READ = "SELECT team FROM players WHERE name = 'Bo Ray'"
WRITE = "UPDATE players SET team = 'Eagles' WHERE player_id = 1"


def sql_call(call_id: str, query: str) -> ChatMessage:
    return ChatMessage(role="assistant", tool_calls=[ToolCall(id=call_id, type="function", function=FunctionCall(
        name="execute_sql", arguments=json.dumps({"query": query})))])


def trial_state(reply: str = "Bo Ray plays for the Owls.") -> TrajectoryState:
    """Two user turns: a read answered, then a write that failed once and succeeded on the retry."""
    task = Task(task_id="t1", golden_actions=[
        GoldenAction(tool_name="execute_sql", arguments_json=json.dumps({"query": READ})),
        GoldenAction(tool_name="execute_sql", arguments_json=json.dumps({"query": WRITE}))])
    task.subtasks.extend([Subtask(description="read", golden_action=0, expected_values_json='["Owls"]'),
                          Subtask(description="write", golden_action=1)])
    state = TrajectoryState(trajectory_id="e-t0000", domain="dysql_league", instruction="...", tasks=[task],
                            golden_state_hash="h1", toolset=Toolset(domain_database="dysql_league",
                                                                    tools=[raw_sql_tool()]),
                            settings=GenerationSettings(evaluation=EvaluationSettings(
                                agent_kind=AgentKind.AGENT_KIND_MODEL, agent_name="m")))
    state.messages.extend([
        ChatMessage(role="system", content="schema"), ChatMessage(role="user", content="Which team is Bo Ray on?"),
        sql_call("c1", READ), ChatMessage(role="tool", tool_call_id="c1", content='[{"team": "Owls"}]'),
        ChatMessage(role="assistant", content=reply), ChatMessage(role="user", content="Move Ann to the Eagles."),
        sql_call("c2", "UPDATE player SET team = 'Eagles'"),
        ChatMessage(role="tool", tool_call_id="c2", content='{"error": "unsafe_sql"}'),
        sql_call("c3", WRITE), ChatMessage(role="tool", tool_call_id="c3", content='{"rows_affected": 1}'),
        ChatMessage(role="assistant", content="Done."), ChatMessage(role="user", content="Thanks!")])
    state.tool_results.extend([
        ToolCallResult(call_id="c1", tool_name="execute_sql", ok=True, content_json='[{"team": "Owls"}]'),
        ToolCallResult(call_id="c2", tool_name="execute_sql", ok=False, content_json='{"error": "unsafe_sql"}'),
        ToolCallResult(call_id="c3", tool_name="execute_sql", ok=True, content_json='{"rows_affected": 1}')])
    return state


def verdict_of(state: TrajectoryState, final_hash: str, accepted: bool) -> Verdict:
    return Verdict(trajectory_id=state.trajectory_id, accepted=accepted, final_state_hash=final_hash,
                   trajectory=state)


def test_turns_are_the_agents_work_between_user_messages():
    turns = turns_of(trial_state())
    assert len(turns) == 2  # the closing "Thanks!" got no answer: no turn
    (read,), (failed, write) = turns[0].calls, turns[1].calls
    assert read.executed and not read.writes and read.result == [{"team": "Owls"}]
    assert turns[0].reply == "Bo Ray plays for the Owls."
    assert not failed.executed and failed.writes and failed.result is None
    assert write.executed and write.writes and write.arguments == {"query": WRITE}


def test_a_trial_that_reached_the_golden_state_and_told_the_value():
    outcome = trial_outcome(verdict_of(trial_state(), "h1", accepted=True), "dysql-league-0001")
    assert outcome.success and outcome.goals_achieved == (True, True)
    assert outcome.task_id == "dysql-league-0001" and outcome.train_source == "m"
    assert outcome.domain == "dysql_league"
    assert [g.arguments["query"] for g in outcome.golden] == [READ, WRITE]


def test_an_untold_value_and_a_wrong_end_state_are_failed_goals():
    state = trial_state(reply="I found the team.")
    outcome = trial_outcome(verdict_of(state, "other", accepted=False), "t")
    assert not outcome.success and outcome.goals_achieved == (False, False)


def test_figures_over_trials():
    good = trial_outcome(verdict_of(trial_state(), "h1", accepted=True), "t")
    bad = trial_outcome(verdict_of(trial_state(reply="no idea"), "other", accepted=False), "t")
    figures = report.agent_figures([good, bad], tasks=2)
    assert figures["tasks"] == 2 and figures["executable"] == 1 and figures["trials"] == 2
    assert figures["pass_hat_k"] == {"1": 0.5, "2": 0.0}
    assert figures["dsr"] == 0.5
    assert figures["tca"] == pytest.approx(4 / 6, abs=1e-4)  # per trial: the read and the right write; not c2
    assert figures["failed_sql_calls"] == 2 and figures["failed_sql_histogram"] == {"1": 2}
    assert figures["accuracy_by_turn"] == {"1": 1.0, "2": 0.5}


def test_the_oracle_calls_every_golden_action_then_tells_the_values():
    state = trial_state()
    del state.messages[2:]
    decision = oracle_decision(state)
    assert [c["arguments"]["query"] for c in decision["tool_calls"]] == [READ, WRITE]
    state.messages.append(sql_call("c1", READ))
    assert "Owls" in oracle_decision(state)["reply"]
    state.messages.append(ChatMessage(role="assistant", content="told"))
    assert "tool_calls" not in oracle_decision(state)  # never calls again
    assert noop_decision(state) == {"reply": NOOP_REPLY}


def test_the_instructed_user_stops_on_its_word_or_the_marker():
    state = TrajectoryState()
    assert not apply_turn(state, {"user_message": "Hi, move me to the Eagles.", "is_task_complete": False})
    assert apply_turn(state, {"user_message": "Great, thanks! ###STOP###", "is_task_complete": False})
    assert [m.content for m in state.messages] == ["Hi, move me to the Eagles.", "Great, thanks!"]
    assert state.is_task_complete and state.status == TrajectoryStatus.TRAJECTORY_STATUS_USER_DONE


def test_agent_specs():
    assert parse_agent("oracle").kind == AgentKind.AGENT_KIND_ORACLE
    assert parse_agent("model").kind == AgentKind.AGENT_KIND_MODEL and not parse_agent("model").base_url
    other = parse_agent("telecom=http://gpu:8000/v1#qwen-7b")
    assert (other.name, other.base_url, other.model) == ("telecom", "http://gpu:8000/v1", "qwen-7b")
    with pytest.raises(ValueError):
        parse_agent("http://gpu:8000/v1")


def generation_record(**meta) -> dict:
    tasks = [
        {"description": "Look up plan 7.", "changes_data": False, "golden_actions": [
            {"tool": "get_plan", "arguments": {"plan_id": 7}, "result": {"plan_id": 7, "price": 30}}],
         "subtasks": [{"description": "Tell me plan 7's price.", "golden_action": 0,
                       "expected_values": {"price": 30}}]},
        {"description": "Suspend customer 3.", "changes_data": True, "golden_actions": [
            {"tool": "get_plan", "arguments": {"plan_id": 2}, "result": {"plan_id": 2, "price": 10}},
            {"tool": "set_status", "arguments": {"customer_id": 3, "status": "suspended"}, "result": None}],
         "subtasks": [{"description": "Suspend customer 3.", "golden_action": 1, "expected_values": {}}]},
    ]
    binding = {"sql": None, "output_schema": None}
    return {"id": "run-x-telecom-t0000",
            "tools": [{"type": "function", "function": {"name": name}} for name in ("get_plan", "set_status")],
            "metadata": {"domain": "telecom", "domain_database": "telecom", "tool_execution": "sql",
                         "golden_state_hash": "h", "prefix_messages": 0, "start_state": {"setup_actions": []},
                         "verdict": {"accepted": True}, "tasks": tasks,
                         "tool_bindings": {"get_plan": binding | {"effect": {"kind": "read"}},
                                           "set_status": binding | {"effect": {"kind": "update"}},
                                           "unused_tool": binding | {"effect": {"kind": "read"}}},
                         **meta}}


def test_a_generation_record_frozen_as_one_task():
    (task,) = export_task_set([generation_record()]).tasks
    assert task["benchmark"] == "turnforge" and task["golden_hash"] == "h" and task["changes_data"]
    assert [a["kind"] for a in task["golden_actions"]] == ["read", "read", "update"]
    assert task["golden_actions"][0]["expected_values"] == [30]
    assert "expected_values" not in task["golden_actions"][1]  # a lookup nobody asked the values of
    assert [s["golden_action"] for s in task["subtasks"]] == [0, 2]  # indices over both tasks' actions
    assert task["instruction"].startswith("Look up plan 7.\n- Tell me plan 7's price.")
    assert set(task["tool_bindings"]) == {"get_plan", "set_status"}  # the tools offered, no others


def test_records_that_cannot_be_frozen_say_why():
    result = export_task_set([generation_record(tool_execution="simulated"),
                              generation_record(verdict={"accepted": False})], accepted_only=True)
    assert not result.tasks
    assert [reason.split(":")[0] for _, reason in result.skipped] == ["its tools were simulated", "not accepted"]
