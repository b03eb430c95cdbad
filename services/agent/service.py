"""agent: answers the user, calling tools over several steps within one turn, with a bound on steps; a reply is
checked before it reaches the user."""
from __future__ import annotations

from services.agent.logic import apply_decision, decide
from services.agent.step import AgentStep
from shared.contracts import Topics, TrajectoryState
from shared.env.trajectory import advance, record_usage, trajectory_info
from shared.runtime.bus import Outgoing, Stage, consumes
from shared.runtime.config import Settings
from shared.runtime.llm import LLMClients


class Agent(Stage):
    name = "agent"

    def __init__(self, settings: Settings):
        super().__init__(settings)
        self.llm = LLMClients(settings.llm)

    def close(self) -> None:
        self.llm.close()

    @consumes(Topics.TURNS_AGENT, TrajectoryState, trajectory_info)
    def handle(self, state: TrajectoryState) -> list[Outgoing]:
        llm = self.llm.for_role("agent", state.settings.models)

        def ask(allow_tools: bool, correction: str) -> dict:
            step = AgentStep(state, allow_tools, correction).ask(llm)
            record_usage(state, step.chat)
            return step.value

        decision = decide(state, ask)
        state.counters.agent_steps_this_turn += 1
        next_topic = Topics.TOOL_CALLS if apply_decision(state, decision) else Topics.TURNS_USER
        return [Outgoing(next_topic, state.trajectory_id, advance(state))]
