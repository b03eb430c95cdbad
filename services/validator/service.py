"""validator: deterministic checks first (no judge can overrule them), then the rubric judge.

Accepted trajectories go to the dataset topic; rejected ones keep every reason. The judge follows the paper's
policy: it maps each rubric item to Critical, Structural, NonCritical or InvalidRubric and calls the trajectory
invalid only when a Critical item failed; its judgment decides, and the per-item mapping is kept as its record.
"""
from __future__ import annotations

import time

from opentelemetry import trace

from services.validator import judge
from services.validator.checks import deterministic_checks
from shared.runtime.bus import Outgoing, Route, run_service
from shared.runtime.config import Settings, get_settings
from shared.contracts import Topics, TrajectoryState, TrajectoryStatus, Verdict
from shared.runtime.llm import LLMClients
from shared.env.sandbox import SandboxManager
from shared.lifecycle.registry import TrajectoryRegistry
from shared.env.trajectory import executes_sql, record_usage, trajectory_info


class Validator:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.llm = LLMClients(settings.llm)
        self.sandboxes = SandboxManager(settings.postgres.dsn)
        self.registry = TrajectoryRegistry(settings.postgres.dsn)

    def final_state_hash(self, state: TrajectoryState) -> str:
        if not executes_sql(state):
            return ""
        # The agent may never have called a tool: the sandbox then holds the untouched domain state.
        self.sandboxes.create(state.trajectory_id, state.toolset.domain_database)
        return self.sandboxes.state_hash(state.trajectory_id, state.toolset.domain_database)

    def run_judge(self, state: TrajectoryState, verdict: Verdict) -> None:
        items = judge.rubric_items(state)
        if not items:
            return
        llm = self.llm.for_role("judge", state.settings.models)
        result = llm.chat([{"role": "system", "content": judge.JUDGE_SYSTEM},
                           {"role": "user", "content": judge.judge_request(state, items)}],
                          schema=judge.judge_schema(len(items)), schema_name="judge_verdict", temperature=0.0)
        record_usage(state, result)
        verdict.rubric.extend(judge.to_judgements(items, result.data))
        verdict.rubric.extend(judge.tool_use_judgements(state))
        verdict.judge_judgment = result.data["judgment"]
        verdict.judge_reasoning = result.data["reasoning"]

    def handle(self, state: TrajectoryState) -> list[Outgoing]:
        verdict = Verdict(trajectory_id=state.trajectory_id)
        verdict.final_state_hash = self.final_state_hash(state)
        checks = deterministic_checks(state, verdict.final_state_hash)
        verdict.checks.extend(checks)
        failed = [c for c in checks if not c.passed]
        verdict.reasons.extend(f"{c.name}: {c.detail}" for c in failed)
        if not failed:  # a judge cannot rescue a failed check, so only ask it when all passed
            self.run_judge(state, verdict)
            if verdict.judge_judgment == "invalid":
                failed_items = judge.critical_failures(list(verdict.rubric))
                verdict.reasons.append("judge: invalid" + (f" (critical items failed: {'; '.join(failed_items)})"
                                                           if failed_items else f" ({verdict.judge_reasoning})"))
        verdict.accepted = not verdict.reasons
        state.status = (TrajectoryStatus.TRAJECTORY_STATUS_ACCEPTED if verdict.accepted
                        else TrajectoryStatus.TRAJECTORY_STATUS_REJECTED)
        state.step += 1
        state.finished_at = time.time()
        verdict.trajectory.CopyFrom(state)
        span = trace.get_current_span()
        span.set_attribute("turnforge.verdict.accepted", verdict.accepted)
        span.set_attribute("turnforge.verdict.reasons", len(verdict.reasons))
        topic = Topics.ACCEPTED if verdict.accepted else Topics.REJECTED
        # One outcome per trajectory: if the deadline sweeper (or a dead letter) got there first, this verdict is late.
        if not self.registry.claim_verdict(state.trajectory_id):
            span.set_attribute("turnforge.verdict.dropped", self.registry.outcome(state.trajectory_id) or "")
            return []
        return [Outgoing(topic, state.trajectory_id, verdict)]


def routes(settings: Settings) -> list[Route]:
    validator = Validator(settings)
    return [Route(Topics.TRAJECTORIES_COMPLETE, TrajectoryState, validator.handle, trajectory_info)]


def main() -> None:
    settings = get_settings()
    run_service("validator", routes(settings), settings)
