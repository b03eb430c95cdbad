"""user-sim: plays the user. Reveals the plan piecemeal, reviews tool outcomes, ends only when all is done."""
from __future__ import annotations

from services.user_sim import logic
from services.user_sim.user_turn import UserTurn
from shared.contracts import Topics, TrajectoryState
from shared.env.trajectory import advance, record_usage, trajectory_info
from shared.runtime.bus import Outgoing, Stage, consumes
from shared.runtime.config import Settings
from shared.runtime.llm import LLMClients


class UserSimulator(Stage):
    name = "user-sim"

    def __init__(self, settings: Settings):
        super().__init__(settings)
        self.llm = LLMClients(settings.llm)

    def close(self) -> None:
        self.llm.close()

    @consumes(Topics.TURNS_USER, TrajectoryState, trajectory_info)
    def handle(self, state: TrajectoryState) -> list[Outgoing]:
        logic.mark_satisfied(state)
        move = logic.next_move(state)
        if move.kind in ("done", "out_of_turns"):
            logic.finish(state, move)
            return [Outgoing(Topics.TRAJECTORIES_COMPLETE, state.trajectory_id, advance(state))]
        logic.apply_move(state, move)
        turn = UserTurn(state, move).ask(self.llm.for_role("user_sim", state.settings.models))
        record_usage(state, turn.chat)
        logic.say(state, move, turn.value)
        return [Outgoing(Topics.TURNS_AGENT, state.trajectory_id, advance(state))]
