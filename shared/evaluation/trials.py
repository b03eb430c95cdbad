"""Trial outcomes of an evaluation, built from its finished trajectories (the validator's verdicts).

A trial succeeds when its verdict accepted it: the end state equals the golden one and the reads' values were told
(shared.validation.trial). Its user goals, one per subtask, are each read's values told and each write's end state
reached (writes share the one end state, as DySQL-Bench holds them). Its turns are the agent's work between two
user messages: the calls it made, in order, and what it replied.
"""
from __future__ import annotations

import json
from typing import Any

from sqlglot.errors import SqlglotError

from shared.contracts import ChatMessage, Toolset, TrajectoryState, Verdict
from shared.env.outcomes import untold_values
from shared.env.tool_spec import RAW_SQL_ARGUMENT, mutates
from shared.env.trajectory import tool_by_name
from shared.evaluation.dysql import statement_kind
from shared.evaluation.measures import GoldenCall, ToolCallRecord, TrialOutcome, TurnRecord


def _json(text: str) -> Any:
    try:
        return json.loads(text) if text else None
    except json.JSONDecodeError:
        return None


def call_writes(toolset: Toolset, name: str, arguments: dict) -> bool:
    """A raw query writes when its statement does; another tool when its declared effect may change data."""
    tool = tool_by_name(toolset, name)
    if tool is None:
        return False
    if tool.sql.raw_query:
        try:
            return statement_kind(str(arguments.get(RAW_SQL_ARGUMENT, ""))) in ("insert", "update", "delete")
        except SqlglotError:  # it did not parse, so it did not run either
            return False
    return mutates(tool)


def turns_of(state: TrajectoryState) -> tuple[TurnRecord, ...]:
    """One record per user message that the agent answered: its calls and its reply text."""
    results = {r.call_id: r for r in state.tool_results}
    turns: list[list[ChatMessage]] = []
    for message in state.messages:
        if message.role == "user":
            turns.append([])
        elif turns and message.role == "assistant":
            turns[-1].append(message)
    records = []
    for messages in turns:
        calls = []
        for call in (c for m in messages for c in m.tool_calls):
            arguments = _json(call.function.arguments) or {}
            result = results.get(call.id)
            executed = result is not None and result.ok
            calls.append(ToolCallRecord(tool=call.function.name, arguments=arguments, executed=executed,
                                        result=_json(result.content_json) if executed else None,
                                        writes=call_writes(state.toolset, call.function.name, arguments)))
        reply = "\n".join(m.content for m in messages if m.content)
        if calls or reply:
            records.append(TurnRecord(calls=tuple(calls), reply=reply))
    return tuple(records)


def goals_of(state: TrajectoryState, end_state_reached: bool) -> tuple[bool, ...]:
    return tuple(not untold_values(state, s) if s.expected_values_json else end_state_reached
                 for t in state.tasks for s in t.subtasks)


def trial_outcome(verdict: Verdict, task_id: str) -> TrialOutcome:
    state = verdict.trajectory
    reached = bool(state.golden_state_hash) and verdict.final_state_hash == state.golden_state_hash
    golden = tuple(GoldenCall(a.tool_name, _json(a.arguments_json) or {}, _json(a.result_json))
                   for t in state.tasks for a in t.golden_actions)
    return TrialOutcome(task_id=task_id, success=verdict.accepted, goals_achieved=goals_of(state, reached),
                        turns=turns_of(state), golden=golden, domain=state.domain,
                        train_source=state.settings.evaluation.agent_name)


def failed_trial(task_id: str, domain: str, agent: str) -> TrialOutcome:
    """A trial that never reached a verdict (dead-lettered, or missing at the timeout): a failure of its task."""
    return TrialOutcome(task_id=task_id, success=False, domain=domain, train_source=agent)
