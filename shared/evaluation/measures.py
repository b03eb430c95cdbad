"""Measures over trial outcomes: pure functions of hand-made or harness-made `TrialOutcome` records.

A trial is one run of an agent on one task: a dialogue of turns, each with the agent's tool calls and its reply.
The measures and their exact definitions:

- Pass^k (DySQL-Bench, eq. 1, unbiased form): for a task run n times with c successes, the chance that k trials
  drawn without replacement all succeed is C(c, k) / C(n, k); Pass^k is its mean over tasks, for every k up to the
  smallest n. A trial's success is DySQL's: the end-state hash equals the golden one.
- DSR (cross-domain study, §3.4): share of dialogues in which every user goal was achieved (at least one goal).
- TCA: share of tool calls that are right. A call is right when it executed without error and matches a golden
  action of its task: the same tool with every golden argument present and equal (case and 7 / 7.0 aside, as
  shared.env.outcomes compares them; extra arguments are allowed), or an equivalent outcome, i.e. it returned the
  same non-empty rows the golden action returned (row and key order aside).
- Accuracy by turn index: TCA restricted to the calls made in the i-th turn (1-based), over all trials.
- STC: share of acting turns (turns with at least one call) that stay consistent with state established earlier in
  the same dialogue; see `inconsistent_turns` for when a turn is not.
- Hallucination rate (DySQL-Bench §VI-D): share of dialogues in which the agent wrote an SQL code block directly
  followed by `<result>`, i.e. it wrote the execution result itself instead of waiting for the environment's.
- Failed-SQL counts (DySQL-Bench §VI-E, Fig. 8): per dialogue, the number of tool calls that did not execute; the
  histogram counts dialogues per number of failed calls.
- Transfer matrix (cross-domain study, Tables 2-3, Fig. 1): scores per (train source, target domain); in-domain is
  the mean of the cells where source and target are the same domain, cross-domain the mean of the others; the
  absolute gap is in-domain minus cross-domain and the relative gap that difference over in-domain.
"""
from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from statistics import mean
from typing import Any, Callable, Mapping, Sequence

from shared.env.outcomes import arguments_match, canonical


@dataclass(frozen=True)
class GoldenCall:
    """One golden action: the tool, its arguments, and what it returned on the task's start state."""

    tool: str
    arguments: Mapping[str, Any]
    result: Any = None


@dataclass(frozen=True)
class ToolCallRecord:
    """One tool call the agent made.

    `identifying` names the arguments that pick the rows the call acts on (a write's WHERE parameters, not the new
    values it sets); None means all of its arguments, which is right for reads and deletes."""

    tool: str
    arguments: Mapping[str, Any]
    executed: bool
    result: Any = None  # the returned rows (a record or a list of records) when it executed
    writes: bool = False
    identifying: tuple[str, ...] | None = None


@dataclass(frozen=True)
class TurnRecord:
    """One agent turn: the calls it made, in order, and the text it replied with."""

    calls: tuple[ToolCallRecord, ...] = ()
    reply: str = ""


@dataclass(frozen=True)
class TrialOutcome:
    task_id: str
    success: bool  # the end state equals the golden end state
    goals_achieved: tuple[bool, ...] = ()  # one entry per user goal of the dialogue
    turns: tuple[TurnRecord, ...] = ()
    golden: tuple[GoldenCall, ...] = ()
    domain: str = ""  # the domain the trial ran in (the target domain)
    train_source: str = ""  # the domain (or data source) the agent was trained on


# --- Pass^k ----------------------------------------------------------------------------------------


def pass_hat_k(trials: Sequence[TrialOutcome]) -> dict[int, float]:
    """{k: Pass^k} for k = 1 .. the fewest trials any task has."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # task -> [trials, successes]
    for trial in trials:
        counts[trial.task_id][0] += 1
        counts[trial.task_id][1] += trial.success
    if not counts:
        raise ValueError("Pass^k needs at least one trial")
    most_k = min(n for n, _ in counts.values())
    return {k: mean(math.comb(c, k) / math.comb(n, k) for n, c in counts.values()) for k in range(1, most_k + 1)}


# --- DSR, TCA, accuracy by turn ------------------------------------------------------------------------


def dialogue_success_rate(trials: Sequence[TrialOutcome]) -> float:
    if not trials:
        raise ValueError("DSR needs at least one trial")
    return mean(bool(t.goals_achieved) and all(t.goals_achieved) for t in trials)


def _has_rows(result: Any) -> bool:
    return result not in (None, [], {})


def call_is_right(call: ToolCallRecord, golden: Sequence[GoldenCall]) -> bool:
    """Executed, and the same tool and arguments as a golden action, or the same rows one returned."""
    if not call.executed:
        return False
    for action in golden:
        if action.tool == call.tool and arguments_match(dict(action.arguments), dict(call.arguments)):
            return True
        if _has_rows(action.result) and _has_rows(call.result) and canonical(action.result) == canonical(call.result):
            return True
    return False


def tool_call_accuracy(trials: Sequence[TrialOutcome]) -> float:
    judged = [call_is_right(c, t.golden) for t in trials for turn in t.turns for c in turn.calls]
    if not judged:
        raise ValueError("TCA needs at least one tool call")
    return mean(judged)


def accuracy_by_turn(trials: Sequence[TrialOutcome]) -> dict[int, float]:
    """{turn index (1-based): share of right calls among the calls made in that turn}; turns without calls are
    left out."""
    judged: dict[int, list[bool]] = defaultdict(list)
    for trial in trials:
        for index, turn in enumerate(trial.turns, start=1):
            judged[index] += [call_is_right(c, trial.golden) for c in turn.calls]
    return {index: mean(calls) for index, calls in sorted(judged.items()) if calls}


# --- STC -----------------------------------------------------------------------------------------------


def _same_value(a: Any, b: Any) -> bool:
    return arguments_match({"v": a}, {"v": b})


def _single_row(result: Any) -> dict | None:
    """The row a result established, when it returned exactly one."""
    if isinstance(result, dict) and result and result.get("found") is not False:
        return result
    if isinstance(result, list) and len(result) == 1 and isinstance(result[0], dict):
        return result[0]
    return None


def _contradicts(values: Mapping[str, Any], row: Mapping[str, Any]) -> bool:
    """`values` name the entity `row` describes (equal on some shared field) yet differ from it on another."""
    shared = [k for k in values if k in row]
    agreeing = [_same_value(values[k], row[k]) for k in shared]
    return any(agreeing) and not all(agreeing)


def _identifying_values(call: ToolCallRecord) -> dict[str, Any]:
    names = call.arguments.keys() if call.identifying is None else call.identifying
    return {k: call.arguments[k] for k in names if k in call.arguments}


def _same_call(a: ToolCallRecord, b: ToolCallRecord) -> bool:
    return (a.tool == b.tool and a.arguments.keys() == b.arguments.keys()
            and arguments_match(dict(a.arguments), dict(b.arguments)))


def inconsistent_turns(trial: TrialOutcome) -> list[int]:
    """Turn indices (1-based) whose actions break state established earlier in the dialogue.

    State is established by every executed call that returned exactly one row: that row is what is known of one
    entity (a later row of the same entity, e.g. a write's returned row, replaces it). A call breaks it when its
    identifying arguments match a known row on one field and contradict it on another (the user's id was looked
    up as 8, and the call acts on the same user with id 14), or when it is an executed write that repeats, tool
    and arguments alike, a write already done. Calls are taken in order, so a call's state includes the results
    of the calls before it in the same turn. A wrong value with nothing else tying it to a known row reads as
    acting on another entity and is not counted."""
    known: list[dict] = []
    writes_done: list[ToolCallRecord] = []
    broken = []
    for index, turn in enumerate(trial.turns, start=1):
        inconsistent = False
        for call in turn.calls:
            values = _identifying_values(call)
            if any(_contradicts(values, row) for row in known):
                inconsistent = True
            if call.writes and call.executed:
                inconsistent |= any(_same_call(call, done) for done in writes_done)
                writes_done.append(call)
            row = _single_row(call.result) if call.executed else None
            if row is not None:
                known = [r for r in known if not _contradicts(row, r)] + [row]
        if inconsistent:
            broken.append(index)
    return broken


def state_tracking_consistency(trials: Sequence[TrialOutcome]) -> float:
    """Consistent acting turns over acting turns, over all trials."""
    acting = sum(1 for t in trials for turn in t.turns if turn.calls)
    if not acting:
        raise ValueError("STC needs at least one turn with a tool call")
    return 1 - sum(len(inconsistent_turns(t)) for t in trials) / acting


# --- DySQL's hallucination and failed SQL ------------------------------------------------------------------

# An SQL code block the agent closed and then followed with the result marker: it wrote the result itself.
SQL_BLOCK_THEN_RESULT = re.compile(r"```sql[^`]*```\s*<result>", re.IGNORECASE)


def hallucinates(reply: str) -> bool:
    return bool(SQL_BLOCK_THEN_RESULT.search(reply or ""))


def hallucination_rate(trials: Sequence[TrialOutcome]) -> float:
    if not trials:
        raise ValueError("the hallucination rate needs at least one trial")
    return mean(any(hallucinates(turn.reply) for turn in t.turns) for t in trials)


def failed_sql_calls(trial: TrialOutcome) -> int:
    return sum(not c.executed for turn in trial.turns for c in turn.calls)


def failed_sql_histogram(trials: Sequence[TrialOutcome]) -> dict[int, int]:
    """{number of failed calls in a dialogue: dialogues with that many}."""
    return dict(sorted(Counter(failed_sql_calls(t) for t in trials).items()))


# --- transfer -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TransferGap:
    in_domain: float
    cross_domain: float
    absolute_gap: float
    relative_gap: float  # absolute gap over in-domain; NaN when in-domain is 0


@dataclass(frozen=True)
class TransferMatrix:
    sources: tuple[str, ...]
    targets: tuple[str, ...]
    cells: Mapping[tuple[str, str], float]  # (train source, target domain) -> score

    def rows(self) -> list[list[float | None]]:
        """One row per source, one column per target; None where that pair was not measured."""
        return [[self.cells.get((s, t)) for t in self.targets] for s in self.sources]

    def gap(self) -> TransferGap:
        inside = [v for (s, t), v in self.cells.items() if s == t]
        across = [v for (s, t), v in self.cells.items() if s != t]
        if not inside or not across:
            raise ValueError("the gap needs in-domain (source = target) and cross-domain cells")
        in_domain, cross_domain = mean(inside), mean(across)
        absolute = in_domain - cross_domain
        return TransferGap(in_domain, cross_domain, absolute, absolute / in_domain if in_domain else math.nan)


def transfer_matrix(scores: Mapping[tuple[str, str], float]) -> TransferMatrix:
    sources = tuple(dict.fromkeys(s for s, _ in scores))
    targets = tuple(dict.fromkeys(t for _, t in scores))
    return TransferMatrix(sources, targets, dict(scores))


def scores_by_pair(trials: Sequence[TrialOutcome],
                   measure: Callable[[Sequence[TrialOutcome]], float]) -> dict[tuple[str, str], float]:
    """A measure (e.g. dialogue_success_rate) of the trials of each (train source, target domain) pair."""
    groups: dict[tuple[str, str], list[TrialOutcome]] = defaultdict(list)
    for trial in trials:
        groups[(trial.train_source, trial.domain)].append(trial)
    return {pair: measure(group) for pair, group in groups.items()}
