"""The validator's deterministic checks: facts about the trajectory that no judge can overrule."""
from __future__ import annotations

import json
import re

import jsonschema

from shared.contracts import CheckResult, TrajectoryState, TrajectoryStatus
from shared.env.tool_spec import tool_parameters
from shared.env.trajectory import executes_sql, tool_by_name

NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?!\w|\.\d)")  # "3." at a sentence end is the number 3


def check_finished(state: TrajectoryState) -> CheckResult:
    done = state.status == TrajectoryStatus.TRAJECTORY_STATUS_USER_DONE
    return CheckResult(name="user_finished", passed=done,
                       detail="" if done else "the conversation ran out of turns before every subtask was satisfied")


def check_call_arguments(state: TrajectoryState) -> CheckResult:
    problems = []
    for m in state.messages:
        for c in m.tool_calls:
            tool = tool_by_name(state.toolset, c.function.name)
            if tool is None:
                problems.append(f"{c.id}: unknown tool {c.function.name}")
                continue
            try:
                jsonschema.validate(json.loads(c.function.arguments or "{}"), tool_parameters(tool))
            except (json.JSONDecodeError, jsonschema.ValidationError) as e:
                problems.append(f"{c.id} {c.function.name}: {getattr(e, 'message', e)}")
    return CheckResult(name="call_arguments_match_schema", passed=not problems, detail="; ".join(problems)[:1000])


def check_outputs(state: TrajectoryState) -> CheckResult:
    problems = []
    for r in state.tool_results:
        if not r.ok:
            continue
        tool = tool_by_name(state.toolset, r.tool_name)
        if tool is None or not tool.output_schema_json:
            continue
        try:
            jsonschema.validate(json.loads(r.content_json), json.loads(tool.output_schema_json))
        except (json.JSONDecodeError, jsonschema.ValidationError) as e:
            problems.append(f"{r.call_id} {r.tool_name}: {getattr(e, 'message', e)}")
    return CheckResult(name="outputs_match_schema", passed=not problems, detail="; ".join(problems)[:1000])


def check_state_hash(state: TrajectoryState, final_hash: str) -> CheckResult:
    if not state.golden_state_hash:
        return CheckResult(name="golden_state", passed=True, detail="no task changes data")
    same = final_hash == state.golden_state_hash
    return CheckResult(name="golden_state", passed=same,
                       detail="" if same else "the sandbox's final state differs from the golden actions' end state")


def check_grounding(state: TrajectoryState) -> CheckResult:
    """Every number the agent states must appear in a tool result, the user's words or the given context.

    Messages of a start state's prefix are context: sources, not claims to check."""
    given = 1 + state.prefix_messages  # the system prompt and the prefix
    sources = " ".join(m.content for i, m in enumerate(state.messages) if i < given or m.role in ("tool", "user"))
    known = {_norm(n) for n in NUMBER.findall(sources)}
    unsupported = []
    for m in state.messages[given:]:
        if m.role == "assistant" and m.content:
            for n in NUMBER.findall(m.content):
                if _norm(n) not in known:
                    unsupported.append(n)
    return CheckResult(name="claims_grounded_in_tool_results", passed=not unsupported,
                       detail=("numbers stated without a source: " + ", ".join(sorted(set(unsupported))[:10]))
                       if unsupported else "")


def check_tool_sources(state: TrajectoryState) -> CheckResult:
    """Every successful result came from where the settings say tools run: SQL, or the simulator."""
    wanted = "sql" if executes_sql(state) else "simulated"
    wrong = sorted({r.source for r in state.tool_results if r.ok and r.source != wanted})
    return CheckResult(name="tool_results_from_" + wanted, passed=not wrong,
                       detail=f"results from {', '.join(wrong)}" if wrong else "")


def check_used_tools(state: TrajectoryState) -> CheckResult:
    executed = sum(1 for r in state.tool_results if r.ok)
    return CheckResult(name="tools_executed", passed=executed > 0,
                       detail=f"{executed} successful tool calls")


def _norm(n: str) -> str:
    try:
        f = float(n)
    except ValueError:
        return n
    return str(int(f)) if f.is_integer() else f"{f:.2f}".rstrip("0").rstrip(".")


def deterministic_checks(state: TrajectoryState, final_hash: str) -> list[CheckResult]:
    return [check_finished(state), check_used_tools(state), check_tool_sources(state), check_call_arguments(state),
            check_outputs(state), check_state_hash(state, final_hash), check_grounding(state)]
