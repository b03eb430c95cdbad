"""`turnforge validate` on a real record: a small trajectory run through the real pieces (the telecom demo domain in
PostgreSQL, golden actions and the conversation's calls executed by execute_sql_tool, the validator's checks) is
accepted, re-validates as accepted offline, and every corrupted copy of it is rejected with a fitting reason."""
from __future__ import annotations

import copy
import json

import pytest

from shared.cli.main import main
from shared.contracts import (Difficulty, EffectKind, FunctionCall, GoldenAction, Rubric, RubricCategory,
                              RubricJudgement, SqlBinding, Subtask, Task, Tool, ToolCall, ToolEffect, Toolset,
                              TrajectoryState)
from shared.data.demo_databases import build_demo
from shared.env.sandbox import SandboxManager, scratch_owner
from shared.env.tool_execution import execute_sql_tool
from shared.ops.validate import validate_record
from shared.run.dataset import to_openai_record
from shared.validation.acceptance import verdict_for
from shared.validation.checks import deterministic_checks
from shared.validation.judge import Judgment

pytestmark = pytest.mark.integration

TIMEOUT_MS = 3000
TRAJECTORY = "traj-offline"


def tool(name: str, statement: str, properties: dict, kind: EffectKind, result_columns: dict) -> Tool:
    return Tool(name=name, description=f"{name} of one customer.",
                parameters_json=json.dumps({"type": "object", "properties": properties,
                                            "required": list(properties), "additionalProperties": False}),
                output_schema_json=json.dumps({"type": "object"}),
                sql=SqlBinding(statement=statement, parameters=list(properties),
                               parameter_columns={p: f"customers.{p}" for p in properties},
                               result_columns={c: f"customers.{c}" for c in result_columns}),
                effect=ToolEffect(kind=kind, single_row=True, table="customers"))


ID = {"customer_id": {"type": "integer"}}
GET = tool("get_customer", "SELECT customer_id, first_name, last_name, status, created_at FROM customers"
           " WHERE customer_id = :customer_id", ID, EffectKind.EFFECT_KIND_READ,
           ["customer_id", "first_name", "last_name", "status", "created_at"])
SUSPEND = tool("update_customer_status", "UPDATE customers SET status = :status WHERE customer_id = :customer_id"
               " RETURNING customer_id, status", {**ID, "status": {"type": "string"}}, EffectKind.EFFECT_KIND_UPDATE,
               ["customer_id", "status"])
# Used only by the start state: not offered to the agent.
MOVE = tool("set_customer_city", "UPDATE customers SET city = :city WHERE customer_id = :customer_id"
            " RETURNING customer_id, city", {**ID, "city": {"type": "string"}}, EffectKind.EFFECT_KIND_UPDATE,
            ["customer_id", "city"])
SETUP = GoldenAction(tool_name="set_customer_city", arguments_json=json.dumps({"customer_id": 2, "city": "Salem"}))
READ_ARGS, SUSPEND_ARGS = {"customer_id": 1}, {"customer_id": 1, "status": "suspended"}


def run_call(manager: SandboxManager, sandbox: str, tools: list[Tool], name: str, args: dict, call_id: str):
    tables = manager.domain_schema("telecom").table_names
    tool_ = next(t for t in tools if t.name == name)
    return execute_sql_tool(manager, sandbox, tables, tool_, call_id, json.dumps(args), timeout_ms=TIMEOUT_MS)


def planned_tasks(manager: SandboxManager) -> tuple[list[Task], str]:
    """The two tasks with their golden results, and the golden end-state hash, from a scratch sandbox."""
    owner = scratch_owner(TRAJECTORY)
    sandbox = manager.create(owner, "telecom")
    assert run_call(manager, sandbox, [MOVE], "set_customer_city", json.loads(SETUP.arguments_json), "s0").ok
    read = run_call(manager, sandbox, [GET], "get_customer", READ_ARGS, "g0")
    write = run_call(manager, sandbox, [SUSPEND], "update_customer_status", SUSPEND_ARGS, "g1")
    golden_hash = manager.state_hash(owner, "telecom")
    manager.drop(owner)
    last_name = json.loads(read.content_json)["last_name"]
    tasks = [
        Task(task_id="k0", description="Find out the last name on customer 1's account.",
             difficulty=Difficulty.DIFFICULTY_EASY,
             rubric=Rubric(success_criteria=["tells the user the last name"],
                           expected_tool_use=["get_customer(customer_id=<id>)"]),
             golden_actions=[GoldenAction(tool_name="get_customer", arguments_json=json.dumps(READ_ARGS),
                                          result_json=read.content_json)],
             subtasks=[Subtask(description="the last name of customer 1", golden_action=0,
                               expected_values_json=json.dumps({"last_name": last_name}))]),
        Task(task_id="k1", description="Have customer 1 suspended.", difficulty=Difficulty.DIFFICULTY_MEDIUM,
             changes_data=True, rubric=Rubric(success_criteria=["customer 1 is suspended"]),
             golden_actions=[GoldenAction(tool_name="update_customer_status", arguments_json=json.dumps(SUSPEND_ARGS),
                                          result_json=write.content_json)],
             subtasks=[Subtask(description="suspend customer 1", golden_action=0)]),
    ]
    return tasks, golden_hash


def say(state: TrajectoryState, role: str, content: str) -> None:
    state.messages.add(role=role, content=content)


def call(manager: SandboxManager, state: TrajectoryState, name: str, args: dict) -> dict:
    """The agent's call, executed as sql-executor executes it, with its result appended."""
    call_id = f"call_{len(state.tool_results)}"
    state.messages.add(role="assistant", tool_calls=[
        ToolCall(id=call_id, type="function", function=FunctionCall(name=name, arguments=json.dumps(args)))])
    result = run_call(manager, state.sandbox, list(state.toolset.tools), name, args, call_id)
    state.tool_results.append(result)
    state.messages.add(role="tool", tool_call_id=call_id, name=name, content=result.content_json)
    return json.loads(result.content_json)


def accepted_record(manager: SandboxManager) -> dict:
    tasks, golden_hash = planned_tasks(manager)
    state = TrajectoryState(trajectory_id=TRAJECTORY, seed_id="seed", domain="telecom",
                            toolset=Toolset(domain="telecom", domain_database="telecom", tools=[GET, SUSPEND]),
                            tasks=tasks, golden_state_hash=golden_hash, setup_actions=[SETUP], setup_tools=[MOVE])
    state.sandbox = manager.create(TRAJECTORY, "telecom")
    assert run_call(manager, state.sandbox, [MOVE], "set_customer_city", json.loads(SETUP.arguments_json), "s0").ok
    say(state, "system", "You help customers of a mobile carrier.")
    say(state, "user", "What is the last name on customer 1's account?")
    customer = call(manager, state, "get_customer", READ_ARGS)
    say(state, "assistant", f"Customer 1 is {customer['first_name']} {customer['last_name']}; the account is active.")
    say(state, "user", "Please suspend customer 1.")
    call(manager, state, "update_customer_status", SUSPEND_ARGS)
    say(state, "assistant", "Done: customer 1 is now suspended.")
    say(state, "user", "Thanks, that's all.")
    state.is_task_complete = True
    final_hash = manager.state_hash(TRAJECTORY, "telecom")
    manager.drop(TRAJECTORY)
    verdict = verdict_for(state, deterministic_checks(state, final_hash), final_hash, None)
    assert verdict.accepted, verdict.reasons
    verdict.trajectory.CopyFrom(state)  # as the validator stage sends it
    return json.loads(json.dumps(to_openai_record(verdict)))  # as read back from dataset.jsonl


@pytest.fixture
def telecom(postgres_dsn):
    manager = SandboxManager(postgres_dsn)
    manager.register_domain(build_demo("telecom"))
    yield manager
    manager.close()


def message_index(record: dict, predicate) -> int:
    return next(i for i, m in enumerate(record["messages"]) if predicate(m))


def tool_message(record: dict, name: str) -> int:
    return message_index(record, lambda m: m["role"] == "tool" and m.get("name") == name)


def reply(record: dict, starts: str) -> dict:
    return record["messages"][message_index(record, lambda m: m["role"] == "assistant"
                                            and (m.get("content") or "").startswith(starts))]


def fabricate_result(r):
    message = r["messages"][tool_message(r, "get_customer")]
    message["content"] = json.dumps({**json.loads(message["content"]), "last_name": "Fabricated"})
    reply(r, "Customer 1 is")["content"] = "Customer 1 is Arjun Fabricated; the account is active."


def state_ungrounded_number(r):
    reply(r, "Customer 1 is")["content"] += " There are 412 unpaid invoices."


def drop_call_result(r):
    del r["messages"][tool_message(r, "update_customer_status")]


def add_unrequested_write(r):
    at = tool_message(r, "update_customer_status") + 1
    args = {"customer_id": 3, "status": "closed"}
    r["messages"][at:at] = [
        {"role": "assistant", "content": "", "tool_calls": [{"id": "call_x", "type": "function", "function": {
            "name": "update_customer_status", "arguments": json.dumps(args)}}]},
        {"role": "tool", "content": json.dumps(args), "tool_call_id": "call_x", "name": "update_customer_status"}]
    r["metadata"]["tool_results"].append({"call_id": "call_x", "tool": "update_customer_status", "ok": True,
                                          "source": "sql", "error": ""})


def withhold_read_value(r):
    reply(r, "Customer 1 is")["content"] = "I found customer 1; the account is active."


def drop_closing_turn(r):
    assert r["messages"][-1]["role"] == "user"
    del r["messages"][-1]


def paste_tool_markup(r):
    reply(r, "Done")["content"] = '<tool_response>{"customer_id": 1, "status": "suspended"}</tool_response>'


def change_call_arguments(r):
    update = r["messages"][tool_message(r, "update_customer_status") - 1]
    update["tool_calls"][0]["function"]["arguments"] = json.dumps({"customer_id": 2, "status": "suspended"})


def guess_an_id(r):
    """A look-up of a customer nobody named, before the one the user asked about (harmless to the state)."""
    at = message_index(r, lambda m: m["role"] == "assistant" and m.get("tool_calls"))
    args = {"customer_id": 77}
    r["messages"][at:at] = [
        {"role": "assistant", "content": "", "tool_calls": [{"id": "call_g", "type": "function", "function": {
            "name": "get_customer", "arguments": json.dumps(args)}}]},
        {"role": "tool", "content": "null", "tool_call_id": "call_g", "name": "get_customer"}]
    r["metadata"]["tool_results"].append({"call_id": "call_g", "tool": "get_customer", "ok": True,
                                          "source": "sql", "error": ""})


def set_golden_hash(value):
    def corrupt(r):
        r["metadata"]["golden_state_hash"] = value
    return corrupt


def leave_task_incomplete(r):
    r["metadata"]["is_task_complete"] = False


def abandon(r):
    r["metadata"]["abandoned_reason"] = "the user turn could not be worded"


def skip_start_state(r):
    r["metadata"]["start_state"]["setup_actions"] = []


def unregistered_domain(r):
    r["metadata"]["domain_database"] = "atlantis"


CORRUPTIONS = {  # corruption -> the check that must name it
    "fabricated tool result": (fabricate_result, "recorded_results_replay"),
    "ungrounded number": (state_ungrounded_number, "claims_grounded_in_tool_results"),
    "dropped call result": (drop_call_result, "every_call_answered"),
    "unrequested write": (add_unrequested_write, "writes_requested"),
    "unrequested write changes the end state": (add_unrequested_write, "golden_state"),
    "read value never reached the user": (withhold_read_value, "read_values_reached_user"),
    "missing closing turn": (drop_closing_turn, "user_closed_conversation"),
    "pasted tool markup": (paste_tool_markup, "no_tool_markup_in_replies"),
    "wrong golden hash": (set_golden_hash("0" * 64), "golden_state"),
    "no golden hash": (set_golden_hash(""), "golden_state"),
    "call arguments edited after the fact": (change_call_arguments, "recorded_results_replay"),
    "an id nobody gave": (guess_an_id, "call_arguments_grounded"),
    "task not marked complete": (leave_task_incomplete, "user_closed_conversation"),
    "abandoned": (abandon, "not_abandoned"),
    "start state not applied": (skip_start_state, "golden_state"),
    "domain not registered": (unregistered_domain, "recorded_results_replay"),
}


def test_an_accepted_record_revalidates_and_every_corruption_is_rejected(telecom):
    record = accepted_record(telecom)
    meta = record["metadata"]
    assert meta["verdict"]["accepted"] and meta["is_task_complete"] and meta["golden_state_hash"]
    assert [t["difficulty"] for t in meta["tasks"]] == ["easy", "medium"]
    assert meta["tasks"][0]["golden_actions"][0]["result"]["last_name"] == "Ito"
    assert meta["tasks"][0]["subtasks"][0]["expected_values"] == {"last_name": "Ito"}
    assert meta["start_state"]["tools"][0]["function"]["name"] == "set_customer_city"
    assert meta["tool_bindings"]["update_customer_status"]["effect"]["kind"] == "update"
    assert validate_record(telecom, record, None, timeout_ms=TIMEOUT_MS).reasons == []

    wrong = {}
    for name, (corrupt, check) in CORRUPTIONS.items():
        copy_ = copy.deepcopy(record)
        corrupt(copy_)
        result = validate_record(telecom, copy_, None, timeout_ms=TIMEOUT_MS)
        if result.accepted or not any(reason.startswith(check + ":") for reason in result.reasons):
            wrong[name] = result.reasons
    assert wrong == {}
    assert [o for o in telecom.live_sandboxes() if o.startswith("replay:")] == []


def test_with_a_judge_an_unsatisfied_critical_item_rejects_the_record(telecom):
    record = accepted_record(telecom)

    def judge(state, items):
        return Judgment([RubricJudgement(item=i, category=RubricCategory.RUBRIC_CATEGORY_CRITICAL,
                                         satisfied=i != "customer 1 is suspended") for i in items], "valid", "")

    result = validate_record(telecom, record, judge, timeout_ms=TIMEOUT_MS)
    assert not result.accepted and result.reasons == ["judge: critical items unsatisfied: customer 1 is suspended"]


def test_the_validate_command_prints_one_line_per_record_and_fails_on_any_rejection(telecom, postgres_dsn,
                                                                                     tmp_path, capsys):
    record = accepted_record(telecom)
    tampered = copy.deepcopy(record)
    tampered["id"] = "tampered"
    fabricate_result(tampered)
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({"postgres": {"dsn": postgres_dsn}}))
    dataset = tmp_path / "dataset.jsonl"

    def validate(*records) -> tuple[int, list[dict]]:
        dataset.write_text("".join(json.dumps(r) + "\n" for r in records))
        with pytest.raises(SystemExit) as exit_:
            main(["validate", str(dataset), "--json", "--config", str(config)])
        return exit_.value.code, [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    code, lines = validate(record)
    assert code == 0 and lines == [{"id": TRAJECTORY, "accepted": True, "reasons": []}]
    code, lines = validate(record, tampered)
    assert code == 1 and [line["accepted"] for line in lines] == [True, False]
    assert lines[1]["id"] == "tampered" and lines[1]["reasons"][0].startswith("recorded_results_replay:")
