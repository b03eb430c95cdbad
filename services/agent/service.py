"""agent: answers the user, calling tools over several steps within one turn, with a bound on steps."""
from __future__ import annotations

from services.agent.logic import apply_decision, request_messages, step_schema
from shared.runtime.bus import Outgoing, Route, run_service
from shared.runtime.config import Settings, get_settings
from shared.contracts import Topics, TrajectoryState
from shared.runtime.llm import LLMClients
from shared.env.trajectory import advance, record_usage, trajectory_info


# Tool calls want precision more than variety; the user simulator supplies the variety.
AGENT_TEMPERATURE = 0.2


class Agent:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.llm = LLMClients(settings.llm)

    def handle(self, state: TrajectoryState) -> list[Outgoing]:
        # Past the step bound the agent must answer with what it has.
        allow_tools = state.counters.agent_steps_this_turn < max(state.settings.max_agent_steps_per_turn, 1)
        llm = self.llm.for_role("agent", state.settings.models)
        result = llm.chat(request_messages(state), schema=step_schema(state.toolset, allow_tools),
                          schema_name="agent_step", temperature=AGENT_TEMPERATURE)
        record_usage(state, result)
        state.counters.agent_steps_this_turn += 1
        if apply_decision(state, result.data):
            return [Outgoing(Topics.TOOL_CALLS, state.trajectory_id, advance(state))]
        return [Outgoing(Topics.TURNS_USER, state.trajectory_id, advance(state))]


def routes(settings: Settings) -> list[Route]:
    agent = Agent(settings)
    return [Route(Topics.TURNS_AGENT, TrajectoryState, agent.handle, trajectory_info)]


def main() -> None:
    settings = get_settings()
    run_service("agent", routes(settings), settings)
