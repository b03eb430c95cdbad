"""The reference agents of an evaluation, which make the harness testable without a model under test.

- oracle: calls every golden action of the trial's tasks, in order, in its first turn, then tells the values the
  reads were to return: it should pass every task whose golden actions reach the golden end state.
- noop: answers without calling any tool: it should pass no task that changes data or asks for values.
Both give a step decision as the model's agent does ({"tool_calls": [...]} or {"reply": ...}).
"""
from __future__ import annotations

import json

from shared.contracts import TrajectoryState
from shared.env.outcomes import flat_values

NOOP_REPLY = "I'm sorry, I can't help with that."
ORACLE_DONE = "Done: everything you asked for is taken care of."
ORACLE_AGAIN = "Is there anything else I can help you with?"


def _calls_made(state: TrajectoryState) -> int:
    return sum(len(m.tool_calls) for m in state.messages)


def _values_to_tell(state: TrajectoryState) -> list:
    return [v for t in state.tasks for s in t.subtasks if s.expected_values_json
            for v in flat_values(json.loads(s.expected_values_json))]


def oracle_decision(state: TrajectoryState) -> dict:
    """The golden calls at once (the executor runs them in order), then one report, then small talk."""
    golden = [a for t in state.tasks for a in t.golden_actions]
    if _calls_made(state) == 0 and golden:
        return {"tool_calls": [{"name": a.tool_name, "arguments": json.loads(a.arguments_json or "{}")}
                               for a in golden]}
    if any(m.role == "assistant" and m.content for m in state.messages):
        return {"reply": ORACLE_AGAIN}
    values = _values_to_tell(state)
    return {"reply": f"{ORACLE_DONE} You asked for: {', '.join(map(str, values))}." if values else ORACLE_DONE}


def noop_decision(state: TrajectoryState) -> dict:
    return {"reply": NOOP_REPLY}
