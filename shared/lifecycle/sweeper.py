"""The pipeline-wide deadline: a trajectory that stopped moving is dead-lettered as stuck, exactly once.

The registry's first-claim-wins outcome makes the sweep safe to run from several processes and against a verdict
racing it; the letter is marked sent only once the broker has it, so a crash in between sends it again.
"""
from __future__ import annotations

import logging
import time

from shared.lifecycle.registry import TrajectoryRegistry
from shared.runtime.bus import Outgoing, dead_letter
from shared.runtime.toolsets import REFRESH_S, ToolsetStore

log = logging.getLogger("turnforge.sweeper")

SWEEP_SOURCE = "deadline-sweep"  # a dead letter's source_topic when no message failed, the deadline did
# Ledger rows of an ended trajectory are kept this long past its deadline: a redelivery read before the deadline
# may still be on its way to a handler, and must find them.
LEDGER_KEPT_AFTER_DEADLINE_S = 600.0


class DeadlineSweeper:
    def __init__(self, registry: TrajectoryRegistry, toolsets: ToolsetStore, service: str, plan_max_age_s: float):
        self.registry = registry
        self.service = service  # who sends the letters
        self.plan_max_age_s = plan_max_age_s
        self.toolsets = toolsets

    def sweep(self) -> list[Outgoing]:
        """Dead letters for trajectories past their deadline, naming the last step any service finished; plans and
        seed toolsets no planning will need any more, ledger rows no redelivery will need, and trajectory toolsets
        no event refers to any more, are forgotten."""
        now = time.time()
        letters = []
        for t in self.registry.claim_overdue(now):
            where = (f"{t.last_service} finished step {t.last_step} ({t.last_topic}) last" if t.last_service
                     else "no service finished a step of it")
            reason = f"deadline passed {now - t.deadline:.0f}s ago: trajectory stuck; {where}"
            log.warning("dead-letters stuck trajectory %s: %s", t.trajectory_id, reason)
            letters.append(dead_letter(service=self.service, source_topic=SWEEP_SOURCE, key=t.trajectory_id.encode(),
                                       error_type="DeadlineExceeded", reason=reason, seed_id=t.seed_id,
                                       trajectory_id=t.trajectory_id))
        self.registry.forget_planned(max_age_s=self.plan_max_age_s)
        self.registry.forget_seed_toolsets(max_age_s=self.plan_max_age_s)
        self.registry.forget_processed(deadline_before=now - LEDGER_KEPT_AFTER_DEADLINE_S)
        self.toolsets.forget(older_than_s=self.plan_max_age_s + REFRESH_S + LEDGER_KEPT_AFTER_DEADLINE_S)
        return letters

    def letters_out(self, letters: list[Outgoing]) -> None:
        """The broker has the letters: a later sweep must not send them again."""
        self.registry.letters_sent([o.key for o in letters])
