"""Evaluation measures on hand-made trial outcomes with answers worked out by hand."""
from __future__ import annotations

import math

import pytest

from shared.evaluation.measures import (
    GoldenCall, ToolCallRecord, TrialOutcome, TurnRecord, accuracy_by_turn, call_is_right, dialogue_success_rate,
    failed_sql_calls, failed_sql_histogram, hallucinates, hallucination_rate, inconsistent_turns, pass_hat_k,
    scores_by_pair, state_tracking_consistency, tool_call_accuracy, transfer_matrix,
)

LOOKUP = GoldenCall("get_bowler", {"first_name": "Stephanie", "last_name": "Viescas"},
                    [{"bowler_id": 8, "first_name": "Stephanie", "last_name": "Viescas"}])
FIX_SCORE = GoldenCall("update_score", {"bowler_id": 8, "match_id": 36, "raw_score": 165})


def call(tool, executed=True, result=None, writes=False, identifying=None, **arguments) -> ToolCallRecord:
    return ToolCallRecord(tool, arguments, executed, result, writes, identifying)


def trials_with(task_id: str, successes: int, n: int) -> list[TrialOutcome]:
    return [TrialOutcome(task_id, success=i < successes) for i in range(n)]


def test_pass_hat_k_is_the_unbiased_estimate_per_task():
    figures = pass_hat_k(trials_with("a", 2, 4))
    assert figures[1] == pytest.approx(0.5)
    assert figures[2] == pytest.approx(1 / 6)  # C(2,2)/C(4,2)
    assert figures[3] == 0 and figures[4] == 0
    assert pass_hat_k(trials_with("a", 4, 4))[4] == 1  # k = n only when every trial succeeded


def test_pass_hat_k_averages_tasks_up_to_the_fewest_trials():
    figures = pass_hat_k(trials_with("a", 2, 4) + trials_with("b", 3, 3))
    assert sorted(figures) == [1, 2, 3]
    assert figures[1] == pytest.approx((0.5 + 1) / 2)
    assert figures[2] == pytest.approx((1 / 6 + 1) / 2)
    with pytest.raises(ValueError):
        pass_hat_k([])


def test_dialogue_success_needs_every_goal():
    trials = [TrialOutcome("a", True, goals_achieved=(True, True)),
              TrialOutcome("b", True, goals_achieved=(True, False)),
              TrialOutcome("c", False, goals_achieved=())]  # no goal recorded: not a success
    assert dialogue_success_rate(trials) == pytest.approx(1 / 3)


def test_a_call_is_right_by_tool_and_arguments_or_by_the_same_rows():
    golden = (LOOKUP, FIX_SCORE)
    assert call_is_right(call("update_score", bowler_id="8", match_id=36, raw_score=165.0, note="x"), golden)
    assert not call_is_right(call("update_score", bowler_id=14, match_id=36, raw_score=165), golden)
    assert not call_is_right(call("update_score", executed=False, bowler_id=8, match_id=36, raw_score=165), golden)
    # another tool, the same rows the golden lookup returned: an equivalent outcome
    same_rows = call("find_bowler_by_id", bowler_id=8,
                     result={"last_name": "Viescas", "bowler_id": 8, "first_name": "Stephanie"})
    assert call_is_right(same_rows, golden)
    assert not call_is_right(call("find_bowler_by_id", bowler_id=9, result=[]), golden)


def test_tool_call_accuracy_and_its_turn_profile():
    trial = TrialOutcome("a", True, golden=(LOOKUP, FIX_SCORE), turns=(
        TurnRecord((call("get_bowler", first_name="stephanie", last_name="Viescas"),)),
        TurnRecord(),
        TurnRecord((call("update_score", bowler_id=14, match_id=36, raw_score=165),
                    call("update_score", bowler_id=8, match_id=36, raw_score=165))),
    ))
    assert tool_call_accuracy([trial]) == pytest.approx(2 / 3)
    assert accuracy_by_turn([trial]) == {1: 1.0, 3: 0.5}


STEPHANIE = {"bowler_id": 8, "first_name": "Stephanie", "last_name": "Viescas"}


def test_a_turn_contradicting_a_looked_up_row_is_inconsistent():
    trial = TrialOutcome("a", False, turns=(
        TurnRecord((call("get_bowler", first_name="Stephanie", last_name="Viescas", result=[STEPHANIE]),)),
        # acts on Stephanie with the id DySQL's example model made up
        TurnRecord((call("update_score", writes=True, identifying=("bowler_id", "first_name"), bowler_id=14,
                         first_name="Stephanie", raw_score=165),)),
        TurnRecord((call("get_bowler", bowler_id=20),)),  # another bowler: nothing ties it to Stephanie
        TurnRecord(reply="Done."),  # no action: not judged
    ))
    assert inconsistent_turns(trial) == [2]
    assert state_tracking_consistency([trial]) == pytest.approx(2 / 3)


def test_a_repeated_write_is_inconsistent_and_a_write_replaces_the_known_row():
    update = dict(writes=True, identifying=("bowler_id",), bowler_id=8, raw_score=165)
    trial = TrialOutcome("a", False, turns=(
        TurnRecord((call("get_score", bowler_id=8, result={"bowler_id": 8, "raw_score": 161}),)),
        # sets a new value: not a contradiction, and the returned row replaces the known one
        TurnRecord((call("update_score", result={"bowler_id": 8, "raw_score": 165}, **update),)),
        TurnRecord((call("get_score", bowler_id=8, raw_score=165),)),
        TurnRecord((call("update_score", **update),)),  # the same write again
    ))
    assert inconsistent_turns(trial) == [4]


def test_a_retried_failed_write_is_not_a_repeat():
    trial = TrialOutcome("a", False, turns=(
        TurnRecord((call("delete_score", executed=False, writes=True, bowler_id=8),)),
        TurnRecord((call("delete_score", writes=True, bowler_id=8),)),
    ))
    assert inconsistent_turns(trial) == []


def test_hallucination_is_an_sql_block_followed_by_a_result_the_agent_wrote():
    made_up = "Let me look.\n```sql\nSELECT BowlerID FROM Bowlers\n```\n<result>\nBowlerID\n14\n</result>"
    assert hallucinates(made_up)
    assert not hallucinates("```sql\nSELECT 1\n```\nI will run this now.")
    trials = [TrialOutcome("a", False, turns=(TurnRecord(reply="Hello"), TurnRecord(reply=made_up))),
              TrialOutcome("b", True, turns=(TurnRecord(reply="Your score is 165."),))]
    assert hallucination_rate(trials) == 0.5


def test_failed_sql_counts_per_dialogue():
    failing = TrialOutcome("a", False, turns=(TurnRecord((call("q", executed=False), call("q"))),
                                              TurnRecord((call("q", executed=False),))))
    clean = TrialOutcome("b", True, turns=(TurnRecord((call("q"),)),))
    assert failed_sql_calls(failing) == 2
    assert failed_sql_histogram([failing, clean, clean]) == {0: 2, 2: 1}


def test_transfer_gap_reproduces_the_studys_table_3_arithmetic():
    # in-domain 0.9735 and cross-domain 0.0998 (Tables 1-2, SQL pipeline) give a gap of 0.8737, 89.75% relative
    scores = {("telecom", "telecom"): 0.9735, ("banking", "banking"): 0.9735,
              ("telecom", "retail"): 0.0998, ("banking", "retail"): 0.1498, ("banking", "education"): 0.0498}
    matrix = transfer_matrix(scores)
    assert matrix.sources == ("telecom", "banking")
    assert matrix.targets == ("telecom", "banking", "retail", "education")
    assert matrix.rows()[0] == [0.9735, None, 0.0998, None]
    gap = matrix.gap()
    assert gap.cross_domain == pytest.approx(0.0998)
    assert gap.absolute_gap == pytest.approx(0.8737)
    assert gap.relative_gap == pytest.approx(0.8975, abs=1e-4)
    assert math.isnan(transfer_matrix({("a", "a"): 0.0, ("a", "b"): 0.0}).gap().relative_gap)


def test_scores_by_pair_groups_trials_by_source_and_target():
    trials = [TrialOutcome("t1", True, goals_achieved=(True,), domain="retail", train_source="banking"),
              TrialOutcome("t2", True, goals_achieved=(False,), domain="retail", train_source="banking"),
              TrialOutcome("t3", True, goals_achieved=(True,), domain="banking", train_source="banking")]
    assert scores_by_pair(trials, dialogue_success_rate) == {("banking", "retail"): 0.5, ("banking", "banking"): 1.0}
