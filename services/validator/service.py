"""validator: deterministic checks first (no judge can overrule them), then the rubric judge.

Accepted trajectories go to the dataset topic; rejected ones keep every reason. The judge follows the paper's
policy: it maps each rubric item to Critical, Structural, NonCritical or InvalidRubric and calls the trajectory
invalid only when a Critical item failed; its judgment decides, and the per-item mapping is kept as its record.
"""
from __future__ import annotations

import time

from opentelemetry import trace

from services.validator import acceptance
from services.validator.checks import deterministic_checks
from services.validator.judge import Judge, Judgment, rubric_items, tool_use_judgements
from shared.contracts import Topics, TrajectoryState, TrajectoryStatus, Verdict
from shared.env.sandbox import SandboxManager
from shared.env.trajectory import executes_sql, record_usage, trajectory_info
from shared.lifecycle.registry import TrajectoryRegistry
from shared.runtime.bus import Outgoing, Stage, consumes
from shared.runtime.config import Settings
from shared.runtime.llm import LLMClients


class Validator(Stage):
    name = "validator"

    def __init__(self, settings: Settings):
        super().__init__(settings)
        self.llm = LLMClients(settings.llm)
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

    def ask_judge(self, state: TrajectoryState) -> Judgment | None:
        items = rubric_items(state)
        if not items:
            return None
        answer = Judge(state, items).ask(self.llm.for_role("judge", state.settings.models))
        record_usage(state, answer.chat)
        return answer.value

    @consumes(Topics.TRAJECTORIES_COMPLETE, TrajectoryState, trajectory_info)
    def handle(self, state: TrajectoryState) -> list[Outgoing]:
        verdict = Verdict(trajectory_id=state.trajectory_id)
        verdict.final_state_hash = self.final_state_hash(state)
        checks = deterministic_checks(state, verdict.final_state_hash)
        verdict.checks.extend(checks)
        judged = self.ask_judge(state) if acceptance.judge_needed(checks) else None
        if judged is not None:
            verdict.rubric.extend(judged.rubric)
            verdict.rubric.extend(tool_use_judgements(state))
            verdict.judge_judgment = judged.judgment
            verdict.judge_reasoning = judged.reasoning
        decision = acceptance.decide(checks, judged)
        verdict.reasons.extend(decision.reasons)
        verdict.accepted = decision.accepted
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
