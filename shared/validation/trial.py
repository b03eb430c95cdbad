"""The verdict on an evaluation trial: DySQL-Bench's success, the end state equal to the golden one, and, for
reads, the values the user asked for told in a reply. Nothing else: how the agent got there is measured, not
judged (shared.evaluation.trials), and no judge model is asked."""
from __future__ import annotations

from shared.contracts import CheckResult, TrajectoryState
from shared.env import outcomes
from shared.validation.checks import DETAIL_LIMIT, check_state_hash


def check_values_told(state: TrajectoryState) -> CheckResult:
    problems = [f"{s.description}: never told {', '.join(map(str, untold))}"
                for t in state.tasks for s in t.subtasks if (untold := outcomes.untold_values(state, s))]
    return CheckResult(name="read_values_told", passed=not problems, detail="; ".join(problems)[:DETAIL_LIMIT])


def trial_checks(state: TrajectoryState, final_hash: str) -> list[CheckResult]:
    return [check_state_hash(state, final_hash), check_values_told(state)]
