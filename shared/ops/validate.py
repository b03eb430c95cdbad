"""`turnforge validate`: re-validate dataset records offline with the validator's own code (shared/validation).

Each record is read back into its trajectory, replayed in a fresh sandbox of its domain database (start state, then
every recorded call; recorded results must equal the replayed ones), and given the validator's deterministic
checks against the replay's final state; with a judge, the configured judge model judges its rubric as well.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.env.sandbox import SandboxManager, UnknownDomain
from shared.env.trajectory import executes_sql
from shared.ops import stack
from shared.run.dataset import trajectory_from_record
from shared.run.stats import load_records
from shared.runtime.config import Settings
from shared.runtime.llm import LLMClient
from shared.validation.acceptance import verdict_for
from shared.validation.checks import deterministic_checks
from shared.validation.judge import JudgeCall, model_judge
from shared.validation.replay import REPLAY_CHECK, replay_trajectory


@dataclass
class RecordResult:
    id: str
    accepted: bool
    reasons: list[str] = field(default_factory=list)


def validate_dataset(settings: Settings, path: str | Path, *, judge: bool = False) -> list[RecordResult]:
    """One result per record of `path`, in file order. Uses the configured PostgreSQL (the embedded one is started
    for the command when it is the local default and not running) and, with `judge`, the configured judge model."""
    records = load_records([path])
    with contextlib.ExitStack() as resources:
        resources.enter_context(stack.postgres_available(settings))
        judge_call = None
        if judge:
            resources.enter_context(stack.model_available(settings))
            client = LLMClient(settings.llm, "judge")  # the configured model, not the one the record names
            resources.callback(client.close)
            judge_call = model_judge(lambda _state: client)
        manager = SandboxManager(settings.postgres.dsn)
        resources.callback(manager.close)
        return [validate_record(manager, record, judge_call, timeout_ms=settings.postgres.statement_timeout_ms)
                for record in records]


def validate_record(manager: SandboxManager, record: dict[str, Any], judge: JudgeCall | None, *,
                    timeout_ms: int) -> RecordResult:
    record_id = str(record.get("id", "<no id>"))
    try:
        state = trajectory_from_record(record)
    except (KeyError, TypeError, ValueError) as e:
        return RecordResult(record_id, False, [f"unreadable record: missing or malformed {e}"])
    final_hash, checks = "", []
    if executes_sql(state):
        try:
            replay = replay_trajectory(manager, state, timeout_ms=timeout_ms)
        except UnknownDomain as e:
            return RecordResult(record_id, False, [f"{REPLAY_CHECK}: {e}"])
        final_hash, checks = replay.final_state_hash, [replay.check]
    verdict = verdict_for(state, checks + deterministic_checks(state, final_hash), final_hash, judge)
    return RecordResult(record_id, verdict.accepted, list(verdict.reasons))
