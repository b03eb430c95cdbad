"""agent: answers the user, calling tools over several steps within one turn, with a bound on steps; a reply is
checked before it reaches the user.

In an evaluation (the seed's settings carry `evaluation`) the agent is the one under test: a model reached with
native tools= (the configured agent role's endpoint, or one of its own), or a reference agent (oracle, noop)."""
from __future__ import annotations

from services.agent.logic import apply_decision, decide
from services.agent.reference import noop_decision, oracle_decision
from services.agent.step import AgentStep
from shared.contracts import AgentKind, EvaluationSettings, Topics, TrajectoryState
from shared.env.trajectory import advance, record_usage, trajectory_info
from shared.runtime.bus import Outgoing, Stage, consumes
from shared.runtime.config import LLMConfig, Settings
from shared.runtime.llm import LLMClient, LLMClients

REFERENCE_AGENTS = {AgentKind.AGENT_KIND_ORACLE: oracle_decision, AgentKind.AGENT_KIND_NOOP: noop_decision}


def model_under_test_config(config: LLMConfig, evaluation: EvaluationSettings) -> LLMConfig:
    """The agent role's endpoint, or the evaluation's own address and model when it names them.

    A named endpoint is a served model, asked with native tools= as it is in deployment. The configured agent role
    keeps the way its endpoint is asked: llama.cpp hands Qwen2.5's native calls back as prose (asked "what is the
    last name of bowler 7?" with an execute_sql tool, the 1.5B answered with the SQL in a code block), so the local
    model is evaluated through the JSON-schema step, without the generation guards."""
    endpoint = config.for_role("agent")
    if evaluation.agent_base_url or evaluation.agent_model:
        endpoint = endpoint.model_copy(update={"tool_calling": "native"})
    if evaluation.agent_base_url:
        endpoint = endpoint.model_copy(update={"base_url": evaluation.agent_base_url})
    if evaluation.agent_model:
        endpoint = endpoint.model_copy(update={"model": evaluation.agent_model})
    return config.model_copy(update={"roles": {**config.roles, "agent": endpoint}})


class Agent(Stage):
    name = "agent"

    def __init__(self, settings: Settings):
        super().__init__(settings)
        self.llm = LLMClients(settings.llm)
        self.models_under_test: dict[tuple[str, str], LLMClient] = {}

    def close(self) -> None:
        self.llm.close()
        for client in self.models_under_test.values():
            client.close()

    def model_under_test(self, state: TrajectoryState) -> LLMClient:
        evaluation = state.settings.evaluation
        key = (evaluation.agent_base_url, evaluation.agent_model)
        if key not in self.models_under_test:
            config = model_under_test_config(self.settings.llm, evaluation)
            self.models_under_test[key] = LLMClient(config, "agent", evaluation.agent_model)
        return self.models_under_test[key]

    @consumes(Topics.TURNS_AGENT, TrajectoryState, trajectory_info)
    def handle(self, state: TrajectoryState) -> list[Outgoing]:
        kind = state.settings.evaluation.agent_kind
        if kind in REFERENCE_AGENTS:
            decision = REFERENCE_AGENTS[kind](state)
        else:
            evaluated = kind == AgentKind.AGENT_KIND_MODEL
            llm = self.model_under_test(state) if evaluated else self.llm.for_role("agent", state.settings.models)

            def ask(allow_tools: bool, correction: str) -> dict:
                step = AgentStep(state, allow_tools, correction).ask(llm)
                record_usage(state, step.chat)
                return step.value

            # A model under test gets no second chance at a reply the generation guard would refuse: that is
            # what is measured.
            decision = decide(state, ask, guard_replies=not evaluated)
        state.counters.agent_steps_this_turn += 1
        next_topic = Topics.TOOL_CALLS if apply_decision(state, decision) else Topics.TURNS_USER
        return [Outgoing(next_topic, state.trajectory_id, advance(state))]
