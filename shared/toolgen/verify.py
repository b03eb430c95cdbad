"""Every candidate tool is executed before it is kept.

A candidate passes when its SQL passes the guard, it runs against the domain schema with arguments
drawn from real rows, and (for reads) finds something for those arguments. Each run happens in its
own transaction that is always rolled back, so verification leaves the rows as they were
(an identity sequence an INSERT advanced stays advanced: sequences are not transactional).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Iterable

import psycopg
import sqlglot
from sqlglot import exp

from shared.contracts import EFFECT_KIND_OF_NAME, ToolEffect
from shared.toolgen.templates import ToolCandidate
from shared.env.dbschema import DatabaseSchema, quote_ident
from shared.env.json_values import json_value
from shared.env.output_schema import json_schema_for_result
from shared.env.sql_guard import GuardedStatement, UnsafeSQL, check_statement, to_driver_sql

STATEMENT_TIMEOUT = "3s"
SAMPLE_ROWS = 200  # rows read per table to draw one random row from
SAMPLE_LIMIT_RANGE = (3, 10)


@dataclass
class Verification:
    candidate: ToolCandidate
    ok: bool
    reason: str = ""  # why rejected: "unsafe SQL: ...", "execution error: ...", "read returned no rows ..."
    sample_arguments: dict = field(default_factory=dict)
    # (name, PostgreSQL type name) of the result, from cursor.description + pg_type lookup
    result_columns: list[tuple[str, str]] = field(default_factory=list)
    row_count: int = 0
    nullable_columns: list[str] = field(default_factory=list)  # result columns that may hold NULL
    single_row: bool = False  # a read that pins the whole primary key: answers one record
    has_join: bool = False
    has_aggregate: bool = False
    table: str = ""  # the table it writes, or a read's FROM table; empty when that is a subquery or a set operation
    is_search: bool = False  # a read matching text the caller gives (a LIKE/ILIKE pattern parameter)
    is_top_n: bool = False  # a plain read ordered and limited: the first N by something
    # result column -> (table, column) it is read from; computed columns are absent
    result_origins: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def effect(self) -> ToolEffect:
        """What the kept tool does: its declared kind; one record for a lookup by key and for every write (the
        executor answers a write with the first row it returns)."""
        return ToolEffect(kind=EFFECT_KIND_OF_NAME[self.candidate.kind],
                          single_row=self.candidate.kind != "read" or self.single_row, table=self.table)

    @property
    def output_schema(self) -> dict:
        return json_schema_for_result(self.result_columns, single_row=self.effect.single_row,
                                      nullable=self.nullable_columns)


class NoSample(Exception):
    """No real row to draw an argument from."""


def verify_tools(
    conn: psycopg.Connection,
    schema_name: str,
    db_schema: DatabaseSchema,
    candidates: Iterable[ToolCandidate],
    rng: random.Random,
) -> list[Verification]:
    return [_verify_one(conn, schema_name, db_schema, c, rng) for c in candidates]


def _verify_one(conn, schema_name: str, db_schema: DatabaseSchema, candidate: ToolCandidate, rng) -> Verification:
    if candidate.rejection:
        return Verification(candidate, ok=False, reason=candidate.rejection)
    try:
        statement = check_statement(candidate.sql, db_schema.table_names)
    except UnsafeSQL as e:
        return Verification(candidate, ok=False, reason=f"unsafe SQL: {e}")
    mismatch = _declaration_mismatch(candidate, statement)
    if mismatch:
        return Verification(candidate, ok=False, reason=mismatch)
    tree = sqlglot.parse_one(candidate.sql, read="postgres")
    result = Verification(candidate, ok=False, single_row=_is_single_row_lookup(tree, db_schema),
                          has_join=statement.has_join, has_aggregate=statement.has_aggregate,
                          table=_acted_on_table(tree, db_schema), is_search=_is_search(candidate.sql),
                          is_top_n=_is_top_n(tree))
    try:
        with conn.transaction():
            conn.execute(f"SET LOCAL search_path TO {quote_ident(schema_name)}")
            conn.execute(f"SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT}'")
            result.sample_arguments = sample_arguments(conn, schema_name, candidate, rng)
            _execute(conn, statement, result)
            raise psycopg.Rollback()  # verification never changes the database
    except NoSample as e:
        result.reason = f"no sample arguments: {e}"
        return result
    except psycopg.Error as e:
        if conn.broken or conn.closed:
            raise  # the database went away: no verdict on the tool, let the caller retry
        result.reason = f"execution error: {_first_line(e)}"
        return result
    result.reason = _emptiness_reason(statement, result.row_count)
    result.ok = not result.reason
    return result


def _declaration_mismatch(candidate: ToolCandidate, statement: GuardedStatement) -> str:
    """The JSON Schema must describe exactly the SQL's parameters, and the kind must match."""
    if statement.kind != candidate.kind:
        return f"declared kind {candidate.kind!r} but the SQL is {statement.kind!r}"
    declared = set(candidate.parameters.get("properties", {}))
    used = set(statement.parameters)
    if used - declared:
        return f"SQL parameters missing from the JSON schema: {', '.join(sorted(used - declared))}"
    if declared - used:
        return f"JSON schema parameters not used by the SQL: {', '.join(sorted(declared - used))}"
    return ""


def _execute(conn, statement: GuardedStatement, result: Verification) -> None:
    args = {p: result.sample_arguments.get(p) for p in statement.parameters}
    with conn.cursor() as cur:
        cur.execute(to_driver_sql(statement), args)
        result.row_count = cur.rowcount
        if cur.description is None:
            return
        types = _type_names(conn, [c.type_code for c in cur.description])
        result.result_columns = [(c.name, types.get(c.type_code, "unknown")) for c in cur.description]
        sources = _result_sources(conn, cur)
        result.nullable_columns = _nullable_result_columns(conn, cur, statement, sources)
        result.result_origins = {c.name: (src[0], src[1]) for c, src in zip(cur.description, sources) if src}


def _emptiness_reason(statement: GuardedStatement, row_count: int) -> str:
    if row_count > 0:
        return ""
    if statement.kind == "read":
        return "read returned no rows for existing arguments"
    return f"{statement.kind} changed no rows for existing arguments"


def _first_line(error: psycopg.Error) -> str:
    message = getattr(error.diag, "message_primary", None) or str(error) or type(error).__name__
    return message.strip().splitlines()[0]


# --- sample arguments ----------------------------------------------------------------------------


def sample_arguments(conn, schema_name: str, candidate: ToolCandidate, rng: random.Random) -> dict:
    """Arguments a real user could give: values from real rows of each parameter's column.

    Parameters of the same table come from one random row, so combined conditions still match.
    A LIMIT gets a small number, an ILIKE pattern a word of a real value, an UPDATE's new value one
    from another row, and an INSERT a copy of a real row (unique columns made fresh).
    """
    roles = parameter_roles(candidate.sql)
    args: dict[str, Any] = {p: rng.randint(*SAMPLE_LIMIT_RANGE) for p, r in roles.items() if r == "limit"}
    matched = [p for p, r in roles.items() if r in ("match", "pattern", "bare_pattern")]
    args |= _values_from_rows(conn, schema_name, candidate, matched, rng, skip_nulls=True)
    bounds = [p for p, r in roles.items() if r in ("lower_bound", "upper_bound")]
    args |= _bound_values(conn, schema_name, candidate, bounds, roles)
    new_values = [p for p, r in roles.items() if r == "new_value"]
    args |= _values_from_rows(conn, schema_name, candidate, new_values, rng, skip_nulls=True)
    args |= _fresh_unique_values(conn, schema_name, candidate, new_values, args, rng)
    inserted = [p for p, r in roles.items() if r == "insert_value"]
    args |= _insert_values(conn, schema_name, candidate, inserted, rng)
    for p, r in roles.items():
        if r == "pattern":
            args[p] = _pattern_from(args[p], rng)
        elif r == "bare_pattern":  # `col LIKE :p` itself: the wildcards are the caller's to give
            args[p] = f"%{_pattern_from(args[p], rng)}%"
    return {p: json_value(v) for p, v in args.items()}


def parameter_roles(sql: str) -> dict[str, str]:
    """What each :name parameter does in the statement: limit, pattern, new_value, insert_value or match."""
    tree = sqlglot.parse_one(sql, read="postgres")
    roles: dict[str, str] = {}
    for ph in tree.find_all(exp.Placeholder):
        if isinstance(ph.this, str):
            roles.setdefault(ph.this, _role_of(ph, tree))
    return roles


def _role_of(ph: exp.Placeholder, root: exp.Expression) -> str:
    node = ph
    while node.parent is not None:
        parent = node.parent
        if isinstance(parent, (exp.Limit, exp.Offset, exp.Fetch)):
            return "limit"
        if isinstance(parent, (exp.Like, exp.ILike)):
            return "bare_pattern" if node is ph and parent.expression is ph else "pattern"
        if node is ph and parent.expression is ph and isinstance(parent, (exp.GT, exp.GTE)):
            return "lower_bound"  # `col > :p`: a bound below the smallest value finds rows
        if node is ph and parent.expression is ph and isinstance(parent, (exp.LT, exp.LTE)):
            return "upper_bound"
        if parent is root and isinstance(root, exp.Update) and any(node is e for e in root.expressions):
            return "new_value"
        node = parent
    return "insert_value" if isinstance(root, exp.Insert) else "match"


def _bound_values(conn, schema_name, candidate, params, roles) -> dict:
    """`col > :p` gets the column's smallest value and `col < :p` its largest, so the range holds rows."""
    values = {}
    for p in params:
        if p not in candidate.param_columns:
            raise NoSample(f"parameter {p} has no column to draw values from")
        table, column = candidate.param_columns[p]
        agg = "min" if roles[p] == "lower_bound" else "max"
        value = conn.execute(f"SELECT {agg}({quote_ident(column)}) FROM "
                             f"{quote_ident(schema_name)}.{quote_ident(table)}").fetchone()[0]
        if value is None:
            raise NoSample(f"table {table} has no rows with {column} set")
        values[p] = value
    return values


def _columns_by_table(candidate: ToolCandidate, params: list[str]) -> dict[str, dict[str, str]]:
    by_table: dict[str, dict[str, str]] = {}
    for p in params:
        if p not in candidate.param_columns:
            raise NoSample(f"parameter {p} has no column to draw values from")
        table, column = candidate.param_columns[p]
        by_table.setdefault(table, {})[p] = column
    return by_table


def _values_from_rows(conn, schema_name, candidate, params, rng, *, skip_nulls: bool) -> dict:
    values = {}
    for table, columns in _columns_by_table(candidate, params).items():
        row = _random_row(conn, schema_name, table, sorted(set(columns.values())), rng, skip_nulls=skip_nulls)
        values |= {p: row[c] for p, c in columns.items()}
    return values


def _random_row(conn, schema_name: str, table: str, columns: list[str], rng, *, skip_nulls: bool) -> dict:
    where = " AND ".join(f"{quote_ident(c)} IS NOT NULL" for c in columns) if skip_nulls else "TRUE"
    rows = conn.execute(
        f"SELECT {', '.join(quote_ident(c) for c in columns)} "
        f"FROM {quote_ident(schema_name)}.{quote_ident(table)} WHERE {where} LIMIT {SAMPLE_ROWS}"
    ).fetchall()
    if not rows:
        raise NoSample(f"table {table} has no rows with {', '.join(columns)} set")
    return dict(zip(columns, rng.choice(rows)))


def _insert_values(conn, schema_name, candidate, params, rng) -> dict:
    """A copy of one real row, so NOT NULL and foreign keys hold; then every unique key made fresh."""
    values = _values_from_rows(conn, schema_name, candidate, params, rng, skip_nulls=False)
    for table, columns in _columns_by_table(candidate, params).items():
        param_of = {c: p for p, c in columns.items()}
        row = {c: values[p] for c, p in param_of.items()}
        _make_unique_keys_fresh(conn, schema_name, table, row, rng)
        values |= {p: row[c] for c, p in param_of.items()}
    return values


def _make_unique_keys_fresh(conn, schema_name: str, table: str, row: dict, rng) -> None:
    """Change the copied row so no unique key repeats an existing row's.

    A key with a column of its own (not a reference) gets a fresh value there; a key made only of
    references (a link table, a one-to-one child) gets a combination of real parents not yet used.
    """
    qualified = f"{quote_ident(schema_name)}.{quote_ident(table)}"
    references = _references(conn, qualified)
    referencing = {c for cols, _, _ in references for c in cols}
    for key in _unique_keys(conn, qualified):
        if not set(key) <= set(row):
            continue  # a generated column (identity) is part of it, so it is fresh already
        own = [c for c in key if c not in referencing and _can_freshen(row[c])]
        if own:
            row[own[0]] = _fresh_value(conn, qualified, own[0], row[own[0]], rng)
        else:
            _pick_unused_parents(conn, qualified, key, references, row, rng)


def _can_freshen(value) -> bool:
    return isinstance(value, (str, int, float, Decimal)) and not isinstance(value, bool)


def _fresh_unique_values(conn, schema_name, candidate, params, args, rng) -> dict:
    """A new value for a column that must stay unique (an UPDATE of it) is one no row has yet."""
    fresh = {}
    for p in params:
        table, column = candidate.param_columns.get(p, ("", ""))
        qualified = f"{quote_ident(schema_name)}.{quote_ident(table)}"
        if table and [column] in _unique_keys(conn, qualified) and _can_freshen(args.get(p)):
            fresh[p] = _fresh_value(conn, qualified, column, args[p], rng)
    return fresh


def _unique_keys(conn, qualified: str) -> list[list[str]]:
    rows = conn.execute(
        """SELECT array_agg(a.attname::text ORDER BY k.ord)
           FROM pg_index i
           CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
           JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
           WHERE i.indisunique AND i.indpred IS NULL AND i.indrelid = to_regclass(%s)
           GROUP BY i.indexrelid""",
        [qualified],
    ).fetchall()
    return [r[0] for r in rows]


def _references(conn, qualified: str) -> list[tuple[list[str], str, list[str]]]:
    """Foreign keys of a table: (columns, referenced table as SQL, referenced columns)."""
    names = """(SELECT array_agg(a.attname::text ORDER BY k.ord)
                FROM unnest({keys}) WITH ORDINALITY AS k(attnum, ord)
                JOIN pg_attribute a ON a.attrelid = {rel} AND a.attnum = k.attnum)"""
    rows = conn.execute(
        f"""SELECT {names.format(keys="c.conkey", rel="c.conrelid")},
                   c.confrelid::regclass::text,
                   {names.format(keys="c.confkey", rel="c.confrelid")}
            FROM pg_constraint c WHERE c.contype = 'f' AND c.conrelid = to_regclass(%s)""",
        [qualified],
    ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def _fresh_value(conn, qualified: str, column: str, value, rng):
    if isinstance(value, str):
        tag = f"{rng.randrange(16 ** 4):04x}"
        local, at, domain = value.partition("@")
        return f"{local}+{tag}@{domain}" if at else f"{value}-{tag}"
    top = conn.execute(f"SELECT max({quote_ident(column)}) FROM {qualified}").fetchone()[0]
    return (top or 0) + 1 + rng.randrange(100)


def _pick_unused_parents(conn, qualified: str, key: list[str], references, row: dict, rng, tries: int = 20) -> None:
    """Draw real parent rows for the key's references until the key is not taken yet."""
    parents = []  # (columns, candidate parent keys) for each reference the key is made of
    for cols, parent, ref_cols in references:
        if set(cols) & set(key):
            options = conn.execute(
                f"SELECT {', '.join(quote_ident(c) for c in ref_cols)} FROM {parent} LIMIT {SAMPLE_ROWS}"
            ).fetchall()
            if not options:
                return
            parents.append((cols, options))
    taken = f"SELECT 1 FROM {qualified} WHERE " + " AND ".join(f"{quote_ident(c)} = %s" for c in key)
    for _ in range(tries):
        for cols, options in parents:
            row.update(zip(cols, rng.choice(options)))
        if conn.execute(taken, [row[c] for c in key]).fetchone() is None:
            return
    # every combination tried is taken: keep the copy, and the insert is rejected with the reason


def _pattern_from(value: Any, rng: random.Random) -> str:
    """A word of a real value, so the search finds at least that row."""
    text = str(value)
    words = [w for w in text.split() if len(w) >= 3]
    return rng.choice(words) if words else text


# --- result description --------------------------------------------------------------------------


def _type_names(conn, oids: list[int]) -> dict[int, str]:
    rows = conn.execute("SELECT oid, typname FROM pg_type WHERE oid = ANY(%s::oid[])", [list(set(oids))]).fetchall()
    return dict(rows)


def _result_sources(conn, cur) -> list[tuple[str, str, bool] | None]:
    """For each result column, the table column it is read from (relation, column, NOT NULL), or None if computed."""
    result = cur.pgresult
    sources = [(result.ftable(i), result.ftablecol(i)) for i in range(result.nfields)]
    known = {(t, c) for t, c in sources if t}
    found: dict[tuple[int, int], tuple[str, str, bool]] = {}
    if known:
        rows = conn.execute(
            """SELECT a.attrelid, a.attnum, c.relname::text, a.attname::text, a.attnotnull
               FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
               WHERE (a.attrelid, a.attnum) IN (SELECT * FROM unnest(%s::oid[], %s::int2[]))""",
            [[t for t, _ in known], [c for _, c in known]],
        ).fetchall()
        found = {(r[0], r[1]): (r[2], r[3], r[4]) for r in rows}
    return [found.get(source) for source in sources]


def _nullable_result_columns(conn, cur, statement: GuardedStatement, sources=None) -> list[str]:
    """Result columns that may be NULL: computed ones, nullable table columns, outer-joined tables."""
    sources = sources if sources is not None else _result_sources(conn, cur)
    outer = _outer_joined_tables(statement.sql)
    nullable = []
    for column, source in zip(cur.description, sources):
        relname, _, attnotnull = source or ("", "", False)
        if not attnotnull or outer is None or relname in outer:
            nullable.append(column.name)
    return nullable


def _outer_joined_tables(sql: str) -> set[str] | None:
    """Tables on the NULL-filled side of an outer join; None when that could be any table."""
    tables: set[str] = set()
    for join in sqlglot.parse_one(sql, read="postgres").find_all(exp.Join):
        side = (join.side or "").upper()
        if side in ("RIGHT", "FULL"):
            return None
        if side == "LEFT":
            tables |= {t.name.lower() for t in join.find_all(exp.Table)}
    return tables


def _acted_on_table(tree: exp.Expression, db_schema: DatabaseSchema) -> str:
    """The domain table a statement writes, or the one a SELECT reads FROM first ("" for a subquery, a CTE or a
    set operation)."""
    if isinstance(tree, exp.Select):
        source = tree.args.get("from_") or tree.args.get("from")
        target = source.this if source is not None else None
    else:
        target = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this  # INSERT INTO t (columns)
    if isinstance(target, exp.Table) and target.name in db_schema.table_names:
        return target.name
    return ""


def _is_search(sql: str) -> bool:
    return any(role in ("pattern", "bare_pattern") for role in parameter_roles(sql).values())


def _is_top_n(tree: exp.Expression) -> bool:
    return isinstance(tree, exp.Select) and tree.find(exp.AggFunc, exp.Group) is None \
        and tree.args.get("order") is not None and tree.args.get("limit") is not None


def _is_single_row_lookup(tree: exp.Expression, db_schema: DatabaseSchema) -> bool:
    """A plain SELECT whose WHERE pins every primary-key column of its FROM table to a parameter,
    joined only to tables that table references (a parent adds no rows)."""
    if not isinstance(tree, exp.Select) or tree.find(exp.AggFunc, exp.Group) is not None:
        return False
    main_table = _acted_on_table(tree, db_schema)
    if not main_table:
        return False
    main_alias = (tree.args.get("from_") or tree.args.get("from")).this.alias_or_name
    table = db_schema.table(main_table)
    parents = {fk.ref_table for fk in table.foreign_keys}
    if any(not isinstance(j.this, exp.Table) or j.this.name not in parents for j in tree.args.get("joins") or []):
        return False
    where = tree.args.get("where")
    if not table.primary_key or where is None:
        return False
    conjuncts = where.this.flatten() if isinstance(where.this, exp.And) else [where.this]
    pinned = set()
    for cond in conjuncts:
        if isinstance(cond, exp.EQ):
            sides = (cond.this, cond.expression)
            column = next((s for s in sides if isinstance(s, exp.Column)), None)
            if column is not None and any(isinstance(s, exp.Placeholder) for s in sides) \
                    and column.table in ("", main_alias):
                pinned.add(column.name)
    return set(table.primary_key) <= pinned
