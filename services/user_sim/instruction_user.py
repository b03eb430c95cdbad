"""The evaluation user: instruction-driven, as in DySQL-Bench and tau^2-bench.

It is given the task's instruction and nothing else, reveals it naturally over the conversation, answers the
agent's questions from it, and ends by saying is_task_complete (DySQL's ###STOP###) once it has what it asked for
or sees that it will not get it. Unlike the generation user (logic.py) no policy steers it and no check rewrites
its words: the agent under test must cope with a person as the model plays one. The turn cap ends it otherwise.
"""
from __future__ import annotations

from services.user_sim.user_turn import role_flipped
from shared.contracts import ChatMessage, TrajectoryState, TrajectoryStatus
from shared.runtime.llm import ModelCall

STOP = "###STOP###"

INSTRUCTION_RULES = """\
You are a user of a {domain} database, chatting with its assistant to get something done. You are not the \
assistant: you cannot run queries yourself.

Your instruction:
{instruction}

How you behave:
1. Start by asking for what your instruction wants, in your own words; you may reveal it a part at a time.
2. Give only the ids, names and values your instruction contains. If the assistant asks for something it does \
not say, tell it you don't know.
3. When the assistant asks you to confirm a change your instruction wants, say yes.
4. Do not invent requests beyond your instruction.
5. When everything in your instruction is done, or the assistant clearly cannot do it, end the conversation: set \
is_task_complete to true (or write {stop}).

Answer with JSON: {{"user_message": "your message", "is_task_complete": false}}."""

USER_TURN_SCHEMA = {
    "type": "object",
    # 800, not more: llama.cpp compiles a string bound into a grammar rule per character, and at 1200 its grammar
    # compiler refused the schema and llama-cpp-python's server died (tests/test_layout.py holds every bound to 800).
    "properties": {"user_message": {"type": "string", "minLength": 1, "maxLength": 800},
                   "is_task_complete": {"type": "boolean"}},
    "required": ["user_message", "is_task_complete"],
}


class InstructionUserTurn(ModelCall[dict]):
    name = "instruction_user_turn"

    def __init__(self, state: TrajectoryState):
        self.state = state

    def messages(self) -> list[dict]:
        system = INSTRUCTION_RULES.format(domain=self.state.domain, instruction=self.state.instruction, stop=STOP)
        return [{"role": "system", "content": system}, *role_flipped(self.state)]

    def schema(self) -> dict:
        return USER_TURN_SCHEMA


SCRIPTED_THANKS = "Thank you, that is all."


def scripted_turn(state: TrajectoryState) -> dict:
    """The scripted user of the reference agents: the whole instruction first, then thanks and the end. The oracle
    needs no more, noop gets no more from a model user either, and it costs no model call: a harness check of a
    whole task set takes seconds per task, not minutes behind the one local model."""
    if not any(m.role == "user" for m in state.messages):
        return {"user_message": state.instruction, "is_task_complete": False}
    return {"user_message": SCRIPTED_THANKS, "is_task_complete": True}


def ends(turn: dict) -> bool:
    return bool(turn["is_task_complete"]) or STOP in turn["user_message"]


def apply_turn(state: TrajectoryState, turn: dict) -> bool:
    """Append the user's message (without the stop marker); True when it ends the conversation."""
    text = turn["user_message"].replace(STOP, "").strip()
    if text:
        state.messages.append(ChatMessage(role="user", content=text))
        state.counters.user_turns += 1
        state.counters.agent_steps_this_turn = 0
    if ends(turn):
        state.is_task_complete = True
        state.status = TrajectoryStatus.TRAJECTORY_STATUS_USER_DONE
        return True
    return False
