"""The agent's step guard: a reply is checked before it reaches the user and asked for again when it fails.

It catches what a small model does instead of acting: stating values no tool returned, claiming a change no tool
made, pasting tool-output markup, or saying the user's words back. The validator stays the judge of record; this
only keeps such replies out of the conversation while it is generated.
"""
from __future__ import annotations

import re

from shared.contracts import TrajectoryState
from shared.env.grounding import TOOL_MARKUP, repeats, unsupported_numbers
from shared.env.tool_spec import mutates
from shared.env.trajectory import grounding_sources, last_user_index, tool_by_name

# A reply that reports a change as done ("I've updated", "has been cancelled", "is now set to").
CLAIMS_CHANGE = re.compile(
    r"\b(?:(?:i(?:'ve| have)|we(?:'ve| have)|has been|have been|was|were|successfully)\s+"
    r"(?:updated|changed|modified|set|deleted|removed|cancell?ed|created|added|registered|recorded|saved)|"
    r"is now (?:set|updated|changed))\b",
    re.IGNORECASE,
)


# What the model is told when its reply is sent back, per reason: what was wrong and what to do instead.
CORRECTIONS = {
    "pasted_tool_markup": "it pasted tool-call or tool-result markup; write plain sentences for the user",
    "ungrounded_values": ("it stated numbers that no tool returned and the user did not give; call a tool to get "
                          "them, or leave them out"),
    "claims_unperformed_write": ("it said a change was made, but no tool has changed anything since the user's last "
                                 "message; call the tool that makes the change, or say it is not done yet"),
    "repeats_user": "it said the user's message back; answer it instead",
}


def problems(reply: str, state: TrajectoryState) -> list[str]:
    """Why `reply` must not reach the user; empty when it may."""
    found = []
    if TOOL_MARKUP.search(reply):
        found.append("pasted_tool_markup")
    if unsupported_numbers(reply, grounding_sources(state)):
        found.append("ungrounded_values")
    if CLAIMS_CHANGE.search(reply) and not _wrote_this_turn(state):
        found.append("claims_unperformed_write")
    user_index = last_user_index(state)
    if user_index >= 0 and repeats(reply, state.messages[user_index].content):
        found.append("repeats_user")
    return found


def _wrote_this_turn(state: TrajectoryState) -> bool:
    """A tool that changes data succeeded since the user's last message."""
    start = last_user_index(state) + 1
    call_ids = {c.id for m in state.messages[start:] for c in m.tool_calls}
    for result in state.tool_results:
        if result.ok and result.call_id in call_ids:
            tool = tool_by_name(state.toolset, result.tool_name)
            if tool is not None and mutates(tool):
                return True
    return False
