"""Whether a subtask is done, judged by its outcome rather than by the path the agent took.

A read is done when some successful call returned what the golden read returned (or was the golden call itself)
and the values the user asked for reached them in an assistant message after that call. A write is done when some
successful call of the same kind on the same table left the same row behind (writes return the row they touched),
or was the golden call itself. The user simulator asks this while the dialogue runs; the validator asks it again
of the finished trajectory, and the final state hash settles what writes did overall.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from shared.contracts import GoldenAction, Subtask, Task, Toolset, TrajectoryState
from shared.env.grounding import value_mentioned
from shared.env.tool_spec import mutates
from shared.env.trajectory import tool_by_name


@dataclass(frozen=True)
class CallOutcome:
    """One successful tool call: where its result sits in the conversation, what was asked and what came back."""

    message_index: int  # index of its tool message in state.messages
    tool_name: str
    arguments: dict
    result: Any


def _loads(text: str, default: Any) -> Any:
    try:
        return json.loads(text) if text else default
    except json.JSONDecodeError:
        return default


def successful_calls(state: TrajectoryState) -> list[CallOutcome]:
    """Every call whose result came back ok, in conversation order."""
    ok = {r.call_id: r for r in state.tool_results if r.ok}
    arguments = {c.id: _loads(c.function.arguments, {}) for m in state.messages for c in m.tool_calls}
    out = []
    for index, message in enumerate(state.messages):
        if message.role == "tool" and message.tool_call_id in ok:
            result = ok[message.tool_call_id]
            out.append(CallOutcome(index, result.tool_name, arguments.get(result.call_id, {}),
                                   _loads(result.content_json, None)))
    return out


def _normalise(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip().lower()


def arguments_match(golden: dict, actual: dict) -> bool:
    """The call carries every golden argument with an equal value (extra optional arguments are fine)."""
    return all(k in actual and _normalise(actual[k]) == _normalise(v) for k, v in golden.items())


def canonical(result: Any) -> str:
    """One text per set of returned rows: key order, row order, and one record versus a list of one do not matter."""
    rows = result if isinstance(result, list) else [result]
    return json.dumps(sorted(json.dumps(row, sort_keys=True) for row in rows))


def _is_golden_call(call: CallOutcome, golden: GoldenAction) -> bool:
    return call.tool_name == golden.tool_name and arguments_match(_loads(golden.arguments_json, {}), call.arguments)


def _same_outcome(call: CallOutcome, golden: GoldenAction, toolset: Toolset) -> bool:
    """The call returned what the golden action returned; a write also acted on the same table in the same way."""
    if not golden.result_json or call.result in (None, [], {}):
        return False
    if canonical(call.result) != canonical(_loads(golden.result_json, None)):
        return False
    golden_tool, tool = tool_by_name(toolset, golden.tool_name), tool_by_name(toolset, call.tool_name)
    if golden_tool is None or tool is None or not mutates(golden_tool):
        return True
    return tool.effect.kind == golden_tool.effect.kind and tool.effect.table == golden_tool.effect.table


def achieves(call: CallOutcome, golden: GoldenAction, toolset: Toolset) -> bool:
    """The call is the golden call itself or has its outcome."""
    return _is_golden_call(call, golden) or _same_outcome(call, golden, toolset)


def delivered(state: TrajectoryState, after_index: int, expected: dict) -> bool:
    """Every expected value appears in an assistant message written after message `after_index`."""
    replies = [m.content for m in state.messages[after_index + 1:] if m.role == "assistant" and m.content]
    return all(any(value_mentioned(reply, value) for reply in replies) for value in expected.values())


def expected_values(subtask: Subtask) -> dict:
    return _loads(subtask.expected_values_json, {})


def subtask_done(state: TrajectoryState, task: Task, subtask: Subtask,
                 calls: list[CallOutcome] | None = None) -> bool:
    if subtask.golden_action < 0:
        return False
    golden = task.golden_actions[subtask.golden_action]
    calls = successful_calls(state) if calls is None else calls
    expected = expected_values(subtask)
    for call in calls:
        if achieves(call, golden, state.toolset):
            if not expected or delivered(state, call.message_index, expected):
                return True
    return False


def undelivered(state: TrajectoryState, task: Task, subtask: Subtask) -> list[str]:
    """The expected values of a read the user never saw in a reply after a call that fetched them."""
    expected = expected_values(subtask)
    if not expected or subtask.golden_action < 0:
        return []
    golden = task.golden_actions[subtask.golden_action]
    fetched = [c for c in successful_calls(state) if achieves(c, golden, state.toolset)]
    return [f"{field}={value}" for field, value in expected.items()
            if not any(delivered(state, c.message_index, {field: value}) for c in fetched)]


def flat_values(expected: Any) -> list[Any]:
    """The scalar values of expected values: an object {field: value or [values]} or a list of values."""
    out: list[Any] = []
    for value in expected.values() if isinstance(expected, dict) else expected:
        out.extend(flat_values(value) if isinstance(value, (dict, list)) else [value])
    return out


def untold_values(state: TrajectoryState, subtask: Subtask) -> list[Any]:
    """Evaluation: the subtask's expected values no assistant reply mentions. However the agent fetched them (its
    own SQL need not match any golden call), the user must have been told them."""
    replies = [m.content for m in state.messages if m.role == "assistant" and m.content]
    return [v for v in flat_values(_loads(subtask.expected_values_json, []))
            if not any(value_mentioned(reply, v) for reply in replies)]
