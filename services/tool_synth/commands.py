"""`turnforge import-db` and `turnforge tools`: tool preparation from the command line.

Both use the configured PostgreSQL (and, for model-backed synthesis, the configured model endpoint). When that is
the embedded stack's and it is not running, the command starts it for its own use and stops it again afterwards,
as `turnforge run --embedded` does; a running stack (`turnforge up`) is used as it is and left running.
"""
from __future__ import annotations

import contextlib
import json
import random
import sys
from pathlib import Path

from shared.config import Settings


@contextlib.contextmanager
def postgres_available(settings: Settings):
    from shared import local_postgres, stack

    if stack._pg_accepts(settings.postgres.dsn):
        yield
        return
    if stack._local_postgres(settings) is None:
        raise stack.StackError(f"cannot connect to PostgreSQL at {settings.postgres.dsn}")
    stack.start_postgres(settings)
    try:
        yield
    finally:
        local_postgres.stop(stack._pgdata(settings))
        stack.pid_path(settings, "postgres").unlink(missing_ok=True)


@contextlib.contextmanager
def model_available(settings: Settings):
    from shared import stack

    # A model busy generating may not answer /models in time: its live process means it is up, and not ours to stop.
    if stack._local_model_port(settings) is None or stack.is_running(stack.pid_path(settings, "model")) \
            or stack._model_ready(settings):
        yield
        return
    stack.start_model(settings)
    try:
        yield
    finally:
        stack._stop(stack.pid_path(settings, "model"))


def import_db(settings: Settings, source: str, name: str, *, pg_schema: str = "public"):
    from shared.import_db import import_database

    with postgres_available(settings):
        return import_database(settings.postgres.dsn, source, name, pg_schema=pg_schema, replace=True)


def cmd_import_db(args, settings: Settings) -> int:
    from shared.import_db import domain_name_for

    name = args.name or domain_name_for(args.source)
    report = import_db(settings, args.source, name, pg_schema=args.schema)
    print(f"domain {report.domain}: {report.tables} tables, {report.rows} rows, {report.foreign_keys} foreign keys "
          f"(from {report.source})")
    for note in report.notes:
        print(f"  note: {note}")
    return 0


def _domain_for_db(settings: Settings, db: str, name: str | None, pg_schema: str) -> tuple[str, dict | None]:
    """A registered domain name is used as it is; a SQLite path or a DSN is imported first."""
    from shared.import_db import domain_name_for, import_database, is_postgres_dsn

    if is_postgres_dsn(db) or Path(db).is_file():
        domain = name or domain_name_for(db)
        report = import_database(settings.postgres.dsn, db, domain, pg_schema=pg_schema)
        return domain, {"tables": report.tables, "rows": report.rows, "foreign_keys": report.foreign_keys,
                        "notes": report.notes}
    return db, None


def database_toolset(settings: Settings, db: str, *, synthesizer: str, name: str | None = None,
                     pg_schema: str = "public", llm_calls: int = 3, seed: int = 0) -> dict:
    """The toolset and its measures for one database, as `turnforge tools --db` prints them."""
    from services.schema_predictor.logic import enforce_type_consistency, name_clashes, sql_field_entity
    from services.tool_synth.measures import database_measures
    from services.tool_synth.preparation import prepare_database_tools
    from shared.llm import LLMClient
    from shared.sandbox import SandboxManager, UnknownDomain, domain_schema_name
    from shared.sql_guard import check_statement

    domain, imported = _domain_for_db(settings, db, name, pg_schema)
    manager = SandboxManager(settings.postgres.dsn)
    try:
        db_schema = manager.domain_schema(domain)
    except UnknownDomain as e:
        raise ValueError(f"{e}; or give a SQLite file or a postgresql:// DSN") from None
    llm = LLMClient(settings.llm, "tool_synth") if synthesizer != "template" else None
    prepared = prepare_database_tools(manager.connection(), domain_schema_name(domain), db_schema,
                                      synthesizer=synthesizer, llm=llm, rng=random.Random(seed), llm_calls=llm_calls)
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
    }


def cmd_tools(args, settings: Settings) -> int:
    if bool(args.db) == bool(args.seed_tools):
        print("turnforge tools: give exactly one of --db or --seed-tools", file=sys.stderr)
        return 2
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per model request drowns the summary
    needs_model = args.seed_tools or args.synthesizer != "template"
    with contextlib.ExitStack() as stack_:
        if args.db:
            stack_.enter_context(postgres_available(settings))
        if needs_model:
            stack_.enter_context(model_available(settings))
        if args.db:
            result = database_toolset(settings, args.db, synthesizer=args.synthesizer, name=args.name,
                                      pg_schema=args.schema, llm_calls=args.llm_calls, seed=args.seed)
        else:
            from services.tool_synth.seed_commands import seed_toolset

            result = seed_toolset(settings, args.seed_tools, field=args.field, limit=args.limit,
                                  synthesizer=args.synthesizer, questions=args.questions,
                                  expand_questions=args.expand_questions, seed=args.seed)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        _print_summary(result)
    return 0


def _print_summary(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table("tool", "kind", "source", "description")
    for t in result["tools"]:
        table.add_row(t["name"], t.get("kind", "-"), t.get("source", "-"), t["description"][:80])
    console.print(table)
    console.print_json(json.dumps(result["measures"], default=str))


def add_parsers(sub, common) -> None:
    """Register `import-db` and `tools` on the turnforge command's subparsers."""
    p = sub.add_parser("import-db", parents=[common],
                       help="load a SQLite file or a PostgreSQL schema as a domain database")
    p.add_argument("source", metavar="PATH_OR_DSN", help="a SQLite file, or a PostgreSQL DSN (postgresql://...)")
    p.add_argument("--name", help="domain name (default: the file's stem or the database name)")
    p.add_argument("--schema", default="public", help="PostgreSQL source schema (default: public)")
    p.set_defaults(func=lambda a: _with_settings(cmd_import_db, a))
    p = sub.add_parser("tools", parents=[common],
                       help="prepare a toolset from a database or seed tools and print it with its measures")
    p.add_argument("--db", metavar="PATH_OR_DSN_OR_DOMAIN",
                   help="a SQLite file or PostgreSQL DSN (imported first) or a registered domain (e.g. banking)")
    p.add_argument("--seed-tools", metavar="FILE", help="OpenAI function specs or Seal-Tools JSONL")
    p.add_argument("--synthesizer", choices=["template", "llm", "both"], default="both",
                   help="who proposes tools: the schema templates, the model, or both (default; templates are the "
                        "floor). With seed tools: template keeps them as given, llm/both expand them")
    p.add_argument("--name", help="domain name for an imported --db")
    p.add_argument("--schema", default="public", help="PostgreSQL source schema of a DSN --db")
    p.add_argument("--field", default="", help="Seal-Tools: keep tools whose field starts with this")
    p.add_argument("--limit", type=int, default=0, help="seed tools: use at most this many")
    p.add_argument("--questions", type=int, default=20, help="seed tools: user questions to generate (20-30)")
    p.add_argument("--expand-questions", type=int, default=0,
                   help="seed tools: turn only this many questions into tool specs (0: all)")
    p.add_argument("--llm-calls", type=int, default=3, help="--db: model calls proposing SQL tools")
    p.add_argument("--seed", type=int, default=0, help="random seed for sample arguments")
    p.add_argument("--json", action="store_true", help="print the toolset and measures as JSON")
    p.set_defaults(func=lambda a: _with_settings(cmd_tools, a))


def _with_settings(command, args) -> int:
    import os

    from shared.config import load_settings

    return command(args, load_settings(args.config or os.environ.get("TURNFORGE_CONFIG") or None))
