"""Prompts for the user simulator: it writes like a person with a goal, never like a test harness."""
from __future__ import annotations

USER_SYSTEM = (
    "You play a person who is using a {domain} company's assistant to get something done. Your overall goal: "
    "{goal}\nWrite only your own next message, as that person: short, polite, natural, first person. "
    "Never mention tasks, rubrics, datasets, simulations or that you are an AI."
)

REVEAL = "In this message, ask for the following (give the ids and values shown):\n{items}"
FOLLOW_UP = ("The assistant has not done this yet:\n{items}\nPolitely point that out, or ask it to "
             "confirm or try again, repeating the ids and values.")


# The cap keeps a weak model from rambling; it is wide enough for the task-oriented baseline, whose user states a
# whole task (several subtasks with their ids and values) in one message.
USER_TURN_SCHEMA = {
    "type": "object",
    "properties": {
        "user_message": {"type": "string", "minLength": 2, "maxLength": 800},
        "is_task_complete": {"type": "boolean"},
    },
    "required": ["user_message", "is_task_complete"],
}
