"""user-sim: plays the user. Reveals the plan piecemeal, reviews outcomes, closes only when all is done."""
from __future__ import annotations

from services.user_sim import logic
from services.user_sim.instruction_user import InstructionUserTurn, apply_turn, scripted_turn
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
        if state.instruction:
            return self.instructed_turn(state)
        move = logic.next_move(state, newly_satisfied=logic.mark_satisfied(state))
        if move.kind == "out_of_turns":
            logic.out_of_turns(state)
            return self._complete(state)
        logic.apply_move(state, move)
        llm = self.llm.for_role("user_sim", state.settings.models)

        def ask(correction: str) -> str:
            turn = UserTurn(state, move, correction).ask(llm)
            record_usage(state, turn.chat)
            return turn.value

        text, reasons = logic.word(state, move, ask)
        if reasons:
            logic.abandon(state, reasons)
            return self._complete(state)
        if move.kind == "close":
            logic.close(state, text)
            return self._complete(state)
        logic.say(state, text)
        return [Outgoing(Topics.TURNS_AGENT, state.trajectory_id, advance(state))]

    def instructed_turn(self, state: TrajectoryState) -> list[Outgoing]:
        """An evaluation trial's user turn: the turn cap, else the scripted user's message or the instruction-driven
        model's."""
        if state.counters.user_turns >= state.settings.max_user_turns:
            logic.out_of_turns(state)
            return self._complete(state)
        if state.settings.evaluation.scripted_user:
            turn = scripted_turn(state)
        else:
            asked = InstructionUserTurn(state).ask(self.llm.for_role("user_sim", state.settings.models))
            record_usage(state, asked.chat)
            turn = asked.value
        if apply_turn(state, turn):
            return self._complete(state)
        return [Outgoing(Topics.TURNS_AGENT, state.trajectory_id, advance(state))]

    def _complete(self, state: TrajectoryState) -> list[Outgoing]:
        return [Outgoing(Topics.TRAJECTORIES_COMPLETE, state.trajectory_id, advance(state))]
