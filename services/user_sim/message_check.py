"""Checks on a user message before it is sent: a person writes it, not a test harness, a tool catalogue or a parrot.

A message that fails is asked for again (a bounded number of times); one that still fails ends the trajectory with
the reason, it is never patched.
"""
from __future__ import annotations

import re
from typing import Any

from shared.contracts import TrajectoryState
from shared.env.grounding import repeats, value_mentioned, words
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
# The assistant's lines in the customer's mouth: a small model playing the user often greets like the helpdesk,
# asks the customer's questions back ("What would you like to know about the subscription with phone number …?",
# seen in an accepted dialogue), or agrees to do the request itself ("Sure, I'll find Metro Talk and tell you its
# status.").
ASSISTANT_SPEAK = re.compile(r"\bhow (?:can|may|could) i (?:help|assist)\b|\bis there anything else i can\b|"
                             r"\bwhat (?:would|do) you (?:like|want|need) (?:to know|to do|me to|help with)\b|"
                             r"\b(?:would|do) you (?:like|want) me to\b|"
                             r"^\W*(?:sure|certainly|of course|absolutely)\b[^.!?]*\bi(?:'ll| will)\b",
                             re.IGNORECASE)
# "device_id = 120", "customer_id: 7": code, not speech.
CODE_ASSIGNMENT = re.compile(r"\b[a-z]+_[a-z_]+\s*(?:=|:)\s*\S", re.IGNORECASE)
DESCRIPTION_RUN = 6  # this many words of a tool's description in a row is pasted text, not a coincidence


# What the model is told when its message is asked for again, per reason.
CORRECTIONS = {
    "meta_text": "it talked about the conversation itself (tasks, tools, JSON, the assistant's role); speak only as "
                 "the customer",
    "echoes_assistant": "it repeated the assistant's words instead of answering them as the customer",
    "speaks_as_assistant": "it spoke as the assistant, offering help; you are the customer who needs help",
    "tool_text": "it copied a tool's name or description; say what you want in your own everyday words",
    "field_names": "it used database field names such as customer_id; say them as a person would, e.g. customer 7",
    "missing_values": "it left out some of the ids or values listed for this message; include every one of them",
}


def correction(reasons: list[str]) -> str:
    """The note sent with a message asked again (to the model only)."""
    return "Your previous draft of this message was not sent: " + "; ".join(CORRECTIONS[r] for r in reasons) + "."


def problems(text: str, state: TrajectoryState, must_mention: list[Any] = ()) -> list[str]:
    """Why `text` cannot be sent as the user's next message; empty when it can. `must_mention`: values a request
    has to carry for the agent to act on it (a person asking about customer 7 says 7)."""
    found = []
    if META.search(text):
        found.append("meta_text")
    last_assistant = _last_assistant_text(state)
    if ECHO_OPENING.search(text) or (last_assistant and repeats(text, last_assistant, threshold=0.6)):
        found.append("echoes_assistant")
    if ASSISTANT_SPEAK.search(text):
        found.append("speaks_as_assistant")
    if _pastes_tool_text(text, state):
        found.append("tool_text")
    if CODE_ASSIGNMENT.search(text) or _names_fields(text, state):
        found.append("field_names")
    if any(not value_mentioned(text, value) for value in must_mention):
        found.append("missing_values")
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
