"""user-sim's model call: the user's next message, worded like a person with a goal, never like a test harness.

The user model sees the conversation from the user's side (role-flipped: its own earlier messages as `assistant`,
the agent's replies as `user`; tool calls and tool results are not the user's to see), the behaviour rules and its
goal in the system prompt, and the plan for this message, which the policy (logic.py) chose, as a stage direction
after the agent's last words. Measured with Qwen2.5-Coder-1.5B: with the plan in the system prompt and a made-up
assistant greeting to answer, it repeated the agent's last message in 3 of 6 drafts; with the plan last, 1 in 6,
and that one greeted like an assistant ("How can I assist you today?"), which the message check refuses.
"""
from __future__ import annotations

from services.user_sim.logic import Move, is_opening
from shared.contracts import TrajectoryState
from shared.env.grounding import spoken_names
from shared.runtime.llm import ModelCall

USER_RULES = """\
You are playing a customer of a {domain} business, chatting with the business's assistant to get something done. \
All you know about your situation is written here; you know nothing else.

How you behave:
1. Your first message says hello and asks for help with the first thing you need, the way a person starts a chat.
2. Before you write, read what the assistant last said and react to it. If it reported a result, acknowledge it in \
a few words. If it asked you a question or asked you to confirm something, answer that first.
3. Ask only for what this message's plan below lists, one or two things at a time; keep the rest of your goal for \
later messages. Put two requests together only when they go together naturally.
4. Give only the ids, numbers and names written in your plan. If the assistant asks for something you do not have, \
say you don't know it and ask it to look it up.
5. When the assistant asks you to confirm a change you asked for, say yes and tell it to go ahead.
6. Write like a real person: short, polite, first person, everyday words. Never mention tasks, tools, databases, \
field names, JSON, or that this is a simulation.
7. Say goodbye only in a closing message.

Your overall goal: {goal}"""

OPENING = "This is your first message: greet the assistant and ask for the following."
REVEAL = "Now ask for the following."
ACKNOWLEDGE = "Start by thanking the assistant briefly for what it just reported."
FOLLOW_UP = ("The assistant has not done the following yet. Point that out politely, or ask it to try again, and "
             "give the details again.")
ANSWER = ("The assistant asked you something about the following. Answer its question using only these details; if "
          "it asks you to confirm, say yes, go ahead.")
CLOSE = ("Everything you needed is done. Write a short closing message: acknowledge that it is all sorted and thank "
         "the assistant.")
# The plan for the next message, placed after the agent's last words (a small model follows what it read last).
DIRECTION = "(You are the customer. {plan}\nWrite only the customer's next message.)"
OUTPUT = ('Answer with JSON: {{"user_message": "your message", "is_task_complete": {complete}}}. '
          "is_task_complete is true only on the closing message.")


def user_turn_schema(closing: bool) -> dict:
    """is_task_complete is pinned by the policy: the model cannot end early, and the closing message says it ends.

    The length cap keeps a weak model from rambling; it is wide enough for the task-oriented baseline, whose user
    states a whole task (several subtasks with their ids and values) in one message."""
    return {
        "type": "object",
        "properties": {
            "user_message": {"type": "string", "minLength": 2, "maxLength": 800},
            "is_task_complete": {"const": closing},
        },
        "required": ["user_message", "is_task_complete"],
    }


def role_flipped(state: TrajectoryState) -> list[dict]:
    """The conversation as the user lived it: its messages as `assistant`, the agent's words as `user`.

    Tool traffic is left out, and consecutive texts of one side are joined, so roles alternate as chat templates
    require. Empty before the user's first message."""
    flipped: list[dict] = []
    for m in state.messages:
        if m.role == "user":
            role = "assistant"
        elif m.role == "assistant" and m.content:
            role = "user"
        else:
            continue
        if flipped and flipped[-1]["role"] == role:
            flipped[-1]["content"] += "\n\n" + m.content
        else:
            flipped.append({"role": role, "content": m.content})
    return flipped


class UserTurn(ModelCall[str]):
    """Words the move the policy chose; the answer is the message's text.

    `correction` says why the previous draft of this same message was not sent."""

    name = "user_turn"

    def __init__(self, state: TrajectoryState, move: Move, correction: str = ""):
        self.state = state
        self.move = move
        self.correction = correction

    def plan(self) -> str:
        """What this message must do, with the details the user may give (field names as a person says them)."""
        if self.move.kind == "close":
            return CLOSE
        if self.move.kind == "reveal":
            lines = [OPENING if is_opening(self.state) else REVEAL]
        else:
            lines = [FOLLOW_UP if self.move.kind == "follow_up" else ANSWER]
        if self.move.acknowledge:
            lines.insert(0, ACKNOWLEDGE)
        lines += [f"- {spoken_names(self.state.tasks[ti].subtasks[si].description)}" for ti, si in self.move.subtasks]
        return "\n".join(lines)

    def system_prompt(self) -> str:
        goal = " ".join(t.description for t in self.state.tasks)
        return "\n\n".join([USER_RULES.format(domain=self.state.domain, goal=goal),
                            OUTPUT.format(complete=str(self.move.kind == "close").lower())])

    def direction(self) -> str:
        plan = self.plan() + (f"\n{self.correction}" if self.correction else "")
        return DIRECTION.format(plan=plan)

    def messages(self) -> list[dict]:
        conversation = role_flipped(self.state)
        if conversation and conversation[-1]["role"] == "user":  # the agent spoke last: the direction follows it
            conversation[-1] = {"role": "user", "content": f"The assistant says: {conversation[-1]['content']}"
                                                          f"\n\n{self.direction()}"}
        else:
            conversation.append({"role": "user", "content": self.direction()})
        return [{"role": "system", "content": self.system_prompt()}, *conversation]

    def schema(self) -> dict:
        return user_turn_schema(closing=self.move.kind == "close")

    def parse(self, data: dict) -> str:
        return data["user_message"].strip()
