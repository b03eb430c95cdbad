"""SQL tools proposed by a model, one focus table (with its neighbours) per call.

The model gives a name, a description and one SQL statement per tool; everything else is derived from the SQL:
its kind (read/insert/update/delete), its parameters and their JSON types (from the columns they meet), and where
sample arguments come from. A proposal is only a candidate: verify.py keeps it only if it passes the guard and
runs against real rows. A weak model's answers mostly fail there, with the reason recorded, and the template
synthesiser remains the floor.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

import psycopg
import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from shared.toolgen.binding import bind_parameters, limit_parameters
from shared.toolgen.templates import MAX_NAME_LENGTH, ToolCandidate
from shared.env.dbschema import DatabaseSchema, Table, quote_ident
from shared.env.json_values import json_value
from shared.runtime.errors import PermanentError, TransientError
from shared.runtime.llm import ModelCall
from shared.env.sql_guard import UnsafeSQL, check_statement

MAX_CALLS = 3
MIN_DESCRIPTION = 12


class SqlToolProposals(ModelCall[list[dict]]):
    """Tools for the tables shown, each a name, a description and one SQL statement; the answer is the proposals."""

    name = "sql_tools"
    temperature = 0.4
    max_tokens = 360

    SYSTEM = (
        "You design tools for an assistant that works on a PostgreSQL database. Each tool is one SQL statement with "
        "named parameters written as :parameter_name (never put values into the SQL text). Use only the tables and "
        "columns shown, unqualified. Allowed: one SELECT (lookups, searches with ILIKE, JOINs along the foreign keys, "
        "GROUP BY with COUNT/SUM/AVG, ORDER BY, LIMIT :limit, CASE WHEN), or one INSERT, UPDATE or DELETE with "
        "RETURNING *. Names are snake_case and start with get_, search_, list_, count_, create_, update_ or delete_."
    )
    EXAMPLE = {
        "name": "list_top_products_by_price",
        "description": "List the most expensive products of a category, most expensive first.",
        "sql": "SELECT product_id, title, price FROM products WHERE category = :category ORDER BY price DESC "
               "LIMIT :limit",
    }
    SCHEMA = {
        "type": "object",
        "properties": {
            "tools": {
                "type": "array",
                "minItems": 1,
                "maxItems": 3,
                "items": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "description": {"type": "string"},
                                   "sql": {"type": "string"}},
                    "required": ["name", "description", "sql"],
                },
            }
        },
        "required": ["tools"],
    }

    def __init__(self, tables_text: str, asks: list[str], *, with_example: bool = False):
        self.tables_text = tables_text
        self.asks = asks
        # The answer format is enforced by the schema, so the example is optional: a small model tends to copy it
        # (table and all) instead of writing SQL for the tables shown.
        self.with_example = with_example

    def messages(self) -> list[dict]:
        return [{"role": "system", "content": self.SYSTEM}, {"role": "user", "content": self.request()}]

    def request(self) -> str:
        text = (f"Tables:\n{self.tables_text}\n\nPropose {len(self.asks)} tools that use only these tables: "
                + "; ".join(self.asks) + ".")
        if self.with_example:
            text += f"\nAnswer format example (another database): {json.dumps({'tools': [self.EXAMPLE]})}"
        return text

    def schema(self) -> dict:
        return self.SCHEMA

    def parse(self, data: dict) -> list[dict]:
        return data["tools"]


@dataclass
class ProposalFailure:
    label: str  # which call
    reason: str


def focus_tables(schema: DatabaseSchema, limit: int) -> list[Table]:
    """Tables with the most links first: their tools can join and aggregate."""
    referenced = {t.name: 0 for t in schema.tables}
    for t in schema.tables:
        for fk in t.foreign_keys:
            referenced[fk.ref_table] += 1
    ranked = sorted(schema.tables, key=lambda t: -(2 * len(t.foreign_keys) + referenced[t.name] + len(t.columns) / 100))
    return ranked[:limit]


def describe_tables(conn: psycopg.Connection, schema_name: str, schema: DatabaseSchema, focus: Table) -> str:
    """The focus table and the tables it references, each with its columns and one real row."""
    names = dict.fromkeys([focus.name] + [fk.ref_table for fk in focus.foreign_keys])
    lines = []
    for table in [schema.table(n) for n in names]:
        cols = ", ".join(f"{c.name} {c.type}{' PRIMARY KEY' if c.name in table.primary_key else ''}"
                         for c in table.columns)
        lines.append(f"{table.name}({cols})")
        row = conn.execute(f"SELECT * FROM {quote_ident(schema_name)}.{quote_ident(table.name)} LIMIT 1").fetchone()
        if row is not None:
            lines.append(f"  example row: {json.dumps(json_value(list(row)))[:300]}")
    for fk in focus.foreign_keys:
        lines.append(f"{focus.name}.{', '.join(fk.columns)} references {fk.ref_table}.{', '.join(fk.ref_columns)}")
    return "\n".join(lines)


def asks_for(schema: DatabaseSchema, focus: Table, call: int) -> list[str]:
    """What to ask for: alternating read-heavy and write-heavy calls, so each kind gets proposals."""
    key = ", ".join(focus.primary_key) or focus.columns[0].name
    texts = [c.name for c in focus.columns if c.json_type == "string" and c.name not in focus.primary_key]
    numbers = [c.name for c in focus.columns if c.json_type in ("number", "integer") and c.name not in focus.primary_key]
    parent = focus.foreign_keys[0].ref_table if focus.foreign_keys else None
    reads = [f"a lookup of one {focus.name} row by {key}"]
    if texts:
        reads.append(f"a search of {focus.name} by {texts[0]} with ILIKE")
    if parent:
        reads.append(f"a JOIN of {focus.name} with {parent} filtered by a parameter")
        reads.append(f"a count of {focus.name} rows per {parent} with GROUP BY, ORDER BY and LIMIT :limit")
    elif numbers:
        reads.append(f"a list of {focus.name} ordered by {numbers[0]} with a CASE WHEN label and LIMIT :limit")
    writes = [f"an INSERT into {focus.name}"]
    if texts or numbers:
        writes.append(f"an UPDATE of one {focus.name}'s {(texts + numbers)[-1]} by {key}")
    writes.append(f"a DELETE of one {focus.name} by {key}")
    asks = reads[:2] + writes[:2] if call % 2 == 0 else reads[2:] + writes[2:] + reads[:1]
    return asks[:3]


def propose_sql_tools(llm, conn: psycopg.Connection, schema_name: str, schema: DatabaseSchema,
                      *, max_calls: int = MAX_CALLS) -> tuple[list[ToolCandidate], list[ProposalFailure], int]:
    """Candidates from up to `max_calls` model calls; returns (candidates, failed calls, calls made)."""
    candidates: list[ToolCandidate] = []
    failures: list[ProposalFailure] = []
    focus = focus_tables(schema, max_calls)
    calls = 0
    for i in range(max_calls):
        table = focus[i % len(focus)]
        call = SqlToolProposals(describe_tables(conn, schema_name, schema, table), asks_for(schema, table, i))
        calls += 1
        try:
            proposals = call.ask(llm).value
        except (PermanentError, TransientError) as e:  # a lost call costs its proposals; templates remain
            failures.append(ProposalFailure(f"call {i + 1} ({table.name})", f"model answer unusable: {e}"))
            continue
        for proposal in proposals:
            candidates.append(candidate_from_proposal(proposal, schema))
    return candidates, failures, calls


def candidate_from_proposal(proposal: dict, schema: DatabaseSchema) -> ToolCandidate:
    """A candidate whose parameters, types and kind come from its SQL (the model's word is only name and text)."""
    name = _tool_name(proposal.get("name", ""))
    sql = (proposal.get("sql") or "").strip().rstrip(";").strip()
    description = " ".join((proposal.get("description") or "").split())[:300]
    candidate = ToolCandidate(name=name, description=description, parameters={"type": "object", "properties": {}},
                              sql=sql, kind="read", source="llm")
    try:
        statement = check_statement(sql, schema.table_names)
        bound = bind_parameters(sql, schema)
        limits = limit_parameters(sql)
    except (UnsafeSQL, ParseError, TokenError, ValueError):
        return candidate  # verification rejects it with the guard's reason
    candidate.kind = statement.kind
    if len(description) < MIN_DESCRIPTION or description.lower() == name.replace("_", " "):
        candidate.rejection = "no usable description: an agent could not tell when to call it"
        return candidate
    baked = written_in_values(sql)
    if baked:
        candidate.rejection = (f"value written into the SQL ({baked[0]}): values must be bound :parameters")
        return candidate
    if statement.kind == "read" and not _bounded(sql):
        candidate.rejection = "unbounded read: no WHERE, GROUP BY or LIMIT (it returns the whole table)"
        return candidate
    properties = {}
    for p in statement.parameters:
        if p in limits:
            properties[p] = {"type": "integer", "minimum": 1, "maximum": 100, "description": "How many rows to return."}
        elif p in bound:
            table, column = bound[p]
            col = schema.table(table).column(column)
            properties[p] = {"type": col.json_type, "description": f"The {column.replace('_', ' ')} of the {table}."}
        else:
            properties[p] = {"type": "string", "description": p.replace("_", " ")}
    candidate.parameters = {"type": "object", "properties": properties, "required": list(properties),
                            "additionalProperties": False}
    candidate.param_columns = {p: bound[p] for p in statement.parameters if p in bound}
    return candidate


COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Like, exp.ILike, exp.In, exp.Between)


def written_in_values(sql: str) -> list[str]:
    """Comparisons of a column with a value written into the SQL (`code = 'ABW'`, `id = 42`) rather than bound.

    Allowed: pure LIKE wildcards ('%') and TRUE/FALSE. A constant inside CASE (a label or a threshold) is not a
    comparison with a column and passes."""
    tree = sqlglot.parse_one(sql, read="postgres")
    found = []
    for cmp in tree.find_all(*COMPARISONS):
        operands = [cmp.this, cmp.args.get("expression"), *(cmp.args.get("expressions") or []),
                    cmp.args.get("low"), cmp.args.get("high")]
        if cmp.find_ancestor(exp.Case) is not None or not any(isinstance(o, exp.Column) for o in operands):
            continue
        for o in operands:
            if isinstance(o, exp.Literal):
                text = o.this
                if not o.is_string or text.strip("%"):
                    found.append(cmp.sql(dialect="postgres"))
    return found


def _bounded(sql: str) -> bool:
    tree = sqlglot.parse_one(sql, read="postgres")
    return any(tree.args.get(k) is not None for k in ("where", "group", "limit")) or tree.find(exp.AggFunc) is not None


def _tool_name(raw: str) -> str:
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", raw.strip())
    name = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_")
    if not name or not name[0].isalpha():
        name = "tool_" + name
    return name[:MAX_NAME_LENGTH]
