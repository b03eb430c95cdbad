"""Tool preparation as `turnforge import-db` and `turnforge tools` run it: import a database, build and measure
a toolset from a database or from seed tools.
"""
from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

from shared.data.import_db import domain_name_for, import_database, is_postgres_dsn
from shared.data.synthetic_rows import DEFAULT_ROWS_PER_TABLE
from shared.data.seed_tools import load_seed_responses, load_seed_tools
from shared.evaluation.tool_selection import select_for_target
from shared.env.sandbox import SandboxManager, UnknownDomain, domain_schema_name
from shared.env.sql_guard import check_statement
from shared.env.tool_spec import tool_parameters
from shared.ops import stack
from shared.runtime.config import Settings
from shared.runtime.llm import LLMClient
from shared.toolgen.measures import database_measures
from shared.toolgen.output_prediction import PredictionLog, agreement_with_truth, predict_output_schemas
from shared.toolgen.preparation import prepare_database_tools
from shared.toolgen.toolset import MAX_TOOLS
from shared.toolgen.seed_expansion import Expansion, expand_seed_tools, purpose_key
from shared.toolgen.type_repair import enforce_type_consistency, name_clashes, sql_field_entity


def import_db(settings: Settings, source: str, name: str, *, pg_schema: str = "public", dialect: str = "sqlite",
              synthetic_rows: int = DEFAULT_ROWS_PER_TABLE, seed: int = 0, license: str = ""):
    with stack.postgres_available(settings):
        return import_database(settings.postgres.dsn, source, name, pg_schema=pg_schema, replace=True,
                               dialect=dialect, synthetic_rows=synthetic_rows, seed=seed, license=license)


def _domain_for_db(settings: Settings, db: str, name: str | None, pg_schema: str) -> tuple[str, dict | None]:
    """A registered domain name is used as it is; a SQLite or DDL file or a DSN is imported first."""

    if is_postgres_dsn(db) or Path(db).is_file():
        domain = name or domain_name_for(db)
        report = import_database(settings.postgres.dsn, db, domain, pg_schema=pg_schema)
        return domain, {"tables": report.tables, "rows": report.rows, "foreign_keys": report.foreign_keys,
                        "synthetic_rows": report.synthetic_rows, "notes": report.notes}
    return db, None


def database_toolset(settings: Settings, db: str, *, synthesizer: str, name: str | None = None,
                     pg_schema: str = "public", llm_calls: int = 3, seed: int = 0,
                     align_to: Counter | None = None) -> dict:
    """The toolset and its measures for one database, as `turnforge tools --db` prints them.

    With `align_to` (a target workload's n-gram counts) the tools are selected for that target, as tool-synth does
    for a seed with settings.align_to, and the result has a `selection` entry with the default's figures."""

    domain, imported = _domain_for_db(settings, db, name, pg_schema)
    manager = SandboxManager(settings.postgres.dsn)
    try:
        db_schema = manager.domain_schema(domain)
    except UnknownDomain as e:
        raise ValueError(f"{e}; or give a SQLite file or a postgresql:// DSN") from None
    llm = LLMClient(settings.llm, "tool_synth") if synthesizer != "template" else None
    prepared = prepare_database_tools(manager.connection(), domain_schema_name(domain), db_schema,
                                      synthesizer=synthesizer, llm=llm, rng=random.Random(seed), llm_calls=llm_calls)
    selection = None
    if align_to is not None:
        selection = select_for_target([v for v in prepared.verifications if v.ok], prepared.kept, align_to,
                                      limit=MAX_TOOLS)
        prepared.kept = selection.tools  # the measures below describe the toolset kept
    tools = []
    for v in prepared.kept:
        c = v.candidate
        guarded = check_statement(c.sql, db_schema.table_names)
        tools.append({"name": c.name, "description": c.description, "parameters": c.parameters,
                      "output_schema": v.output_schema, "sql": c.sql, "kind": c.kind, "source": c.source,
                      "has_join": guarded.has_join, "has_aggregate": guarded.has_aggregate,
                      "sample_arguments": v.sample_arguments})
    columns_of = {v.candidate.name: ({p: f"{t}.{c}" for p, (t, c) in v.candidate.param_columns.items()},
                                     {r: f"{t}.{c}" for r, (t, c) in v.result_origins.items()}) for v in prepared.kept}
    triples = [(t["name"], t["parameters"], t["output_schema"]) for t in tools]
    repaired, conflicts = enforce_type_consistency(triples, sql_field_entity(columns_of))
    for tool, (_, params, output) in zip(tools, repaired):
        tool["parameters"], tool["output_schema"] = params, output
    measures = database_measures(prepared)
    measures["type_conflicts_repaired"] = [c.describe() for c in conflicts]
    measures["field_names_shared_by_different_columns"] = name_clashes(triples)
    return {
        "domain": domain,
        "imported": imported,
        "tools": tools,
        "rejected": [{"name": v.candidate.name, "source": v.candidate.source, "reason": v.reason}
                     for v in prepared.verifications if not v.ok],
        "failed_model_calls": [{"call": f.label, "reason": f.reason} for f in prepared.proposal_failures],
        "measures": measures,
        **({"selection": _selection_summary(selection)} if selection is not None else {}),
    }


def _selection_summary(selection) -> dict:
    return {
        "before": {"kl_alignment": selection.before.kl_alignment, "overlap_ratio": selection.before.overlap_ratio,
                   "tools": [v.candidate.name for v in selection.default]},
        "after": {"kl_alignment": selection.after.kl_alignment, "overlap_ratio": selection.after.overlap_ratio,
                  "tools": [v.candidate.name for v in selection.tools]},
        "added": selection.added, "dropped": selection.dropped,
        "floor_tables": selection.floor_tables, "fell_back": selection.fell_back,
    }


def seed_toolset(settings: Settings, path: str, *, field: str = "", limit: int = 0, synthesizer: str = "both",
                 questions: int = 20, expand_questions: int = 0, seed: int = 0) -> dict:
    seeds = load_seed_tools(path, field=field, limit=limit)
    if not seeds:
        raise ValueError(f"no seed tools in {path}" + (f" with field {field!r}" if field else ""))
    domain = (field or Path(path).stem).split("/")[0]
    if synthesizer == "template":  # nothing to synthesise without a model: the seed tools as given
        expansion = Expansion(tools=list(seeds))
    else:
        expansion = expand_seed_tools(LLMClient(settings.llm, "tool_synth"), domain, seeds,
                                      questions=questions, expand_questions=expand_questions)
    log = PredictionLog()
    schemas = predict_output_schemas(LLMClient(settings.llm, "schema_predictor"), domain, expansion.tools, log)
    triples = [(t.name, tool_parameters(t), s) for t, s in zip(expansion.tools, schemas)]
    repaired, conflicts = enforce_type_consistency(triples)
    seed_names = {t.name for t in seeds}
    tools = [{"name": name, "description": t.description, "parameters": params, "output_schema": output,
              "source": "seed" if t.name in seed_names else "proposed"}
             for t, (name, params, output) in zip(expansion.tools, repaired)]
    truth = load_seed_responses(path, field=field, limit=limit)
    predicted = {name: output for name, _, output in repaired}
    measures = {
        "seed_tools": len(seeds),
        "questions": len(expansion.questions),
        "questions_discarded": expansion.discarded_questions,
        "questions_expanded": min(len(expansion.questions), expand_questions) if expand_questions
        else len(expansion.questions),
        "proposed": expansion.proposed,
        "proposed_by_stage": expansion.proposed_by_stage,
        "added_by_stage": expansion.added_by_stage,
        "rejected": len(expansion.rejected),
        "rejected_by_reason": dict(Counter(_reason_head(r.reason) for r in expansion.rejected).most_common()),
        "merged_near_duplicates": len(expansion.merged),
        "tools": len(tools),
        "crud_mix": dict(Counter(_verb_class(t["name"]) for t in tools)),
        "llm_calls": expansion.llm_calls + log.calls,
        "llm_calls_failed": len(expansion.failed_calls) + len(log.failed),
        "output_shape_repaired": len(log.shape_repaired),
        "type_conflicts_repaired": [c.describe() for c in conflicts],
        "schema_vs_responses": agreement_with_truth(predicted, truth) if truth else None,
    }
    return {
        "domain": domain,
        "questions": expansion.questions,
        "tools": tools,
        "rejected": [{"name": r.name, "stage": r.stage, "reason": r.reason} for r in expansion.rejected],
        "merged": [{"proposed": a, "same_purpose_as": b} for a, b in expansion.merged],
        "failed_model_calls": expansion.failed_calls + [f"output schema of {n}" for n in log.failed],
        "measures": measures,
    }


def _reason_head(reason: str) -> str:
    return reason.split(":", 1)[0]


def _verb_class(name: str) -> str:

    verb = purpose_key(name)[0]
    return {"get": "read", "search": "read", "create": "insert", "update": "update", "delete": "delete"}.get(verb,
                                                                                                          "other")
