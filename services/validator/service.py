"""validator: the stage around shared/validation (checks, judge, acceptance policy), which `turnforge validate`
runs as well. It supplies what only the live pipeline has: the trajectory's sandbox (its final state hash) and the
judge model the seed's settings name; accepted trajectories go to the dataset topic, rejected ones keep every reason.
"""
from __future__ import annotations

import time

from opentelemetry import trace

from shared.contracts import Topics, TrajectoryState, TrajectoryStatus
from shared.env.sandbox import SandboxManager
from shared.env.trajectory import executes_sql, trajectory_info
from shared.lifecycle.registry import TrajectoryRegistry
from shared.runtime.bus import Outgoing, Stage, consumes
from shared.runtime.config import Settings
from shared.runtime.llm import LLMClients
from shared.validation.acceptance import verdict_for
from shared.validation.checks import deterministic_checks
from shared.validation.judge import model_judge
from shared.validation.trial import trial_checks


class Validator(Stage):
    name = "validator"

    def __init__(self, settings: Settings):
        super().__init__(settings)
        self.llm = LLMClients(settings.llm)
        self.judge = model_judge(lambda state: self.llm.for_role("judge", state.settings.models))
        self.sandboxes = SandboxManager(settings.postgres.dsn)
        self.registry = TrajectoryRegistry(settings.postgres.dsn)

    def close(self) -> None:
        self.registry.close()
        self.sandboxes.close()
        self.llm.close()

    def final_state_hash(self, state: TrajectoryState) -> str:
        if not executes_sql(state):
            return ""
        # The agent may never have called a tool: the sandbox then holds the untouched domain state.
        self.sandboxes.create(state.trajectory_id, state.toolset.domain_database)
        return self.sandboxes.state_hash(state.trajectory_id, state.toolset.domain_database)

    def judge_of(self, state: TrajectoryState):
        """The judge model, unless the run let the checks decide alone."""
        return None if state.settings.checks_only else self.judge

    @consumes(Topics.TRAJECTORIES_COMPLETE, TrajectoryState, trajectory_info)
    def handle(self, state: TrajectoryState) -> list[Outgoing]:
        final_hash = self.final_state_hash(state)
        if state.instruction:  # an evaluation trial: success is its end state and the values told, no judge
            verdict = verdict_for(state, trial_checks(state, final_hash), final_hash, judge=None)
        else:
            verdict = verdict_for(state, deterministic_checks(state, final_hash), final_hash, self.judge_of(state))
        state.status = (TrajectoryStatus.TRAJECTORY_STATUS_ACCEPTED if verdict.accepted
                        else TrajectoryStatus.TRAJECTORY_STATUS_REJECTED)
        state.step += 1
        state.finished_at = time.time()
        verdict.trajectory.CopyFrom(state)
        span = trace.get_current_span()
        span.set_attribute("turnforge.verdict.accepted", verdict.accepted)
        span.set_attribute("turnforge.verdict.reasons", len(verdict.reasons))
        # One outcome per trajectory: if the deadline sweeper (or a dead letter) got there first, this verdict is late.
        if not self.registry.claim_verdict(state.trajectory_id):
            span.set_attribute("turnforge.verdict.dropped", self.registry.outcome(state.trajectory_id) or "")
            return []
        return [Outgoing(Topics.ACCEPTED if verdict.accepted else Topics.REJECTED, state.trajectory_id, verdict)]
