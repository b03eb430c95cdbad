"""The one owner of sandbox drops: a sandbox lives until its trajectory ends, a scratch copy until its golden state
is known.

Drops are idempotent, so each is safe to repeat: after a verdict, after a dead letter, for a failed seed's scratch
copies, and on a sweep for sandboxes a late duplicate re-created after its trajectory ended.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from shared.contracts import DeadLetter
from shared.env.sandbox import SandboxManager, scratch_owner
from shared.env.trajectory import trajectory_id_prefix
from shared.lifecycle.registry import TrajectoryRegistry

log = logging.getLogger("turnforge.janitor")


class SandboxJanitor:
    def __init__(self, sandboxes: SandboxManager, registry: TrajectoryRegistry):
        self.sandboxes = sandboxes
        self.registry = registry

    @contextmanager
    def scratch(self, trajectory_id: str) -> Iterator[str]:
        """The owner name of a trajectory's scratch copy, dropped however the work in it ends. A process killed
        inside leaves the copy behind: its seed's dead letter, or the sweep once the trajectory ends, drops it."""
        owner = scratch_owner(trajectory_id)
        try:
            yield owner
        finally:
            self.sandboxes.drop(owner)

    def after_verdict(self, trajectory_id: str) -> None:
        self.sandboxes.drop(trajectory_id)

    def after_dead_letter(self, letter: DeadLetter) -> None:
        if not letter.trajectory_id:
            # A seed that failed as a whole may have died between creating a scratch copy and dropping it; no
            # trajectory of it will ever end, so the sweep would never find that copy.
            if letter.seed_id:
                for owner in self.sandboxes.owners_starting_with(scratch_owner(trajectory_id_prefix(letter.seed_id))):
                    log.info("drops scratch sandbox %s of failed seed %s", owner, letter.seed_id)
                    self.sandboxes.drop(owner)
            return
        self.registry.mark_dead_lettered(letter.trajectory_id)
        try:
            self.sandboxes.drop(letter.trajectory_id)
        except Exception as e:  # noqa: BLE001 - dead-lettering a dead letter would loop; log and move on
            log.warning("could not drop the sandbox of dead-lettered %s: %s", letter.trajectory_id, e)

    def sweep(self) -> None:
        """Drop the sandboxes of trajectories that ended a while ago (a late duplicate may have re-created one)."""
        self.sandboxes.ensure_registry()
        for owner in self.registry.resolved_with_sandbox():
            log.info("drops the sandbox left behind by %s", owner)
            self.sandboxes.drop(owner)
