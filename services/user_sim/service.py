"""user-sim: plays the user. Reveals the plan piecemeal, reviews tool outcomes, ends only when all is done."""
from __future__ import annotations

from services.user_sim import logic
from services.user_sim.prompts import FOLLOW_UP, REVEAL, USER_SYSTEM, USER_TURN_SCHEMA
from shared.runtime.bus import Outgoing, Route, run_service
from shared.runtime.config import Settings, get_settings
from shared.contracts import ChatMessage, Topics, TrajectoryState, TrajectoryStatus
from shared.runtime.llm import LLMClients
from shared.env.trajectory import advance, record_usage, trajectory_info


class UserSimulator:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.llm = LLMClients(settings.llm)

    def _instruction(self, state: TrajectoryState, move: logic.Move) -> str:
        items = "\n".join(f"- {state.tasks[ti].subtasks[si].description}" for ti, si in move.subtasks)
        return (REVEAL if move.kind == "reveal" else FOLLOW_UP).format(items=items)

    def _last_assistant_text(self, state: TrajectoryState) -> str:
        for m in reversed(state.messages):
            if m.role == "assistant" and m.content:
                return m.content
        return ""

    def write_message(self, state: TrajectoryState, instruction: str) -> tuple[str, bool]:
        goal = " ".join(t.description for t in state.tasks)
        llm = self.llm.for_role("user_sim", state.settings.models)
        context = self._last_assistant_text(state)
        prompt = (f"The assistant just said: {context}\n\n" if context else "") + instruction
        result = llm.chat([{"role": "system", "content": USER_SYSTEM.format(domain=state.domain, goal=goal)},
                           {"role": "user", "content": prompt}], schema=USER_TURN_SCHEMA, schema_name="user_turn")
        record_usage(state, result)
        return result.data["user_message"].strip(), bool(result.data["is_task_complete"])

    def handle(self, state: TrajectoryState) -> list[Outgoing]:
        logic.mark_satisfied(state)
        move = logic.next_move(state)
        if move.kind in ("done", "out_of_turns"):
            state.status = (TrajectoryStatus.TRAJECTORY_STATUS_USER_DONE if move.kind == "done"
                            else TrajectoryStatus.TRAJECTORY_STATUS_OUT_OF_TURNS)
            state.current_task = max(len(state.tasks) - 1, 0)
            return [Outgoing(Topics.TRAJECTORIES_COMPLETE, state.trajectory_id, advance(state))]
        logic.apply_move(state, move)
        text, _model_says_complete = self.write_message(state, self._instruction(state, move))
        # The state, not the model, decides completion: work remains, so the conversation goes on.
        requests = [state.tasks[ti].subtasks[si].description for ti, si in move.subtasks]
        text = logic.ensure_values_mentioned(text, logic.required_values(state, move), requests)
        state.messages.append(ChatMessage(role="user", content=text))
        state.counters.user_turns += 1
        state.counters.agent_steps_this_turn = 0
        return [Outgoing(Topics.TURNS_AGENT, state.trajectory_id, advance(state))]


def routes(settings: Settings) -> list[Route]:
    sim = UserSimulator(settings)
    return [Route(Topics.TURNS_USER, TrajectoryState, sim.handle, trajectory_info)]


def main() -> None:
    settings = get_settings()
    run_service("user-sim", routes(settings), settings)
