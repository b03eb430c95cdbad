"""The validator's deterministic checks: facts about the trajectory that no judge can overrule.

Each check re-derives what it needs from the conversation and the tasks' golden actions; none trusts a flag the
user simulator set while the dialogue ran (subtask.satisfied). Messages of a start state's prefix are given context,
not generated: they are sources, never claims, and their tool calls were not executed here.
"""
from __future__ import annotations

import json
from collections.abc import Iterable

import jsonschema

from shared.contracts import ChatMessage, CheckResult, TrajectoryState
from shared.env import outcomes
from shared.env.grounding import TOOL_MARKUP, ungrounded_arguments, unsupported_numbers
from shared.env.tool_spec import mutates, tool_parameters
from shared.env.trajectory import executes_sql, grounding_sources, tool_by_name

DETAIL_LIMIT = 1000


def _check(name: str, problems: list[str], passed_detail: str = "", at: Iterable[int] = ()) -> CheckResult:
    """`at`: the indices of the messages the problems were found in (a reviewer is shown them)."""
    return CheckResult(name=name, passed=not problems,
                       detail="; ".join(problems)[:DETAIL_LIMIT] if problems else passed_detail,
                       message_indices=sorted(set(at)) if problems else [])


def _call_indices(state: TrajectoryState) -> dict[str, int]:
    """Tool call id -> the index of the assistant message that made the call."""
    return {c.id: i for i, m in enumerate(state.messages) for c in m.tool_calls}


def given_count(state: TrajectoryState) -> int:
    """The system prompt and the start state's prefix: messages that were given, not generated."""
    return 1 + state.prefix_messages


def generated_messages(state: TrajectoryState) -> list[ChatMessage]:
    return list(state.messages[given_count(state):])


def check_closed_by_user(state: TrajectoryState) -> CheckResult:
    """The user ends the conversation with a closing turn and says every goal was achieved."""
    problems = []
    if not state.is_task_complete:
        problems.append("the user never marked the task complete")
    last = state.messages[-1].role if state.messages else "nobody"
    if last != "user":
        problems.append(f"the last message is from the {last}, not the user's closing turn")
    return _check("user_closed_conversation", problems, at=[len(state.messages) - 1] if state.messages else [])


def check_not_abandoned(state: TrajectoryState) -> CheckResult:
    return _check("not_abandoned", [state.abandoned_reason] if state.abandoned_reason else [])


def check_calls_answered(state: TrajectoryState) -> CheckResult:
    """Every generated tool call has exactly one result, both as a tool message and as a recorded result."""
    messages = generated_messages(state)
    calls = [c for m in messages for c in m.tool_calls]
    answers = [m.tool_call_id for m in messages if m.role == "tool"]
    recorded = {r.call_id for r in state.tool_results}
    unanswered = [c for c in calls if answers.count(c.id) != 1]
    problems = [f"{c.id} {c.function.name}: {answers.count(c.id)} result messages" for c in unanswered]
    unrecorded = [c for c in calls if c.id not in recorded]
    problems += [f"{c.id} {c.function.name}: no recorded result" for c in unrecorded]
    asked = {c.id for c in calls}
    problems += [f"a tool message answers {a}, which no call asked" for a in answers if a not in asked]
    where = _call_indices(state)
    stray = [i for i in range(given_count(state), len(state.messages))
             if state.messages[i].role == "tool" and state.messages[i].tool_call_id not in asked]
    return _check("every_call_answered", problems, at=[where[c.id] for c in unanswered + unrecorded] + stray)


def check_used_tools(state: TrajectoryState) -> CheckResult:
    executed = sum(1 for r in state.tool_results if r.ok)
    return CheckResult(name="tools_executed", passed=executed > 0, detail=f"{executed} successful tool calls")


def check_tool_sources(state: TrajectoryState) -> CheckResult:
    """Every successful result came from where the settings say tools run: SQL, or the simulator."""
    wanted = "sql" if executes_sql(state) else "simulated"
    wrong = sorted({r.source for r in state.tool_results if r.ok and r.source != wanted})
    return _check("tool_results_from_" + wanted, [f"results from {', '.join(wrong)}"] if wrong else [])


def check_call_arguments(state: TrajectoryState) -> CheckResult:
    problems, at = [], []
    for index in range(given_count(state), len(state.messages)):
        for c in state.messages[index].tool_calls:
            tool = tool_by_name(state.toolset, c.function.name)
            if tool is None:
                problems.append(f"{c.id}: unknown tool {c.function.name}")
                at.append(index)
                continue
            try:
                jsonschema.validate(json.loads(c.function.arguments or "{}"), tool_parameters(tool))
            except (json.JSONDecodeError, jsonschema.ValidationError) as e:
                problems.append(f"{c.id} {c.function.name}: {getattr(e, 'message', e)}")
                at.append(index)
    return _check("call_arguments_match_schema", problems, at=at)


def check_outputs(state: TrajectoryState) -> CheckResult:
    problems, at = [], []
    answers = {m.tool_call_id: i for i, m in enumerate(state.messages) if m.role == "tool"}
    for r in state.tool_results:
        tool = tool_by_name(state.toolset, r.tool_name)
        if not r.ok or tool is None or not tool.output_schema_json:
            continue
        try:
            jsonschema.validate(json.loads(r.content_json), json.loads(tool.output_schema_json))
        except (json.JSONDecodeError, jsonschema.ValidationError) as e:
            problems.append(f"{r.call_id} {r.tool_name}: {getattr(e, 'message', e)}")
            at += [answers[r.call_id]] if r.call_id in answers else []
    return _check("outputs_match_schema", problems, at=at)


def check_state_hash(state: TrajectoryState, final_hash: str) -> CheckResult:
    """Where tools run in SQL, the sandbox must end exactly where the golden actions end: an unrequested, wrong or
    missing write shows as a different hash. Without a golden hash there is nothing to hold the end state to."""
    if not executes_sql(state):
        return CheckResult(name="golden_state", passed=True, detail="tools were simulated: no database state")
    if not state.golden_state_hash:
        return _check("golden_state", ["no golden state recorded"])
    if final_hash != state.golden_state_hash:
        return _check("golden_state", ["the sandbox's final state differs from the golden actions' end state"])
    return _check("golden_state", [])


def check_writes_requested(state: TrajectoryState) -> CheckResult:
    """Every successful call of a tool that may change data did what a golden action does. A write undone later
    leaves the end state right but is still a wrong step to train on."""
    golden = [(t, a) for t in state.tasks for a in t.golden_actions]
    problems, at = [], []
    for call in outcomes.successful_calls(state):
        tool = tool_by_name(state.toolset, call.tool_name)
        if tool is not None and mutates(tool) and not any(outcomes.achieves(call, a, state.toolset)
                                                          for _, a in golden):
            problems.append(f"{call.tool_name}({json.dumps(call.arguments, sort_keys=True)}) was not requested")
            at.append(call.message_index)
    return _check("writes_requested", problems, at=at)


def check_subtasks_done(state: TrajectoryState) -> CheckResult:
    """Each subtask done by its outcome: a call equivalent to its golden action (and, for a read, its values told
    to the user afterwards), whatever path the agent took."""
    calls = outcomes.successful_calls(state)
    problems = [f"not done: {s.description}" for t in state.tasks for s in t.subtasks
                if not outcomes.subtask_done(state, t, s, calls)]
    return _check("subtasks_done", problems)


def check_reads_delivered(state: TrajectoryState) -> CheckResult:
    problems = [f"{s.description}: {', '.join(missing)}" for t in state.tasks for s in t.subtasks
                if (missing := outcomes.undelivered(state, t, s))]
    return _check("read_values_reached_user", ["never told the user: " + p for p in problems])


def check_grounding(state: TrajectoryState) -> CheckResult:
    """Every number the agent states must appear in a tool result, the user's words or the given context."""
    sources = grounding_sources(state)
    unsupported: list[str] = []
    at = []
    for index in range(given_count(state), len(state.messages)):
        m = state.messages[index]
        if m.role == "assistant" and m.content and (numbers := unsupported_numbers(m.content, sources)):
            unsupported += numbers
            at.append(index)
    stated = sorted(set(unsupported))[:10]
    return _check("claims_grounded_in_tool_results",
                  ["numbers stated without a source: " + ", ".join(stated)] if stated else [], at=at)


def check_arguments_grounded(state: TrajectoryState) -> CheckResult:
    """Every value the agent passes to a tool was given by the user or returned by a tool before the call: a call
    with an invented id or name teaches guessing, even when its result did no harm."""
    problems, at = [], []
    for index in range(given_count(state), len(state.messages)):
        message = state.messages[index]
        for call in message.tool_calls:
            try:
                arguments = json.loads(call.function.arguments or "{}")
            except json.JSONDecodeError:
                continue  # call_arguments_match_schema reports it
            if isinstance(arguments, dict) and \
                    (invented := ungrounded_arguments(arguments, grounding_sources(state, before=index))):
                problems.append(f"{call.function.name}: {', '.join(invented)}")
                at.append(index)
    return _check("call_arguments_grounded", ["values nobody gave: " + p for p in problems], at=at)


def check_no_tool_markup(state: TrajectoryState) -> CheckResult:
    """A reply that pastes tool-call or tool-output markup teaches a model to leak its template."""
    found = [(index, match) for index in range(given_count(state), len(state.messages))
             if state.messages[index].role == "assistant"
             and (match := TOOL_MARKUP.search(state.messages[index].content or ""))]
    return _check("no_tool_markup_in_replies", [f"message {index}: {match.group(0)!r}" for index, match in found],
                  at=[index for index, _ in found])


def deterministic_checks(state: TrajectoryState, final_hash: str) -> list[CheckResult]:
    return [check_not_abandoned(state), check_closed_by_user(state), check_calls_answered(state),
            check_used_tools(state), check_tool_sources(state), check_call_arguments(state), check_outputs(state),
            check_state_hash(state, final_hash), check_writes_requested(state), check_subtasks_done(state),
            check_reads_delivered(state), check_grounding(state), check_arguments_grounded(state),
            check_no_tool_markup(state)]
