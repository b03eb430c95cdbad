"""Checks on a user message before it is sent: a person writes it, not a test harness, a tool catalogue or a parrot.

A message that fails is asked for again (a bounded number of times); one that still fails ends the trajectory with
the reason, it is never patched.
"""
from __future__ import annotations

import re

from shared.contracts import TrajectoryState
from shared.env.grounding import repeats, words
from shared.env.tool_spec import tool_parameters

# Words about the simulation itself, which a real customer never writes.
META = re.compile(
    r"\b(?:sub-?tasks?|rubrics?|golden|datasets?|simulat\w*|as an ai|language model|json|"
    r"the assistant (?:has|did|should|must|is)|the user (?:wants|asks|needs)|"
    r"tool[ _]?calls?|function calls?|is_task_complete|user_message|my (?:next )?task is)\b",
    re.IGNORECASE,
)
# How a model starts when it answers the assistant's apology instead of speaking as the customer.
ECHO_OPENING = re.compile(r"^\s*(?:you(?:'re| are) sorry|you (?:don't|do not|can't|cannot) have)", re.IGNORECASE)
# "device_id = 120", "customer_id: 7": code, not speech.
CODE_ASSIGNMENT = re.compile(r"\b[a-z]+_[a-z_]+\s*(?:=|:)\s*\S", re.IGNORECASE)
DESCRIPTION_RUN = 6  # this many words of a tool's description in a row is pasted text, not a coincidence


def problems(text: str, state: TrajectoryState) -> list[str]:
    """Why `text` cannot be sent as the user's next message; empty when it can."""
    found = []
    if META.search(text):
        found.append("meta_text")
    last_assistant = _last_assistant_text(state)
    if ECHO_OPENING.search(text) or (last_assistant and repeats(text, last_assistant, threshold=0.6)):
        found.append("echoes_assistant")
    if _pastes_tool_text(text, state):
        found.append("tool_text")
    if CODE_ASSIGNMENT.search(text) or _names_fields(text, state):
        found.append("field_names")
    return found


def _last_assistant_text(state: TrajectoryState) -> str:
    for m in reversed(state.messages):
        if m.role == "assistant" and m.content:
            return m.content
    return ""


def _pastes_tool_text(text: str, state: TrajectoryState) -> bool:
    lowered = text.lower()
    if any(t.name.lower() in lowered for t in state.toolset.tools):
        return True
    said = " ".join(words(text))
    for tool in state.toolset.tools:
        described = words(tool.description)
        for start in range(0, max(len(described) - DESCRIPTION_RUN + 1, 0)):
            if " ".join(described[start:start + DESCRIPTION_RUN]) in said:
                return True
    return False


def _names_fields(text: str, state: TrajectoryState) -> bool:
    """A snake_case field name of any offered tool (a column, as the tools call it) in the message."""
    fields = set()
    for tool in state.toolset.tools:
        fields |= {name.lower() for name in tool_parameters(tool).get("properties", {})
                   if "_" in name}
    said = set(re.findall(r"\b[a-z0-9]+(?:_[a-z0-9]+)+\b", text.lower()))
    return bool(fields & said)
