"""Figures on a prepared toolset: what was proposed, verified and rejected (and why), its CRUD mix, joins, aggregates."""
from __future__ import annotations

import re
from collections import Counter


def reason_category(reason: str) -> str:
    """'execution error: relation "x" does not exist' -> 'execution error'; 'duplicate of get_x' -> 'duplicate'."""
    if reason.startswith("duplicate of"):
        return "duplicate"
    if reason.startswith("declared kind"):
        return "kind mismatch"
    if reason.startswith(("no usable description", "unbounded read")):
        return reason.split(":", 1)[0]
    if reason.startswith("value written into the SQL"):
        return "value written into the SQL"
    if ":" in reason:
        head = reason.split(":", 1)[0]
        if head == "unsafe SQL":  # the guard's reason says which rule: keep its first words
            rule = reason[len(head) + 1:].strip()
            return "unsafe SQL: " + re.split(r":\s|\(|, not |, found ", rule)[0].strip()
        return head
    return reason


def database_measures(prepared) -> dict:
    """prepared: services.tool_synth.preparation.DatabaseTools."""
    by_source_proposed = Counter(v.candidate.source for v in prepared.verifications)
    by_source_verified = Counter(v.candidate.source for v in prepared.verifications if v.ok)
    rejected = [v for v in prepared.verifications if not v.ok]
    kept = prepared.kept
    n = len(kept) or 1
    crud = Counter(v.candidate.kind for v in kept)
    return {
        "synthesizer": prepared.synthesizer,
        "proposed": len(prepared.verifications),
        "proposed_by_source": dict(by_source_proposed),
        "verified": sum(by_source_verified.values()),
        "verified_by_source": dict(by_source_verified),
        "rejected": len(rejected),
        "rejected_by_reason": dict(Counter(reason_category(v.reason) for v in rejected).most_common()),
        "rejected_by_source": dict(Counter(v.candidate.source for v in rejected)),
        "kept": len(kept),
        "kept_by_source": dict(Counter(v.candidate.source for v in kept)),
        "crud_mix": {k: crud.get(k, 0) for k in ("read", "insert", "update", "delete")},
        "share_with_join": round(sum(v.has_join for v in kept) / n, 3),
        "share_with_aggregate": round(sum(v.has_aggregate for v in kept) / n, 3),
        "join_or_aggregate_reads": sum(1 for v in kept if v.candidate.kind == "read" and (v.has_join or v.has_aggregate)),
        "llm_calls": prepared.llm_calls,
        "llm_calls_failed": len(prepared.proposal_failures),
    }
