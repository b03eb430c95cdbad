"""The validator's acceptance policy: a failed check rejects and no judge can overrule it; with every check
passed, the judge rejects only by calling the trajectory invalid (the paper's policy: a Critical item failed)."""
from __future__ import annotations

from dataclasses import dataclass

from services.validator.judge import Judgment, critical_failures
from shared.contracts import CheckResult


@dataclass
class Decision:
    accepted: bool
    reasons: list[str]  # why not, one per failed check or judgment


def judge_needed(checks: list[CheckResult]) -> bool:
    """A judge cannot rescue a failed check, so it is asked only when all passed."""
    return all(c.passed for c in checks)


def decide(checks: list[CheckResult], judged: Judgment | None) -> Decision:
    """`judged` is None when the judge was not asked (a check failed, or there was no rubric to judge)."""
    reasons = [f"{c.name}: {c.detail}" for c in checks if not c.passed]
    if judged is not None and judged.judgment == "invalid":
        failed_items = critical_failures(judged.rubric)
        reasons.append("judge: invalid" + (f" (critical items failed: {'; '.join(failed_items)})"
                                           if failed_items else f" ({judged.reasoning})"))
    return Decision(accepted=not reasons, reasons=reasons)
