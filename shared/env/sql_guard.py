"""The one place SQL from tools is checked before it runs (sqlglot, PostgreSQL dialect).

A tool's SQL may read or write the domain tables it was given and nothing else: one SELECT, INSERT,
UPDATE or DELETE, unqualified table names (a qualifier is how another sandbox or the domain's source
would be reached), no system catalogs, no functions that reach outside the statement, and values only
through named `:name` parameters that the driver binds.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

DIALECT = "postgres"


class UnsafeSQL(ValueError):
    """The statement may not run; the message says why in plain words."""


@dataclass(frozen=True)
class GuardedStatement:
    sql: str  # the original text
    kind: str  # "read" | "insert" | "update" | "delete"
    tables: frozenset[str]  # base tables referenced (lower-case)
    parameters: tuple[str, ...]  # named parameters in order of first appearance, without the colon
    shape: str  # normalised SQL with every literal replaced by "?" (for traces/statistics)
    has_join: bool
    has_aggregate: bool  # aggregate function or GROUP BY


KIND_OF_ROOT: dict[type, str] = {
    exp.Select: "read",
    exp.SetOperation: "read",  # UNION / INTERSECT / EXCEPT
    exp.Subquery: "read",  # a parenthesised SELECT
    exp.Insert: "insert",
    exp.Update: "update",
    exp.Delete: "delete",
}

DDL_TYPES = (exp.Create, exp.Drop, exp.Alter, exp.TruncateTable, exp.Grant, exp.Revoke, exp.Comment)
WRITE_TYPES = (exp.Insert, exp.Update, exp.Delete, exp.Merge)

SYSTEM_SCHEMAS = {"pg_catalog", "information_schema", "pg_toast"}

# Functions that read files, reach other databases, run SQL given as text, change settings or
# sequences (sequences are not rolled back). Every pg_* function is denied on top of these.
DENIED_FUNCTIONS = {
    "set_config", "current_setting", "setval", "nextval", "ts_stat", "ts_rewrite",
    "loread", "lowrite", "brin_summarize_range", "brin_summarize_new_values",
    "brin_desummarize_range", "gin_clean_pending_list",
}
DENIED_FUNCTION_PREFIXES = (
    "pg_", "dblink", "lo_", "query_to_xml", "cursor_to_xml", "table_to_xml", "schema_to_xml",
    "database_to_xml", "binary_upgrade_", "file_",
)

# Object kinds that name a DDL statement well enough in a reason ("DROP TABLE", "CREATE INDEX").
OBJECT_KINDS = {
    "TABLE", "INDEX", "VIEW", "SCHEMA", "ROLE", "USER", "FUNCTION", "PROCEDURE", "SEQUENCE",
    "DATABASE", "EXTENSION", "TRIGGER", "TYPE", "MATERIALIZED", "POLICY", "RULE", "DOMAIN",
    "SERVER", "TABLESPACE", "PUBLICATION", "SUBSCRIPTION", "ON", "ALL", "SESSION", "LOCAL",
    "TRANSACTION",
}

PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Placeholders are rendered as NUL-delimited markers: NUL cannot occur in PostgreSQL text,
# so a marker can never be confused with anything the statement itself contains.
MARKER = re.compile(r"\x00([A-Za-z_][A-Za-z0-9_]*)\x00")


def check_statement(sql: str, allowed_tables: Iterable[str]) -> GuardedStatement:
    """Parse and check one tool statement; raise UnsafeSQL with the reason when it may not run."""
    tree = _parse_single(sql)
    kind = _statement_kind(tree)
    _check_no_nested_writes(tree)
    _check_no_select_into(tree)
    tables = _check_tables(tree, {t.lower() for t in allowed_tables})
    _check_columns_unqualified(tree)
    _check_functions(tree)
    parameters = _check_parameters(tree)
    return GuardedStatement(
        sql=sql,
        kind=kind,
        tables=frozenset(tables),
        parameters=parameters,
        shape=_shape(tree),
        has_join=tree.find(exp.Join) is not None,
        has_aggregate=tree.find(exp.AggFunc, exp.Group) is not None,
    )


def to_driver_sql(statement: GuardedStatement) -> str:
    """The statement for psycopg: `:name` becomes `%(name)s` and every literal `%` becomes `%%`.

    Built from the AST, so a `:name` inside a string literal stays text. Always execute it with a
    mapping of parameters (an empty dict when there are none): psycopg only unescapes `%%` then.
    """
    marked = _render_with_markers(_parse_single(statement.sql))
    escaped = marked.replace("%", "%%")
    return MARKER.sub(lambda m: f"%({m.group(1)})s", escaped)


# --- parsing and statement type -------------------------------------------------------------


def _parse_single(sql: str) -> exp.Expression:
    if "\x00" in sql:
        raise UnsafeSQL("SQL contains a NUL character")
    try:
        statements = [s for s in sqlglot.parse(sql, read=DIALECT) if s is not None]
    except (ParseError, TokenError) as e:
        raise UnsafeSQL(f"could not parse SQL: {str(e).splitlines()[0]}") from None
    if not statements:
        raise UnsafeSQL("empty statement")
    if len(statements) > 1:
        raise UnsafeSQL(f"exactly one statement is allowed, found {len(statements)}")
    return statements[0]


def _statement_kind(tree: exp.Expression) -> str:
    if tree.find(exp.Command) is not None:
        raise UnsafeSQL(f"commands are not allowed: {_head(tree)}")
    if isinstance(tree, DDL_TYPES):
        raise UnsafeSQL(f"DDL is not allowed: {_head(tree)}")
    for root_type, kind in KIND_OF_ROOT.items():
        if isinstance(tree, root_type):
            return kind
    raise UnsafeSQL(f"only SELECT, INSERT, UPDATE or DELETE is allowed, not {_head(tree)}")


def _head(tree: exp.Expression) -> str:
    """The leading keywords of a statement, e.g. "DROP TABLE" or "SET ROLE", for reasons."""
    words = tree.sql(dialect=DIALECT, comments=False).split()
    if not words:
        return type(tree).__name__.upper()
    head = words[0].upper()
    if len(words) > 1 and words[1].upper() in OBJECT_KINDS | {"ROLE"}:
        head += " " + words[1].upper()
    return head


def _check_no_nested_writes(tree: exp.Expression) -> None:
    for node in tree.find_all(*WRITE_TYPES):
        if node is not tree:
            raise UnsafeSQL("data-modifying statements inside WITH or subqueries are not allowed")


def _check_no_select_into(tree: exp.Expression) -> None:
    if tree.find(exp.Into) is not None:
        raise UnsafeSQL("SELECT ... INTO is not allowed (it creates a table)")


# --- tables, columns, functions ---------------------------------------------------------------


def _check_tables(tree: exp.Expression, allowed: set[str]) -> set[str]:
    referenced = set()
    for table in tree.find_all(exp.Table):
        qualifier = ".".join(p for p in (table.catalog, table.db) if p)
        shown = f"{qualifier}.{table.name}" if qualifier else table.name
        if qualifier.lower().split(".")[-1] in SYSTEM_SCHEMAS:
            raise UnsafeSQL(f"system catalogs are not allowed: {shown}")
        if qualifier:
            raise UnsafeSQL(f"schema-qualified table references are not allowed: {shown}")
        if not isinstance(table.this, exp.Identifier):
            continue  # a set-returning function in FROM; _check_functions judges it
        name = table.name.lower()
        if name.startswith("pg_"):
            raise UnsafeSQL(f"system catalogs are not allowed: {table.name}")
        if name in _visible_cte_names(table):
            continue
        if name not in allowed:
            raise UnsafeSQL(f"table is not allowed (not in this schema): {table.name}")
        referenced.add(name)
    return referenced


def _visible_cte_names(node: exp.Expression) -> set[str]:
    """Names of the WITH entries in scope at node (those of every enclosing statement)."""
    names = set()
    parent = node.parent
    while parent is not None:
        with_ = parent.args.get("with") or parent.args.get("with_")
        if isinstance(with_, exp.With):
            names.update(cte.alias_or_name.lower() for cte in with_.expressions)
        parent = parent.parent
    return names


def _check_columns_unqualified(tree: exp.Expression) -> None:
    for column in tree.find_all(exp.Column):
        if column.args.get("db") or column.args.get("catalog"):
            raise UnsafeSQL(f"schema-qualified column references are not allowed: {column.sql(DIALECT)}")


def _check_functions(tree: exp.Expression) -> None:
    for dot in tree.find_all(exp.Dot):
        if isinstance(dot.expression, exp.Func):
            raise UnsafeSQL(f"schema-qualified function calls are not allowed: {dot.sql(DIALECT)}")
    for func in tree.find_all(exp.Func):
        name = _function_name(func)
        if name in DENIED_FUNCTIONS or name.startswith(DENIED_FUNCTION_PREFIXES):
            raise UnsafeSQL(f"function is not allowed: {name}")


def _function_name(func: exp.Func) -> str:
    if isinstance(func, exp.Anonymous):
        return str(func.this).lower()
    return func.sql_name().lower()


# --- parameters and rendering ------------------------------------------------------------------


def _check_parameters(tree: exp.Expression) -> tuple[str, ...]:
    positional = tree.find(exp.Parameter)
    if positional is not None:
        raise UnsafeSQL(f"positional parameters are not allowed: {positional.sql(DIALECT)} (use :name)")
    for ph in tree.find_all(exp.Placeholder):
        # sqlglot gives `:name` a plain string name; `%(x)s` an Identifier; `%s` and `?` none.
        if not isinstance(ph.this, str):
            raise UnsafeSQL(f"only :name parameters are allowed, not {_placeholder_text(ph)}")
        if not PARAM_NAME.match(ph.this):
            raise UnsafeSQL(f"bad parameter name: {ph.this!r}")
    # Order of first appearance: read back from the rendered text, because the AST walk visits
    # clauses in its own order (LIMIT before WHERE, WITH last).
    names = MARKER.findall(_render_with_markers(tree))
    return tuple(dict.fromkeys(names))


def _placeholder_text(ph: exp.Placeholder) -> str:
    if ph.args.get("jdbc"):
        return "?"
    if isinstance(ph.this, exp.Identifier):
        return f"%({ph.this.name})s"
    return "%s"


def _render_with_markers(tree: exp.Expression) -> str:
    def mark(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Placeholder):
            return exp.Var(this=f"\x00{node.this}\x00")
        return node

    return tree.copy().transform(mark).sql(dialect=DIALECT, comments=False)


def _shape(tree: exp.Expression) -> str:
    def normalise(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Literal):
            return exp.Var(this="?")
        if isinstance(node, exp.Placeholder):
            return exp.Var(this=f":{node.this}")
        return node

    return tree.copy().transform(normalise).sql(dialect=DIALECT, comments=False)
