"""The acceptance policy: a failed check rejects and no judge can overrule it; with every check passed, the judge
rejects exactly when a Critical rubric item is unsatisfied (the paper's decision rule, applied to the items rather
than to the model's own label)."""
from __future__ import annotations

from dataclasses import dataclass

from shared.contracts import CheckResult, TrajectoryState, Verdict
from shared.validation.judge import Judgment, JudgeCall, rubric_items, tool_use_judgements


@dataclass
class Decision:
    accepted: bool
    reasons: list[str]  # why not, one per failed check or judgment


def judge_needed(checks: list[CheckResult]) -> bool:
    """A judge cannot rescue a failed check, so it is asked only when all passed."""
    return all(c.passed for c in checks)


def decide(checks: list[CheckResult], judged: Judgment | None) -> Decision:
    """`judged` is None when the judge was not asked (a check failed, no judge, or no rubric to judge)."""
    reasons = [f"{c.name}: {c.detail}" for c in checks if not c.passed]
    if judged is not None and judged.critical_failures:
        reasons.append("judge: critical items unsatisfied: " + "; ".join(judged.critical_failures))
    return Decision(accepted=not reasons, reasons=reasons)


def verdict_for(state: TrajectoryState, checks: list[CheckResult], final_state_hash: str,
                judge: JudgeCall | None) -> Verdict:
    """The verdict on `state` given its checks; `judge` None leaves the rubric unjudged (offline without a model)."""
    verdict = Verdict(trajectory_id=state.trajectory_id, final_state_hash=final_state_hash, checks=checks)
    items = rubric_items(state)
    judged = judge(state, items) if judge is not None and items and judge_needed(checks) else None
    if judged is not None:
        verdict.rubric.extend(judged.rubric + tool_use_judgements(state))
        verdict.judge_decision = judged.decision
        verdict.judge_judgment = judged.label
        verdict.judge_reasoning = judged.reasoning
    decision = decide(checks, judged)
    verdict.reasons.extend(decision.reasons)
    verdict.accepted = decision.accepted
    return verdict
