"""import-db: a SQLite file, a PostgreSQL schema or a DDL file becomes a domain database (schema `domain_<name>`).

The source's tables, primary keys and foreign keys are kept; names are folded to lower-case snake case so that the
SQL a model writes (unquoted, case-folded by PostgreSQL) names them as they are stored. Column types are mapped to
the small set the domain schemas use, and every value is checked against its type first: a column whose values
do not fit its declared type (a "null" text in a REAL column, a date that is not a date) is made text instead of
failing the load. Keys that the data does not honour (duplicate primary keys, references to missing rows, foreign
keys in a cycle) are dropped. Every such change is recorded in `ImportReport.notes`.

A DDL file (.sql: CREATE TABLE statements, optionally INSERT ... VALUES) is parsed with sqlglot in the dialect it
was written for and read like any other source; the tables are then created in PostgreSQL from the schema model.
Tables the source leaves empty are filled with synthetic rows (shared.data.synthetic_rows), so that tools can be
verified on them; the filled tables are recorded in the report and in the domain's provenance, which the dataset
card reads.
"""
from __future__ import annotations

import datetime as dt
import re
import sqlite3
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Iterable

import psycopg
import sqlglot
from psycopg import sql as pgsql
from sqlglot import exp

from shared.data.synthetic_rows import DEFAULT_ROWS_PER_TABLE, fill_empty_tables
from shared.env.dbschema import Column, DatabaseSchema, DomainData, ForeignKey, Provenance, Table
from shared.env.sandbox import SandboxManager

INT32_MAX = 2**31 - 1
NULL_WORDS = {"", "null", "none", "n/a", "na"}  # text that means "no value" in a non-text column
TRUE_WORDS = {"1", "t", "true", "y", "yes"}
DDL_SUFFIXES = (".sql", ".ddl")
FALSE_WORDS = {"0", "f", "false", "n", "no"}


@dataclass
class ImportReport:
    domain: str
    source: str
    tables: int = 0
    rows: int = 0
    foreign_keys: int = 0
    notes: list[str] = field(default_factory=list)
    renamed: dict[str, str] = field(default_factory=dict)  # source name -> stored name (tables and table.column)
    synthetic_rows: dict[str, int] = field(default_factory=dict)  # table the source left empty -> rows generated


@dataclass
class _RawColumn:
    name: str
    declared: str
    not_null: bool


@dataclass
class _RawTable:
    name: str
    columns: list[_RawColumn]
    primary_key: list[str]
    foreign_keys: list[tuple[list[str], str, list[str]]]  # (columns, ref table, ref columns; empty = its key)
    rows: list[list[Any]]
    unique_keys: list[list[str]] = field(default_factory=list)  # UNIQUE column sets besides the primary key


# --- entry points ---------------------------------------------------------------------------------


def is_postgres_dsn(source: str) -> bool:
    return source.startswith(("postgresql://", "postgres://")) or "host=" in source or "dbname=" in source


def read_source(source: str, name: str, *, pg_schema: str = "public", dialect: str = "sqlite",
                synthetic_rows: int = DEFAULT_ROWS_PER_TABLE, seed: int = 0,
                license: str = "") -> tuple[DomainData, ImportReport]:
    """Read a SQLite path, a DDL file or a PostgreSQL DSN into a DomainData (nothing is written).

    Empty tables get `synthetic_rows` generated rows each (0: left empty); `dialect` is the DDL file's SQL dialect;
    `license` is the source's licence as the dataset card should state it (empty: unknown, or recognised)."""
    if is_postgres_dsn(source):
        raw = _read_postgres(source, pg_schema)
        shown = f"{_without_password(source)} schema {pg_schema}"
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"no SQLite or DDL file at {source}")
        raw = _read_ddl(path, dialect) if path.suffix.lower() in DDL_SUFFIXES else _read_sqlite(path)
        shown = str(path)
    data, report = build_domain(name, raw, shown)
    report.synthetic_rows = fill_empty_tables(data, rows_per_table=synthetic_rows, seed=seed)
    for table, count in report.synthetic_rows.items():
        report.notes.append(f"{table}: empty in the source; filled with {count} synthetic rows (Faker, seed {seed})")
    report.rows = sum(len(r) for r in data.rows.values())
    data.db_schema.provenance = Provenance(source=shown, license=license or known_license(source),
                                           synthetic_rows=report.synthetic_rows)
    return data, report


def import_database(dsn: str, source: str, name: str, *, pg_schema: str = "public", replace: bool = True,
                    dialect: str = "sqlite", synthetic_rows: int = DEFAULT_ROWS_PER_TABLE, seed: int = 0,
                    license: str = "") -> ImportReport:
    """Load the source into the PostgreSQL at `dsn` as domain `name` (registered like the demo domains)."""
    data, report = read_source(source, name, pg_schema=pg_schema, dialect=dialect, synthetic_rows=synthetic_rows,
                               seed=seed, license=license)
    SandboxManager(dsn).register_domain(data, replace=replace)
    return report


def known_license(source: str) -> str:
    """The licence of a source recognised by its place: Spider's databases sit in `spider/<db>/`."""
    parts = Path(source).parts
    if not is_postgres_dsn(source) and len(parts) >= 3 and parts[-3].lower() == "spider":
        return "CC BY-SA 4.0 (Spider, Yu et al. 2018)"
    return ""


def domain_name_for(source: str) -> str:
    """A default domain name: the file's stem, or the PostgreSQL database name."""
    if is_postgres_dsn(source):
        tail = source.rsplit("/", 1)[-1].split("?")[0]
        return normalise_name(tail or "imported")
    return normalise_name(Path(source).stem)


# --- reading --------------------------------------------------------------------------------------


def _read_sqlite(path: Path) -> list[_RawTable]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.text_factory = lambda b: b.decode("utf-8", errors="replace")
    try:
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid")]
        tables = []
        for t in names:
            info = conn.execute(f"PRAGMA table_info({_sqlite_quote(t)})").fetchall()
            columns = [_RawColumn(r[1], r[2] or "", bool(r[3])) for r in info]
            pk = [r[1] for r in sorted((r for r in info if r[5]), key=lambda r: r[5])]
            fks: dict[int, tuple[list[str], str, list[str]]] = {}
            for r in conn.execute(f"PRAGMA foreign_key_list({_sqlite_quote(t)})").fetchall():
                cols, ref, refcols = fks.setdefault(r[0], ([], r[2], []))
                cols.append(r[3])
                if r[4] is not None:
                    refcols.append(r[4])
            rows = [list(r) for r in conn.execute(f"SELECT * FROM {_sqlite_quote(t)}")]
            tables.append(_RawTable(t, columns, pk, list(fks.values()), rows, _sqlite_unique_keys(conn, t)))
        return tables
    finally:
        conn.close()


def _sqlite_unique_keys(conn: sqlite3.Connection, table: str) -> list[list[str]]:
    """Column sets of the table's UNIQUE constraints (index origin 'u'; 'pk' is the primary key, 'c' an index)."""
    keys = []
    for index in conn.execute(f"PRAGMA index_list({_sqlite_quote(table)})").fetchall():
        _, index_name, unique, origin = index[:4]
        if unique and origin == "u":
            info = conn.execute(f"PRAGMA index_info({_sqlite_quote(index_name)})").fetchall()
            keys.append([r[2] for r in sorted(info)])
    return keys


def _sqlite_quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _read_postgres(dsn: str, schema: str) -> list[_RawTable]:
    with psycopg.connect(dsn) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_type = 'BASE TABLE'"
            " ORDER BY table_name", (schema,))]
        if not names:
            raise ValueError(f"schema {schema!r} has no tables")
        tables = []
        for t in names:
            cols = conn.execute(
                "SELECT column_name, data_type, is_nullable = 'NO' FROM information_schema.columns"
                " WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position", (schema, t)).fetchall()
            qualified = f"{pgsql.Identifier(schema).as_string(conn)}.{pgsql.Identifier(t).as_string(conn)}"
            pk = [r[0] for r in conn.execute(
                """SELECT a.attname::text FROM pg_constraint c
                   CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
                   JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
                   WHERE c.contype = 'p' AND c.conrelid = to_regclass(%s) ORDER BY k.ord""", (qualified,))]
            uniques = [list(r[0]) for r in conn.execute(
                """SELECT (SELECT array_agg(a.attname::text ORDER BY k.ord) FROM unnest(c.conkey) WITH ORDINALITY
                           AS k(attnum, ord) JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum)
                   FROM pg_constraint c WHERE c.contype = 'u' AND c.conrelid = to_regclass(%s)""", (qualified,))]
            fks = []
            for cols_, ref, refcols in conn.execute(
                """SELECT (SELECT array_agg(a.attname::text ORDER BY k.ord) FROM unnest(c.conkey) WITH ORDINALITY
                           AS k(attnum, ord) JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum),
                          cl.relname::text,
                          (SELECT array_agg(a.attname::text ORDER BY k.ord) FROM unnest(c.confkey) WITH ORDINALITY
                           AS k(attnum, ord) JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum)
                   FROM pg_constraint c JOIN pg_class cl ON cl.oid = c.confrelid
                   WHERE c.contype = 'f' AND c.conrelid = to_regclass(%s)""", (qualified,)):
                fks.append((list(cols_), ref, list(refcols)))
            select = pgsql.SQL("SELECT {} FROM {}.{}").format(
                pgsql.SQL(", ").join(pgsql.Identifier(c[0]) for c in cols),
                pgsql.Identifier(schema), pgsql.Identifier(t))
            rows = [list(r) for r in conn.execute(select)]
            tables.append(_RawTable(t, [_RawColumn(c[0], c[1], c[2]) for c in cols], pk, fks, rows, uniques))
        return tables


def _read_ddl(path: Path, dialect: str) -> list[_RawTable]:
    """CREATE TABLE statements (and the rows of INSERT ... VALUES statements, if any) of a DDL file.

    Column types are written out in PostgreSQL's spelling and then mapped like the other sources' declared types."""
    statements = [s for s in sqlglot.parse(path.read_text(errors="replace"), read=dialect) if s is not None]
    tables = [_ddl_table(s) for s in statements if isinstance(s, exp.Create) and s.kind == "TABLE"]
    by_lower = {t.name.lower(): t for t in tables}
    for insert in (s for s in statements if isinstance(s, exp.Insert)):
        _add_inserted_rows(insert, by_lower)
    return tables


def _ddl_table(create: exp.Create) -> _RawTable:
    schema = create.this
    if not isinstance(schema, exp.Schema):
        raise ValueError(f"CREATE TABLE {create.this.sql()} has no column list (CREATE TABLE ... AS is not read)")
    table = _RawTable(schema.this.name, [], [], [], [])
    for part in schema.expressions:
        if isinstance(part, exp.ColumnDef):
            _add_ddl_column(table, part)
        else:
            _add_ddl_table_constraint(table, part.expressions[0] if isinstance(part, exp.Constraint) else part)
    return table


def _add_ddl_column(table: _RawTable, column: exp.ColumnDef) -> None:
    kinds = [c.kind for c in column.constraints]
    declared = column.args["kind"].sql("postgres") if column.args.get("kind") else ""
    primary = any(isinstance(k, exp.PrimaryKeyColumnConstraint) for k in kinds)
    not_null = primary or any(isinstance(k, exp.NotNullColumnConstraint) and not k.args.get("allow_null")
                              for k in kinds)
    table.columns.append(_RawColumn(column.name, declared, not_null))
    if primary:
        table.primary_key = [column.name]
    if any(isinstance(k, exp.UniqueColumnConstraint) for k in kinds):
        table.unique_keys.append([column.name])
    for reference in (k for k in kinds if isinstance(k, exp.Reference)):
        table.foreign_keys.append(([column.name], *_referenced(reference)))


def _add_ddl_table_constraint(table: _RawTable, constraint: exp.Expression) -> None:
    if isinstance(constraint, exp.PrimaryKey):
        table.primary_key = [c.name for c in constraint.expressions]
    elif isinstance(constraint, exp.UniqueColumnConstraint) and isinstance(constraint.this, exp.Schema):
        table.unique_keys.append([c.name for c in constraint.this.expressions])
    elif isinstance(constraint, exp.ForeignKey):
        columns = [c.name for c in constraint.expressions]
        table.foreign_keys.append((columns, *_referenced(constraint.args["reference"])))


def _referenced(reference: exp.Reference) -> tuple[str, list[str]]:
    """(table, columns) a REFERENCES clause names; no columns means the table's primary key."""
    target = reference.this
    if isinstance(target, exp.Schema):
        return target.this.name, [c.name for c in target.expressions]
    return target.name, []


def _add_inserted_rows(insert: exp.Insert, tables: dict[str, _RawTable]) -> None:
    target = insert.this
    table = tables.get((target.this if isinstance(target, exp.Schema) else target).name.lower())
    if table is None or not isinstance(insert.expression, exp.Values):
        raise ValueError(f"cannot load {insert.sql()[:80]}: only INSERT ... VALUES into a table the file creates")
    named = [c.name.lower() for c in target.expressions] if isinstance(target, exp.Schema) else None
    order = [c.name.lower() for c in table.columns]
    for values in insert.expression.expressions:
        literals = [_literal(v) for v in values.expressions]
        if named is None:
            table.rows.append(literals)
        else:
            given = dict(zip(named, literals))
            table.rows.append([given.get(c) for c in order])


def _literal(value: exp.Expression) -> Any:
    """A VALUES entry as a Python value; expressions other than constants are not evaluated."""
    if isinstance(value, exp.Null):
        return None
    if isinstance(value, exp.Boolean):
        return value.this
    if isinstance(value, exp.Neg) and isinstance(value.this, exp.Literal) and not value.this.is_string:
        return -_literal(value.this)
    if isinstance(value, exp.Literal):
        if value.is_string:
            return value.this
        number = Decimal(value.this)
        return int(number) if number == number.to_integral_value() and "." not in value.this else number
    raise ValueError(f"cannot load the value {value.sql()}: only constants are read from INSERT statements")


def _without_password(dsn: str) -> str:
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", dsn)


# --- names and types --------------------------------------------------------------------------------


def normalise_name(name: str) -> str:
    """Lower-case snake case: 'Member_of_club' -> 'member_of_club', 'Order Date' -> 'order_date'."""
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name.strip()) if not name.isupper() else name
    s = re.sub(r"[^a-z0-9]+", "_", s.lower()).strip("_") or "x"
    return "c_" + s if s[0].isdigit() else s


def _unique_names(names: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    taken: set[str] = set()
    for n in names:
        base = normalise_name(n)
        cand, i = base, 2
        while cand in taken:
            cand, i = f"{base}_{i}", i + 1
        out[n] = cand
        taken.add(cand)
    return out


def _declared_type(declared: str) -> str:
    """SQLite's affinity rules, extended with date, time and boolean names; PostgreSQL names map through."""
    d = declared.lower()
    if "bool" in d:
        return "boolean"
    if "timestamp" in d or "datetime" in d:
        return "timestamp"
    if d.startswith("date"):
        return "date"
    if "bigint" in d or d in ("int8",):
        return "bigint"
    if "int" in d or d == "year":
        return "integer"
    if any(w in d for w in ("char", "clob", "text", "uuid", "json")):
        return "text"
    if any(w in d for w in ("real", "floa", "doub")):
        return "double precision"
    if "numeric" in d or "decimal" in d or "money" in d or "number" in d:
        return "numeric"
    return ""  # no declared type: inferred from the values


def _convert(value: Any, pg_type: str) -> Any:
    """The value as the type wants it; raises ValueError when it does not fit."""
    if value is None:
        return None
    if isinstance(value, bytes):
        raise ValueError("binary value")
    if pg_type == "text":
        return value if isinstance(value, str) else str(value)
    if isinstance(value, str) and value.strip().lower() in NULL_WORDS:
        return None
    if pg_type in ("integer", "bigint"):
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, (int, Decimal)) or (isinstance(value, float) and value.is_integer()):
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+(\.0*)?\s*", value):
            return int(float(value)) if "." in value else int(value)
        raise ValueError(f"not an integer: {value!r}")
    if pg_type in ("numeric", "double precision"):
        if isinstance(value, bool):
            raise ValueError("boolean in a number column")
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValueError(f"not a number: {value!r}") from None
        if not number.is_finite():
            raise ValueError(f"not a finite number: {value!r}")
        return number if pg_type == "numeric" else float(number)
    if pg_type == "boolean":
        if isinstance(value, bool):
            return value
        word = str(value).strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ValueError(f"not a boolean: {value!r}")
    if pg_type == "date":
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        return dt.date.fromisoformat(str(value).strip()[:10])
    if pg_type == "timestamp":
        if isinstance(value, dt.datetime):
            return value.replace(tzinfo=None)
        if isinstance(value, dt.date):
            return dt.datetime(value.year, value.month, value.day)
        return dt.datetime.fromisoformat(str(value).strip()).replace(tzinfo=None)
    raise ValueError(f"unknown type {pg_type}")


def _infer_type(values: list[Any]) -> str:
    present = [v for v in values if v is not None and not (isinstance(v, str) and v.strip().lower() in NULL_WORDS)]
    if not present:
        return "text"
    for t in ("integer", "numeric", "date", "timestamp"):
        try:
            for v in present:
                _convert(v, t)
            return t
        except ValueError:
            continue
    return "text"


def _column_type(declared: str, values: list[Any]) -> tuple[str, list[Any], str]:
    """(type, converted values, note) — the declared type if every value fits it, else a looser one."""
    wanted = _declared_type(declared) or _infer_type(values)
    for t in dict.fromkeys([wanted, *( ["numeric"] if wanted in ("integer", "bigint") else []), "text"]):
        try:
            converted = [_convert(v, t) for v in values]
        except (ValueError, TypeError, OverflowError):
            continue
        if t == "integer" and any(v is not None and abs(v) > INT32_MAX for v in converted):
            t = "bigint"
        note = "" if t == wanted or (wanted, t) == ("integer", "bigint") else \
            f"values do not fit {declared or 'the inferred type'} ({wanted}); stored as {t}"
        return t, converted, note
    raise AssertionError("text accepts every value")


# --- building the domain ----------------------------------------------------------------------------


def build_domain(name: str, raw_tables: list[_RawTable], source: str) -> tuple[DomainData, ImportReport]:
    report = ImportReport(domain=name, source=source)
    if not raw_tables:
        raise ValueError(f"{source} has no tables")
    table_names = _unique_names(t.name for t in raw_tables)
    by_lower = {t.name.lower(): t for t in raw_tables}
    tables: dict[str, Table] = {}
    rows: dict[str, list[list[Any]]] = {}
    col_maps: dict[str, dict[str, str]] = {}
    for raw in raw_tables:
        tname = table_names[raw.name]
        if tname != raw.name:
            report.renamed[raw.name] = tname
        col_map = _unique_names(c.name for c in raw.columns)
        col_maps[raw.name.lower()] = {k.lower(): v for k, v in col_map.items()}
        columns, converted_columns = [], []
        for i, rc in enumerate(raw.columns):
            values = [r[i] for r in raw.rows]
            pg_type, converted, note = _column_type(rc.declared, values)
            if note:
                report.notes.append(f"{tname}.{col_map[rc.name]}: {note}")
            columns.append(Column(name=col_map[rc.name], type=pg_type, nullable=not rc.not_null))
            converted_columns.append(converted)
            if col_map[rc.name] != rc.name:
                report.renamed[f"{raw.name}.{rc.name}"] = f"{tname}.{col_map[rc.name]}"
        table_rows = [list(r) for r in zip(*converted_columns)] if raw.rows else []
        stored = col_maps[raw.name.lower()]
        pk = [stored[c.lower()] for c in raw.primary_key if c.lower() in stored]
        uniques = [[stored[c.lower()] for c in key] for key in raw.unique_keys if all(c.lower() in stored for c in key)]
        table = Table(name=tname, columns=columns, primary_key=pk, unique_keys=uniques)
        _check_primary_key(table, table_rows, report)
        _check_unique_keys(table, table_rows, report)
        tables[tname] = table
        rows[tname] = table_rows
    for raw in raw_tables:
        table = tables[table_names[raw.name]]
        for cols, ref, refcols in raw.foreign_keys:
            fk = _resolve_foreign_key(table, col_maps[raw.name.lower()], cols, ref, refcols, by_lower, table_names,
                                      col_maps, tables, report)
            if fk is not None:
                _check_references(table, fk, tables, rows, report)
    ordered = _dependency_order(list(tables.values()), report)
    schema = DatabaseSchema(name=name, description=f"Imported from {source}.", tables=ordered)
    report.tables = len(ordered)
    report.rows = sum(len(r) for r in rows.values())
    report.foreign_keys = sum(len(t.foreign_keys) for t in ordered)
    return DomainData(db_schema=schema, rows=rows), report


def _check_primary_key(table: Table, rows: list[list[Any]], report: ImportReport) -> None:
    if not table.primary_key:
        return
    idx = [[c.name for c in table.columns].index(k) for k in table.primary_key]
    keys = [tuple(r[i] for i in idx) for r in rows]
    if any(None in k for k in keys) or len(set(keys)) != len(keys):
        report.notes.append(f"{table.name}: primary key ({', '.join(table.primary_key)}) dropped: "
                            "the rows repeat it or leave it empty")
        table.primary_key = []
        return
    for k in table.primary_key:
        table.column(k).nullable = False


def _check_unique_keys(table: Table, rows: list[list[Any]], report: ImportReport) -> None:
    """Keep the UNIQUE column sets the rows honour (rows may repeat a key that holds NULL, as in PostgreSQL)."""
    kept = []
    for key in table.unique_keys:
        if sorted(key) == sorted(table.primary_key) or any(sorted(key) == sorted(k) for k in kept):
            continue
        values = [k for k in zip(*(_column_values(table, rows, c) for c in key)) if None not in k]
        if len(set(values)) == len(values):
            kept.append(key)
        else:
            report.notes.append(f"{table.name}: unique ({', '.join(key)}) dropped: the rows repeat it")
    table.unique_keys = kept


def _resolve_foreign_key(table, mine, cols, ref, refcols, by_lower, table_names, col_maps, tables, report):
    """The foreign key in stored names, if it references the parent's primary key (or a unique column set)."""
    shown = f"{table.name} ({', '.join(cols)}) -> {ref}"
    parent_raw = by_lower.get(ref.lower())
    if parent_raw is None:
        report.notes.append(f"foreign key {shown} dropped: no table {ref}")
        return None
    parent = tables[table_names[parent_raw.name]]
    theirs = col_maps[parent_raw.name.lower()]
    try:
        local = [mine[c.lower()] for c in cols]
        remote = [theirs[c.lower()] for c in refcols] if refcols else list(parent.primary_key)
    except KeyError as e:
        report.notes.append(f"foreign key {shown} dropped: no column {e}")
        return None
    if not remote or len(remote) != len(local):
        report.notes.append(f"foreign key {shown} dropped: {parent.name} has no primary key to reference")
        return None
    return ForeignKey(columns=local, ref_table=parent.name, ref_columns=remote)


def _column_values(table: Table, rows: list[list[Any]], column: str) -> list[Any]:
    i = [c.name for c in table.columns].index(column)
    return [r[i] for r in rows]


def _set_column_values(table: Table, rows: list[list[Any]], column: str, values: list[Any]) -> None:
    i = [c.name for c in table.columns].index(column)
    for r, v in zip(rows, values):
        r[i] = v


def _align_types(table: Table, fk: ForeignKey, parent: Table, rows: dict, report: ImportReport) -> str:
    """Make each referencing column the referenced column's type (or the other way round) when the values allow."""
    for lc, rc in zip(fk.columns, fk.ref_columns):
        child, par = table.column(lc), parent.column(rc)
        if child.type == par.type:
            continue
        if {child.type, par.type} <= {"integer", "bigint"}:
            child.type = par.type = "bigint"
            continue
        for fixed, other, fixed_rows in ((child, par, rows[table.name]), (par, child, rows[parent.name])):
            owner = table if fixed is child else parent
            try:
                converted = [_convert(v, other.type) for v in _column_values(owner, fixed_rows, fixed.name)]
            except (ValueError, TypeError):
                continue
            _set_column_values(owner, fixed_rows, fixed.name, converted)
            report.notes.append(f"{owner.name}.{fixed.name}: stored as {other.type} (was {fixed.type}) to match "
                                f"the column it {'references' if fixed is child else 'is referenced by'}")
            fixed.type = other.type
            break
        else:
            return f"{lc} is {child.type} but {parent.name}.{rc} is {par.type}"
    return ""


def _ensure_referencable(parent: Table, fk: ForeignKey, rows: dict) -> str:
    """The referenced columns must be the primary key or hold unique, non-empty values (then declared UNIQUE)."""
    if sorted(fk.ref_columns) == sorted(parent.primary_key):
        return ""
    if any(sorted(u) == sorted(fk.ref_columns) for u in parent.unique_keys):
        return ""
    keys = list(zip(*(_column_values(parent, rows[parent.name], c) for c in fk.ref_columns)))
    if any(None in k for k in keys) or len(set(keys)) != len(keys):
        return f"{parent.name} ({', '.join(fk.ref_columns)}) is neither its primary key nor unique"
    parent.unique_keys.append(list(fk.ref_columns))
    for c in fk.ref_columns:
        parent.column(c).nullable = False
    return ""


def _check_references(table: Table, fk: ForeignKey, tables: dict[str, Table], rows: dict, report: ImportReport) -> None:
    """Keep the foreign key if the rows honour it, after mending what is plainly a data slip:
    padding spaces around a referenced code, or a few references to missing rows (set to NULL)."""
    parent = tables[fk.ref_table]
    shown = f"foreign key {table.name} ({', '.join(fk.columns)}) -> {parent.name}"
    problem = _align_types(table, fk, parent, rows, report) or _ensure_referencable(parent, fk, rows)
    if problem:
        report.notes.append(f"{shown} dropped: {problem}")
        return
    existing = set(zip(*(_column_values(parent, rows[parent.name], c) for c in fk.ref_columns)))
    columns = [_column_values(table, rows[table.name], c) for c in fk.columns]
    refs = list(zip(*columns))

    def missing_rows(keys) -> list[int]:
        return [i for i, k in enumerate(keys) if None not in k and k not in existing]

    missing = missing_rows(refs)
    if missing and all(table.column(c).type == "text" for c in fk.columns):
        stripped = [tuple(v.strip() if isinstance(v, str) else v for v in k) for k in refs]
        if len(missing_rows(stripped)) < len(missing):
            for j, c in enumerate(fk.columns):
                _set_column_values(table, rows[table.name], c, [k[j] for k in stripped])
            report.notes.append(f"{table.name}.{', '.join(fk.columns)}: surrounding spaces removed so that the "
                                f"values match {parent.name}")
            refs = stripped
            missing = missing_rows(refs)
    if missing and len(missing) <= max(1, len(refs) // 10) and all(table.column(c).nullable for c in fk.columns):
        for c in fk.columns:
            values = _column_values(table, rows[table.name], c)
            for i in missing:
                values[i] = None
            _set_column_values(table, rows[table.name], c, values)
        report.notes.append(f"{shown}: {len(missing)} of {len(refs)} rows referenced missing rows; "
                            "their reference was set to NULL")
        missing = []
    if missing:
        report.notes.append(f"{shown} dropped: {len(missing)} of {len(refs)} rows reference missing rows")
        return
    table.foreign_keys.append(fk)


def _dependency_order(tables: list[Table], report: ImportReport) -> list[Table]:
    """Referenced tables first; a foreign key that closes a cycle between tables is dropped (recorded)."""
    ordered: list[Table] = []
    placed: set[str] = set()
    pending = list(tables)
    while pending:
        ready = [t for t in pending if all(fk.ref_table in placed or fk.ref_table == t.name for fk in t.foreign_keys)]
        if not ready:
            # a cycle: drop the references of the table that has fewest of them outside `placed`
            victim = min(pending, key=lambda t: sum(fk.ref_table not in placed for fk in t.foreign_keys))
            dropped = [fk for fk in victim.foreign_keys if fk.ref_table not in placed and fk.ref_table != victim.name]
            victim.foreign_keys = [fk for fk in victim.foreign_keys if fk not in dropped]
            for fk in dropped:
                report.notes.append(f"foreign key {victim.name} ({', '.join(fk.columns)}) -> {fk.ref_table} dropped: "
                                    "it closes a cycle of references")
            continue
        for t in ready:
            ordered.append(t)
            placed.add(t.name)
        pending = [t for t in pending if t.name not in placed]
    return ordered
