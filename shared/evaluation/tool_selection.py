"""Alignment-aware tool selection (seed 003): among a database's verified candidate tools, keep the toolset whose
SQL is structurally closest to a target workload, measured with the KL-alignment of shared/evaluation/alignment.py.

The default selection (shared/toolgen/toolset.select_tools) aims at variety: every kind of tool, spread over
tables. When the data is meant to train a model for a known workload (DySQL-Bench's golden SQL, a product's query
log), variety that the target never uses pulls the training distribution P away from the target Q. This module
picks instead:

1. Candidates: every verified tool (schema templates and, when configured, the model's verified proposals), the
   default selection first, so that among equally good tools the one the default would keep wins.
2. Coverage floor: every table with a verified read tool keeps at least one read tool; among a table's reads the
   one that aligns best is taken. Why: task-generator grounds tasks in entity trees over the tables, and an agent
   looks a record up before it changes it; a toolset fitted to a narrow target (say, a workload of counts over one
   table) would otherwise drop whole tables and the data would never mention them. One read per table costs little
   alignment and keeps the dataset about the whole database.
3. Greedy forward selection: while fewer than `limit` tools are kept, add the candidate that raises the
   KL-alignment of the kept tools' n-grams the most; stop when none raises it. Each tool counts once, as
   `turnforge align --db` counts a toolset.
4. Never worse than the default: the floor can force in tools the target does not like, and greedy search is not
   exhaustive, so if the result aligns less than the default selection does, the default is kept (`fell_back`).

Everything is deterministic: candidates are scored in a fixed order and ties go to the earlier one.

Scoring every candidate at every step with alignment.align would cost O(|target n-grams|) per try (tens of
thousands for a few hundred statements); _Scorer computes the very same KL-alignment in O(|training n-grams|) by
summing the target-only terms once (tests/test_tool_selection.py checks it against align).
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from shared.contracts import ToolsetAlignment
from shared.evaluation.alignment import SMOOTHING, Alignment, align, workload

TOOL_DIALECT = "postgres"  # the SQL TurnForge's tools run
MIN_GAIN = 1e-12  # a "gain" below this is rounding, not a better toolset


@dataclass
class TargetSelection:
    tools: list  # the kept verifications, in the order they were chosen
    default: list  # the default varied selection it is compared with
    before: Alignment  # the default selection against the target
    after: Alignment  # the kept tools against the target
    floor_tables: list[str] = field(default_factory=list)  # tables whose one read tool the floor put in
    fell_back: bool = False  # the search aligned less than the default, so the default is kept

    @property
    def added(self) -> list[str]:
        default = {id(v) for v in self.default}
        return [v.candidate.name for v in self.tools if id(v) not in default]

    @property
    def dropped(self) -> list[str]:
        kept = {id(v) for v in self.tools}
        return [v.candidate.name for v in self.default if id(v) not in kept]


def tool_ngrams(verification) -> Counter:
    """The structural n-grams of one tool's statement (empty if sqlglot cannot parse it)."""
    return workload([verification.candidate.sql], TOOL_DIALECT).counts


def select_for_target(verified: list, default: list, target: Counter, *, limit: int,
                      alpha: float = SMOOTHING) -> TargetSelection:
    """The toolset among `verified` that aligns best with the target's n-gram counts (see the module's steps).

    `verified` are the verified candidates (toolgen Verification objects), `default` the default selection made
    from them; the result never aligns less than `default`."""
    if not target:
        raise ValueError("the target workload has no n-grams: no statement could be parsed")
    default_counts = _sum_counts(tool_ngrams(v) for v in default)
    if not default_counts:
        raise ValueError("the default toolset has no parsable SQL to align")
    before = align(default_counts, target, alpha=alpha)

    in_default = {id(v) for v in default}
    pool = list(default) + [v for v in verified if id(v) not in in_default]
    grams = {id(v): tool_ngrams(v) for v in pool}
    pool = [v for v in pool if grams[id(v)]]  # a statement with no structure to score cannot raise alignment
    scorer = _Scorer(target, alpha)

    chosen: list = []
    taken: set[int] = set()  # ids of the chosen (two candidates may compare equal as dataclasses)
    counts: Counter = Counter()

    def take(pick) -> None:
        nonlocal counts
        chosen.append(pick)
        taken.add(id(pick))
        counts += grams[id(pick)]

    def best(candidates: list) -> tuple[float, object | None]:
        # max() keeps the first of equal scores: candidates are in pool order, so ties go to the default's picks.
        scored = ((scorer.kl_alignment(counts + grams[id(v)]), v) for v in candidates)
        return max(scored, key=lambda pair: pair[0], default=(-math.inf, None))

    # Step 2, the floor: one read tool for each table that has one, the best aligned first.
    floor_tables: list[str] = []
    uncovered = {v.table for v in pool if _is_read(v) and v.table}
    while uncovered and len(chosen) < limit:
        _, pick = best([v for v in pool if _is_read(v) and v.table in uncovered and id(v) not in taken])
        take(pick)
        uncovered.discard(pick.table)
        floor_tables.append(pick.table)

    # Step 3: add whatever raises alignment most, while something does.
    current = scorer.kl_alignment(counts) if counts else -math.inf
    while len(chosen) < limit:
        score, pick = best([v for v in pool if id(v) not in taken])
        if pick is None or score <= current + MIN_GAIN:
            break
        take(pick)
        current = score

    after = align(counts, target, alpha=alpha) if counts else before
    if not counts or after.kl_alignment < before.kl_alignment:
        return TargetSelection(list(default), list(default), before, before, floor_tables, fell_back=True)
    return TargetSelection(chosen, list(default), before, after, floor_tables)


def alignment_record(selection: TargetSelection, source: str, statements: int) -> ToolsetAlignment:
    """What the toolset carries about its selection, for reports downstream."""
    return ToolsetAlignment(
        target_source=source, target_statements=statements,
        kl_alignment_before=selection.before.kl_alignment, overlap_ratio_before=selection.before.overlap_ratio,
        kl_alignment_after=selection.after.kl_alignment, overlap_ratio_after=selection.after.overlap_ratio,
        tools_before=len(selection.default), tools_after=len(selection.tools))


def _is_read(verification) -> bool:
    return verification.candidate.kind == "read"


def _sum_counts(counters) -> Counter:
    total: Counter = Counter()
    for c in counters:
        total += c
    return total


class _Scorer:
    """alignment.align's KL-alignment of a training workload against one fixed target, in O(|training n-grams|).

    With V = T ∪ S (target and training n-grams), Z_P = N_P + α|V|, Z_Q = N_Q + α|V|:
      D_KL = (1/Z_P) Σ_V (n_x+α)(log(n_x+α) − log(q_x+α)) + log Z_Q − log Z_P
      c    = (1/Z_P) Σ_V (n_x+α) log(n_x+α) − log Z_P − log α + log Z_Q      (the divergence ceiling)
    Over V \\ S every n_x is 0, so those terms need only |T \\ S| and the sum of log(q_x+α) over it, which is the
    target-wide sum less the part over T ∩ S; everything else is a sum over the training n-grams."""

    def __init__(self, target: Counter, alpha: float):
        self.alpha = alpha
        self.log_q = {g: math.log(q + alpha) for g, q in target.items()}
        self.log_q_total = sum(self.log_q.values())
        self.n_q = sum(target.values())
        self.log_alpha = math.log(alpha)

    def kl_alignment(self, training: Counter) -> float:
        a, log_a = self.alpha, self.log_alpha
        n_p = cross = own = shared_log_q = 0.0
        outside = shared = 0  # training n-grams absent from the target, and present in it
        for gram, n in training.items():
            log_n = math.log(n + a)
            log_q = self.log_q.get(gram)
            if log_q is None:
                log_q, outside = log_a, outside + 1
            else:
                shared_log_q, shared = shared_log_q + log_q, shared + 1
            n_p += n
            cross += (n + a) * (log_n - log_q)
            own += (n + a) * log_n
        target_only = len(self.log_q) - shared
        cross += a * (target_only * log_a - (self.log_q_total - shared_log_q))
        own += target_only * a * log_a
        size = len(self.log_q) + outside
        z_p, z_q = n_p + a * size, self.n_q + a * size
        divergence = cross / z_p + math.log(z_q) - math.log(z_p)
        ceiling = own / z_p - math.log(z_p) - log_a + math.log(z_q)
        return math.exp(-divergence / ceiling)
