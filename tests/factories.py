"""Small builders of contract messages for unit tests."""
from __future__ import annotations

import json

from shared.contracts import (ChatMessage, EffectKind, FunctionCall, GenerationSettings, GoldenAction, PipelineMode,
                              SqlBinding, Subtask, Task, Tool, ToolCall, ToolCallResult, ToolEffect, Toolset,
                              TrajectoryState)

CUSTOMER_PARAMS = {"type": "object", "properties": {"customer_id": {"type": "integer"}}, "required": ["customer_id"],
                   "additionalProperties": False}
STATUS_PARAMS = {"type": "object", "properties": {"customer_id": {"type": "integer"}, "status": {"type": "string"}},
                 "required": ["customer_id", "status"], "additionalProperties": False}


def toolset() -> Toolset:
    ts = Toolset(seed_id="s", domain="telecom", domain_database="telecom")
    ts.tools.append(Tool(name="get_customer", description="Look up one customer by id.",
                         parameters_json=json.dumps(CUSTOMER_PARAMS),
                         output_schema_json=json.dumps({"type": "object", "properties": {
                             "customer_id": {"type": ["integer", "null"]}, "name": {"type": ["string", "null"]}}}),
                         sql=SqlBinding(statement="SELECT * FROM customers WHERE customer_id = :customer_id"),
                         effect=ToolEffect(kind=EffectKind.EFFECT_KIND_READ, single_row=True, table="customers")))
    ts.tools.append(Tool(name="update_customer_status", description="Change a customer's status.",
                         parameters_json=json.dumps(STATUS_PARAMS),
                         output_schema_json=json.dumps({"type": "object"}),
                         sql=SqlBinding(statement="UPDATE customers SET status = :status WHERE customer_id = :customer_id"
                                                  " RETURNING *"),
                         effect=ToolEffect(kind=EffectKind.EFFECT_KIND_UPDATE, single_row=True, table="customers")))
    return ts


def task(actions: list[tuple[str, dict]]) -> Task:
    t = Task(task_id="k0", description="The customer wants things done.")
    for i, (name, args) in enumerate(actions):
        t.golden_actions.append(GoldenAction(tool_name=name, arguments_json=json.dumps(args)))
        t.subtasks.append(Subtask(description=f"{name} ({', '.join(f'{k} = {v}' for k, v in args.items())})",
                                  golden_action=i))
    return t


def state(tasks: list[Task], mode=PipelineMode.PIPELINE_MODE_USER_ORIENTED, max_user_turns=10) -> TrajectoryState:
    s = TrajectoryState(trajectory_id="traj-1", seed_id="s", step=1, domain="telecom", toolset=toolset(),
                        settings=GenerationSettings(pipeline_mode=mode, max_user_turns=max_user_turns,
                                                    max_agent_steps_per_turn=3))
    s.messages.append(ChatMessage(role="system", content="You help."))
    s.tasks.extend(tasks)
    return s


def add_call(s: TrajectoryState, name: str, args: dict, ok: bool = True, content: dict | None = None) -> None:
    call_id = f"call_{len(s.tool_results)}"
    s.messages.append(ChatMessage(role="assistant", tool_calls=[
        ToolCall(id=call_id, type="function", function=FunctionCall(name=name, arguments=json.dumps(args)))]))
    body = json.dumps(content if content is not None else {"customer_id": args.get("customer_id"), "name": "Ana"})
    s.messages.append(ChatMessage(role="tool", tool_call_id=call_id, name=name, content=body))
    s.tool_results.append(ToolCallResult(call_id=call_id, tool_name=name, ok=ok, content_json=body, source="sql"))
