"""Tool preparation for a domain database: propose (templates and/or a model), verify, de-duplicate, select.

Used by the tool-synth service and by `turnforge tools`, so both produce the same toolset for the same input.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from shared.toolgen.llm_sql import MAX_CALLS, ProposalFailure, propose_sql_tools
from shared.toolgen.toolset import MAX_TOOLS, select_tools
from shared.toolgen.templates import MAX_NAME_LENGTH, ToolCandidate, synthesize_template_tools
from shared.toolgen.verify import Verification, verify_tools
from shared.env.dbschema import DatabaseSchema
from shared.env.sql_guard import UnsafeSQL, check_statement

SYNTHESIZERS = ("template", "llm", "both")


@dataclass
class DatabaseTools:
    synthesizer: str
    verifications: list[Verification]  # every candidate, with its verdict (duplicates marked rejected)
    kept: list[Verification]  # the selected toolset
    proposal_failures: list[ProposalFailure] = field(default_factory=list)
    llm_calls: int = 0


def prepare_database_tools(conn, schema_name: str, db_schema: DatabaseSchema, *, synthesizer: str = "both",
                           llm=None, rng: random.Random | None = None, llm_calls: int = MAX_CALLS,
                           max_tools: int = MAX_TOOLS) -> DatabaseTools:
    if synthesizer not in SYNTHESIZERS:
        raise ValueError(f"synthesizer must be one of {', '.join(SYNTHESIZERS)}, not {synthesizer!r}")
    rng = rng or random.Random(0)
    candidates: list[ToolCandidate] = []
    failures: list[ProposalFailure] = []
    calls = 0
    if synthesizer in ("llm", "both"):
        if llm is None:
            raise ValueError(f"synthesizer {synthesizer!r} needs a model client")
        proposed, failures, calls = propose_sql_tools(llm, conn, schema_name, db_schema, max_calls=llm_calls)
        candidates += proposed
    if synthesizer in ("template", "both"):
        candidates += synthesize_template_tools(db_schema)
    _unique_names(candidates)
    verifications = verify_tools(conn, schema_name, db_schema, candidates, rng)
    _reject_duplicates(verifications, db_schema)
    kept = select_tools([v for v in verifications if v.ok], max_tools)
    return DatabaseTools(synthesizer, verifications, kept, failures, calls)


def _unique_names(candidates: list[ToolCandidate]) -> None:
    seen: set[str] = set()
    for c in candidates:
        name, n = c.name, 2
        while name in seen:
            suffix = f"_{n}"
            name, n = c.name[: MAX_NAME_LENGTH - len(suffix)] + suffix, n + 1
        c.name = name
        seen.add(name)


def _reject_duplicates(verifications: list[Verification], db_schema: DatabaseSchema) -> None:
    """Two verified tools with the same statement (up to parameter names and layout) are one tool: keep the first."""
    first_of: dict[str, str] = {}
    for v in verifications:
        if not v.ok:
            continue
        try:
            shape = check_statement(v.candidate.sql, db_schema.table_names).shape
        except UnsafeSQL:
            continue
        shape = _without_parameter_names(shape)
        if shape in first_of:
            v.ok = False
            v.reason = f"duplicate of {first_of[shape]}"
        else:
            first_of[shape] = v.candidate.name


def _without_parameter_names(shape: str) -> str:
    return re.sub(r":[A-Za-z_][A-Za-z0-9_]*", ":p", " ".join(shape.lower().split()))
