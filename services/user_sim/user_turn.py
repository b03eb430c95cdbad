"""user-sim's model call: the user's next message, worded like a person with a goal, never like a test harness."""
from __future__ import annotations

from services.user_sim.logic import Move
from shared.contracts import TrajectoryState
from shared.runtime.llm import ModelCall

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


def last_assistant_text(state: TrajectoryState) -> str:
    for m in reversed(state.messages):
        if m.role == "assistant" and m.content:
            return m.content
    return ""


class UserTurn(ModelCall[str]):
    """Words the move the policy chose; the answer is the message's text."""

    name = "user_turn"

    def __init__(self, state: TrajectoryState, move: Move):
        self.state = state
        self.move = move

    def instruction(self) -> str:
        items = "\n".join(f"- {self.state.tasks[ti].subtasks[si].description}" for ti, si in self.move.subtasks)
        return (REVEAL if self.move.kind == "reveal" else FOLLOW_UP).format(items=items)

    def messages(self) -> list[dict]:
        goal = " ".join(t.description for t in self.state.tasks)
        context = last_assistant_text(self.state)
        prompt = (f"The assistant just said: {context}\n\n" if context else "") + self.instruction()
        return [{"role": "system", "content": USER_SYSTEM.format(domain=self.state.domain, goal=goal)},
                {"role": "user", "content": prompt}]

    def schema(self) -> dict:
        return USER_TURN_SCHEMA

    def parse(self, data: dict) -> str:
        # is_task_complete is not read: the state, not the model, decides when the conversation ends.
        return data["user_message"].strip()
