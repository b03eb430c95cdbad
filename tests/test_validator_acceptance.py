"""The validator's acceptance policy, without Kafka or a model: checks first, then the judge's judgment."""
from __future__ import annotations

from services.validator.acceptance import decide, judge_needed
from services.validator.judge import Judgment
from shared.contracts import CheckResult, RubricCategory, RubricJudgement

PASSED = CheckResult(name="golden_state", passed=True)
FAILED = CheckResult(name="user_finished", passed=False, detail="ran out of turns")


def judged(judgment: str, *items: tuple[str, RubricCategory, bool], reasoning: str = "") -> Judgment:
    return Judgment([RubricJudgement(item=i, category=c, satisfied=s) for i, c, s in items], judgment, reasoning)


def test_a_failed_check_rejects_and_the_judge_is_not_asked():
    assert not judge_needed([PASSED, FAILED])
    decision = decide([PASSED, FAILED], None)
    assert not decision.accepted and decision.reasons == ["user_finished: ran out of turns"]


def test_with_every_check_passed_the_judgment_decides():
    assert judge_needed([PASSED])
    valid = judged("valid", ("shows the balance", RubricCategory.RUBRIC_CATEGORY_NON_CRITICAL, False))
    assert decide([PASSED], valid).accepted
    assert decide([PASSED], None).accepted  # no rubric to judge


def test_an_invalid_judgment_names_the_failed_critical_items_else_the_reasoning():
    critical = judged("invalid", ("suspends line 4", RubricCategory.RUBRIC_CATEGORY_CRITICAL, False),
                      ("polite", RubricCategory.RUBRIC_CATEGORY_NON_CRITICAL, False))
    assert decide([PASSED], critical).reasons == ["judge: invalid (critical items failed: suspends line 4)"]
    vague = judged("invalid", ("polite", RubricCategory.RUBRIC_CATEGORY_NON_CRITICAL, False), reasoning="made up a fee")
    decision = decide([PASSED], vague)
    assert not decision.accepted and decision.reasons == ["judge: invalid (made up a fee)"]
