"""`turnforge import-db` and `turnforge tools`: argument parsing and printing; the work is in shared.ops.tools.

Both use the configured PostgreSQL (and, for model-backed synthesis, the configured model endpoint). When that is
the embedded stack's and it is not running, the command starts it for its own use and stops it again afterwards,
as `turnforge run --embedded` does; a running stack (`turnforge up`) is used as it is and left running.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys

from rich.console import Console
from rich.table import Table

from shared.data.import_db import domain_name_for
from shared.data.synthetic_rows import DEFAULT_ROWS_PER_TABLE
from shared.ops import stack
from shared.ops.tools import database_toolset, import_db, seed_toolset
from shared.runtime.llm import quiet_http_client_logs
from shared.runtime.config import Settings, load_settings


def cmd_import_db(args, settings: Settings) -> int:
    name = args.name or domain_name_for(args.source)
    report = import_db(settings, args.source, name, pg_schema=args.schema, dialect=args.dialect,
                       synthetic_rows=args.synthetic_rows, seed=args.seed, license=args.license)
    print(f"domain {report.domain}: {report.tables} tables, {report.rows} rows, {report.foreign_keys} foreign keys "
          f"(from {report.source})")
    for note in report.notes:
        print(f"  note: {note}")
    return 0


def cmd_tools(args, settings: Settings) -> int:
    if bool(args.db) == bool(args.seed_tools):
        print("turnforge tools: give exactly one of --db or --seed-tools", file=sys.stderr)
        return 2
    quiet_http_client_logs()
    needs_model = args.seed_tools or args.synthesizer != "template"
    with contextlib.ExitStack() as stack_:
        if args.db:
            stack_.enter_context(stack.postgres_available(settings))
        if needs_model:
            stack_.enter_context(stack.model_available(settings))
        if args.db:
            result = database_toolset(settings, args.db, synthesizer=args.synthesizer, name=args.name,
                                      pg_schema=args.schema, llm_calls=args.llm_calls, seed=args.seed)
        else:
            result = seed_toolset(settings, args.seed_tools, field=args.field, limit=args.limit,
                                  synthesizer=args.synthesizer, questions=args.questions,
                                  expand_questions=args.expand_questions, seed=args.seed)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        _print_summary(result)
    return 0


def _print_summary(result: dict) -> None:
    console = Console()
    table = Table("tool", "kind", "source", "description")
    for t in result["tools"]:
        table.add_row(t["name"], t.get("kind", "-"), t.get("source", "-"), t["description"][:80])
    console.print(table)
    console.print_json(json.dumps(result["measures"], default=str))


def add_parsers(sub, common) -> None:
    """Register `import-db` and `tools` on the turnforge command's subparsers."""
    p = sub.add_parser("import-db", parents=[common],
                       help="load a SQLite file, a DDL file or a PostgreSQL schema as a domain database")
    p.add_argument("source", metavar="PATH_OR_DSN",
                   help="a SQLite file, a .sql DDL file (CREATE TABLE statements), or a PostgreSQL DSN "
                        "(postgresql://...)")
    p.add_argument("--name", help="domain name (default: the file's stem or the database name)")
    p.add_argument("--schema", default="public", help="PostgreSQL source schema (default: public)")
    p.add_argument("--dialect", default="sqlite",
                   help="SQL dialect of a DDL file, as sqlglot names it (default: sqlite)")
    p.add_argument("--synthetic-rows", type=int, default=DEFAULT_ROWS_PER_TABLE,
                   help=f"rows generated for each table the source leaves empty (default {DEFAULT_ROWS_PER_TABLE}; "
                        "0: leave them empty)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the synthetic rows")
    p.add_argument("--license", default="", help="the source's licence, for the dataset card (default: unknown; "
                                                 "Spider's is recognised)")
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
    return command(args, load_settings(args.config or os.environ.get("TURNFORGE_CONFIG") or None))
