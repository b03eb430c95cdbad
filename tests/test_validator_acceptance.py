"""The validator's acceptance policy and its judge, without Kafka or a model: checks first, then the rubric items
decide by the Critical-only rule, whatever label the judge model gave."""
from __future__ import annotations

import json

from shared.contracts import CheckResult, RubricCategory, RubricJudgement, TrajectoryState
from shared.validation.acceptance import decide, judge_needed, verdict_for
from shared.validation.judge import Judge, Judgment, judge_request
from tests.factories import add_call, state, task

PASSED = CheckResult(name="golden_state", passed=True)
FAILED = CheckResult(name="user_closed_conversation", passed=False, detail="the user never marked the task complete")
CRITICAL, NON_CRITICAL = RubricCategory.RUBRIC_CATEGORY_CRITICAL, RubricCategory.RUBRIC_CATEGORY_NON_CRITICAL


def judged(label: str, *items: tuple[str, RubricCategory, bool], reasoning: str = "") -> Judgment:
    return Judgment([RubricJudgement(item=i, category=c, satisfied=s) for i, c, s in items], label, reasoning)


def test_a_failed_check_rejects_and_the_judge_is_not_asked():
    assert not judge_needed([PASSED, FAILED])
    decision = decide([PASSED, FAILED], None)
    assert not decision.accepted
    assert decision.reasons == ["user_closed_conversation: the user never marked the task complete"]


def test_an_unsatisfied_critical_item_rejects_even_when_the_model_says_valid():
    lenient = judged("valid", ("suspends line 4", CRITICAL, False), ("polite", NON_CRITICAL, False))
    decision = decide([PASSED], lenient)
    assert not decision.accepted
    assert decision.reasons == ["judge: critical items unsatisfied: suspends line 4"]
    assert lenient.decision == "invalid"


def test_the_model_saying_invalid_does_not_reject_when_every_critical_item_is_satisfied():
    strict = judged("invalid", ("suspends line 4", CRITICAL, True), ("polite", NON_CRITICAL, False),
                    reasoning="not polite enough")
    assert decide([PASSED], strict).accepted and strict.decision == "valid"
    assert decide([PASSED], None).accepted  # no rubric to judge


def test_the_judge_parser_keeps_the_label_as_record_and_decides_by_the_items():
    items = ["shows the balance", "uses a table", "adds a goal", "calls in order"]
    answer = {"items": [{"category": "Critical", "satisfied": False}, {"category": "NonCritical", "satisfied": False},
                        {"category": "InvalidRubric", "satisfied": False}, {"category": "Structural", "satisfied": False}],
              "judgment": "valid", "reasoning": "fine"}
    parsed = Judge(state([]), items).parse(answer)
    assert parsed.label == "valid" and parsed.critical_failures == ["shows the balance"]
    answer["items"][0]["satisfied"] = True
    assert Judge(state([]), items).parse(answer).critical_failures == []


def read_trajectory():
    """A finished read of customer 1: its name reached the user in the reply."""
    s = state([task([("get_customer", {"customer_id": 1})])])
    s.tasks[0].rubric.success_criteria.append("tells the customer's name")
    s.tasks[0].rubric.expected_tool_use.append("get_customer(customer_id=<id>)")
    s.tasks[0].subtasks[0].expected_values_json = json.dumps({"name": "Ana"})
    s.messages.add(role="user", content="who is customer 1?")
    add_call(s, "get_customer", {"customer_id": 1}, content={"customer_id": 1, "name": "Ana"})
    s.messages.add(role="assistant", content="Customer 1 is Ana.")
    return s


def test_verdict_records_the_label_and_the_decision_and_rederives_tool_use():
    s = read_trajectory()
    asked = []

    def judge(trajectory, items):
        asked.append(items)
        return judged("invalid", (items[0], CRITICAL, True), reasoning="the model disagrees")

    verdict = verdict_for(s, [PASSED], "hash", judge)
    assert asked == [["tells the customer's name"]]
    assert verdict.accepted and verdict.judge_decision == "valid" and verdict.judge_judgment == "invalid"
    assert verdict.judge_reasoning == "the model disagrees"
    tool_use = verdict.rubric[-1]
    assert tool_use.item == "get_customer(customer_id=<id>)" and tool_use.satisfied  # from the outcome, no flag set

    s.messages[-1].content = "I found the customer."  # the name never reaches the user
    s.tasks[0].subtasks[0].satisfied = True  # the simulator's flag is not what counts
    assert not verdict_for(s, [PASSED], "hash", judge).rubric[-1].satisfied


def test_the_judge_is_not_asked_after_a_failed_check():
    def judge(trajectory, items):
        raise AssertionError("a failed check must not reach the judge")

    verdict = verdict_for(read_trajectory(), [FAILED], "hash", judge)
    assert not verdict.accepted and verdict.judge_decision == "" and not verdict.rubric


def test_the_judge_reads_facts_not_conclusions():
    s = read_trajectory()
    add_call(s, "get_customer", {"customer_id": 9}, ok=False, content={"error": "not_found"})
    s.tool_results[-1].error = "not_found: no customer 9"
    s.tasks[0].subtasks[0].satisfied = True
    request = judge_request(s, ["tells the customer's name"])
    assert 'tool get_customer returned {"customer_id": 1, "name": "Ana"}' in request
    assert "tool get_customer error: not_found: no customer 9" in request
    assert "assistant: Customer 1 is Ana." in request
    assert "every subtask" not in request and "by execution" not in request  # no verdict handed to the judge


def test_a_run_whose_checks_decide_alone_never_asks_the_judge():
    from services.validator.service import Validator

    validator = Validator.__new__(Validator)
    validator.judge = lambda trajectory, items: judged("valid")
    s = TrajectoryState()
    assert validator.judge_of(s) is validator.judge
    s.settings.checks_only = True
    assert validator.judge_of(s) is None
