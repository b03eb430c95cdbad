"""import-db: SQLite files, DDL files and PostgreSQL schemas become domain databases with their keys and foreign
keys; tables the source leaves empty are filled with synthetic rows that honour them.

The Spider DDL cases use ../shared/data/spider (or $TURNFORGE_SPIDER_DIR) and skip when it is missing."""
from __future__ import annotations

import os
import random
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import psycopg
import pytest

from shared.runtime.config import Settings
from shared.data.import_db import import_database, normalise_name, read_source
from shared.env.dbschema import DomainData
from shared.env.sandbox import SandboxManager, domain_schema_name
from shared.toolgen.preparation import prepare_database_tools

REPO = Path(__file__).resolve().parents[1]
SPIDER_DIR = Path(os.environ.get("TURNFORGE_SPIDER_DIR", REPO.parent / "shared" / "data" / "spider"))

SQLITE_DDL = """
CREATE TABLE "Club" ("Club_ID" INTEGER PRIMARY KEY, "Name" VARCHAR(40), "Founded" TEXT);
CREATE TABLE "Player" (
  "Player_ID" INT PRIMARY KEY, "Name" TEXT, "Club_ID" TEXT, "Earnings" REAL, "Joined" DATETIME,
  "Airport" TEXT,
  FOREIGN KEY ("Club_ID") REFERENCES "Club"("Club_ID"),
  FOREIGN KEY ("Airport") REFERENCES "Airports"("Code"));
CREATE TABLE "Airports" ("Code" TEXT PRIMARY KEY, "City" TEXT);
CREATE TABLE "Dup" ("k" INTEGER PRIMARY KEY, "v" TEXT);
CREATE TABLE "Dangling" ("id" INTEGER PRIMARY KEY, "club" INTEGER NOT NULL REFERENCES "Club"("Club_ID"));
"""


def make_sqlite(path) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(SQLITE_DDL)
    conn.executemany('INSERT INTO "Club" VALUES (?, ?, ?)', [(1, "Ajax", "1900"), (2, "Benfica", "1904")])
    conn.executemany('INSERT INTO "Airports" VALUES (?, ?)', [("AMS", "Amsterdam"), ("LIS", "Lisbon")])
    conn.executemany('INSERT INTO "Player" VALUES (?, ?, ?, ?, ?, ?)', [
        (1, "Ann Smit", "1", 1200.5, "2020-01-02 10:00:00", " AMS"),  # a padded code, as in Spider's flight_2
        (2, "Bo Lima", "2", "null", "2021-05-06 09:30:00", "LIS"),  # a "null" text in a REAL column
        (3, "Cy Dorn", "2", 99, "not a date", "AMS"),  # one value that is no timestamp
    ])
    conn.execute('PRAGMA ignore_check_constraints = 1')
    conn.executemany('INSERT INTO "Dangling" VALUES (?, ?)', [(1, 1), (2, 7)])  # 7: no such club
    conn.commit()
    conn.close()


def test_sqlite_schema_types_and_repairs_are_recorded(tmp_path):
    path = tmp_path / "league.sqlite"
    make_sqlite(path)
    data, report = read_source(str(path), "league")
    schema = data.db_schema
    assert schema.table_names.index("club") < schema.table_names.index("player")  # parents first
    player = schema.table("player")
    assert player.primary_key == ["player_id"]
    assert player.column("club_id").type == "integer"  # made the referenced key's type: its values are all ids
    assert player.column("earnings").type == "double precision"
    assert player.column("joined").type == "text"  # one value is not a timestamp: kept as text, not lost
    fks = {(tuple(fk.columns), fk.ref_table) for fk in player.foreign_keys}
    assert fks == {(("club_id",), "club"), (("airport",), "airports")}
    rows = {r[0]: r for r in data.rows["player"]}
    assert rows[2][3] is None and rows[1][5] == "AMS"
    assert schema.table("dangling").foreign_keys == []  # a NOT NULL reference to a missing row: key dropped
    notes = "\n".join(report.notes)
    assert "player.joined" in notes and "surrounding spaces" in notes and "dangling" in notes


def test_names_are_folded_to_snake_case():
    assert normalise_name("Member_of_club") == "member_of_club"
    assert normalise_name("ACCOUNTS") == "accounts"
    assert normalise_name("BlockFloor") == "block_floor"
    assert normalise_name("Order Date") == "order_date"


@pytest.mark.integration
def test_imported_domain_keeps_keys_in_postgres(tmp_path, postgres_dsn):
    path = tmp_path / "league.sqlite"
    make_sqlite(path)
    report = import_database(postgres_dsn, str(path), "league")
    assert report.tables == 5 and report.foreign_keys == 2
    schema = domain_schema_name("league")
    with psycopg.connect(postgres_dsn) as conn:
        kinds = conn.execute(
            "SELECT c.conrelid::regclass::text, c.contype FROM pg_constraint c JOIN pg_namespace n "
            "ON n.oid = c.connamespace WHERE n.nspname = %s AND c.contype IN ('p', 'f') ORDER BY 1, 2",
            (schema,)).fetchall()
        assert (f"{schema}.player", "f") in kinds and (f"{schema}.club", "p") in kinds
        assert conn.execute(f"SELECT count(*) FROM {schema}.player").fetchone()[0] == 3
    assert "league" in SandboxManager(postgres_dsn).domains()  # registered like the demo domains


@pytest.mark.integration
def test_postgres_schema_source(postgres_dsn):
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA shop")
        conn.execute("CREATE TABLE shop.customers (id serial PRIMARY KEY, name text NOT NULL, vip boolean)")
        conn.execute("CREATE TABLE shop.orders (id int PRIMARY KEY, customer_id int REFERENCES shop.customers, "
                     "total numeric(8,2), placed date)")
        conn.execute("INSERT INTO shop.customers (name, vip) VALUES ('Ann', true), ('Bo', false)")
        conn.execute("INSERT INTO shop.orders VALUES (1, 1, 10.50, '2024-03-01'), (2, 2, 7, '2024-03-02')")
    report = import_database(postgres_dsn, postgres_dsn, "shop_copy", pg_schema="shop")
    assert report.tables == 2 and report.foreign_keys == 1 and report.rows == 4
    schema = SandboxManager(postgres_dsn).domain_schema("shop_copy")
    orders = schema.table("orders")
    assert [c.type for c in orders.columns] == ["integer", "integer", "numeric", "date"]
    assert orders.foreign_keys[0].ref_table == "customers"


@pytest.mark.integration
def test_cli_import_db(tmp_path, postgres_dsn, capsys):
    from shared.cli.tools import cmd_import_db

    path = tmp_path / "league.sqlite"
    make_sqlite(path)
    settings = Settings(postgres={"dsn": postgres_dsn})
    args = SimpleNamespace(source=str(path), name=None, schema="public", dialect="sqlite", synthetic_rows=30, seed=0,
                           license="")
    assert cmd_import_db(args, settings) == 0
    out = capsys.readouterr().out
    assert "domain league: 5 tables, 39 rows, 2 foreign keys" in out  # 9 imported, 30 synthetic in the empty table
    assert "dup: empty in the source; filled with 30 synthetic rows" in out


@pytest.mark.parametrize("bad", ["/nonexistent/x.sqlite"])
def test_missing_file_is_reported(bad):
    with pytest.raises(FileNotFoundError):
        read_source(bad, "x")


# --- schema-only sources: DDL files and empty tables ------------------------------------------------------------

# Keys of every kind the filler must honour: a text primary key, UNIQUE columns, NOT NULL references, a nullable
# self-reference, a composite primary key, and a composite foreign key onto it.
STAFF_DDL = """
CREATE TABLE department (dept_code VARCHAR(4) PRIMARY KEY, name TEXT NOT NULL UNIQUE, budget DECIMAL(10,2));
CREATE TABLE employee (
  emp_id INTEGER PRIMARY KEY, email VARCHAR(80) NOT NULL UNIQUE, first_name TEXT NOT NULL, last_name TEXT NOT NULL,
  dept_code VARCHAR(4) NOT NULL REFERENCES department(dept_code), manager_id INTEGER REFERENCES employee(emp_id),
  hired DATE, salary REAL, active BOOLEAN);
CREATE TABLE project (project_id INTEGER PRIMARY KEY, title TEXT NOT NULL, dept_code VARCHAR(4) REFERENCES department);
CREATE TABLE assignment (
  emp_id INTEGER NOT NULL, project_id INTEGER NOT NULL, role TEXT, hours NUMERIC,
  PRIMARY KEY (emp_id, project_id),
  FOREIGN KEY (emp_id) REFERENCES employee(emp_id), FOREIGN KEY (project_id) REFERENCES project(project_id));
CREATE TABLE timesheet (
  emp_id INTEGER NOT NULL, project_id INTEGER NOT NULL, week DATE NOT NULL, hours INTEGER NOT NULL,
  CONSTRAINT timesheet_pk PRIMARY KEY (emp_id, project_id, week),
  FOREIGN KEY (emp_id, project_id) REFERENCES assignment (emp_id, project_id));
"""


def staff_ddl(tmp_path) -> Path:
    path = tmp_path / "staff.sql"
    path.write_text(STAFF_DDL)
    return path


def column_values(data: DomainData, table: str, columns: list[str]) -> list[tuple]:
    names = [c.name for c in data.db_schema.table(table).columns]
    return [tuple(row[names.index(c)] for c in columns) for row in data.rows[table]]


def assert_constraints_hold(data: DomainData) -> None:
    for table in data.db_schema.tables:
        for column in table.columns:
            if not column.nullable:
                assert None not in {v for (v,) in column_values(data, table.name, [column.name])}, column.name
        for key in [table.primary_key, *table.unique_keys]:
            keys = [k for k in column_values(data, table.name, key) if None not in k]
            assert len(set(keys)) == len(keys), f"{table.name} repeats ({', '.join(key)})"
        for fk in table.foreign_keys:
            parent_keys = set(column_values(data, fk.ref_table, fk.ref_columns))
            refs = [k for k in column_values(data, table.name, fk.columns) if None not in k]
            assert refs and set(refs) <= parent_keys, f"{table.name} ({', '.join(fk.columns)}) -> {fk.ref_table}"


def test_ddl_file_is_read_with_its_keys(tmp_path):
    data, report = read_source(str(staff_ddl(tmp_path)), "staff", synthetic_rows=0)
    schema = data.db_schema
    assert schema.table_names.index("assignment") < schema.table_names.index("timesheet")
    employee = schema.table("employee")
    assert [c.type for c in employee.columns] == ["integer", "text", "text", "text", "text", "integer", "date",
                                                  "double precision", "boolean"]
    assert employee.unique_keys == [["email"]] and not employee.column("dept_code").nullable
    assert {(tuple(fk.columns), fk.ref_table) for fk in employee.foreign_keys} == {
        (("dept_code",), "department"), (("manager_id",), "employee")}
    assert schema.table("timesheet").primary_key == ["emp_id", "project_id", "week"]
    assert schema.table("timesheet").foreign_keys[0].ref_columns == ["emp_id", "project_id"]
    assert schema.table("project").foreign_keys[0].ref_columns == ["dept_code"]  # REFERENCES department: its key
    assert report.rows == 0 and report.synthetic_rows == {}  # 0: empty tables stay empty


def test_empty_tables_are_filled_with_rows_that_honour_the_schema(tmp_path):
    data, report = read_source(str(staff_ddl(tmp_path)), "staff", synthetic_rows=25, seed=7)
    assert_constraints_hold(data)
    assert report.synthetic_rows == {t: len(data.rows[t]) for t in data.db_schema.table_names}
    assert all(20 <= n <= 25 for n in report.synthetic_rows.values()), report.synthetic_rows
    assert report.rows == sum(report.synthetic_rows.values())
    assert data.db_schema.provenance.synthetic_rows == report.synthetic_rows
    assert any("synthetic rows" in n for n in report.notes)
    managers = [m for (m,) in column_values(data, "employee", ["manager_id"])]
    assert managers[0] is None and any(m is not None for m in managers)  # a root, then a hierarchy
    emails = [e for (e,) in column_values(data, "employee", ["email"])]
    assert all("@" in e for e in emails)  # the generator follows the column's name


def test_synthetic_rows_are_deterministic_for_a_seed(tmp_path):
    path = str(staff_ddl(tmp_path))
    first, _ = read_source(path, "staff", seed=3)
    again, _ = read_source(path, "staff", seed=3)
    other, _ = read_source(path, "staff", seed=4)
    assert first.rows == again.rows
    assert first.rows["employee"] != other.rows["employee"]


def test_only_empty_tables_are_filled(tmp_path):
    path = tmp_path / "partly.sql"
    path.write_text(STAFF_DDL + "INSERT INTO department (dept_code, name) VALUES ('OPS', 'Operations'), "
                                "('RND', 'Research');\n")
    data, report = read_source(str(path), "partly", synthetic_rows=10)
    assert column_values(data, "department", ["dept_code", "name", "budget"]) == [
        ("OPS", "Operations", None), ("RND", "Research", None)]
    assert "department" not in report.synthetic_rows and report.synthetic_rows["employee"] == 10
    assert {d for (d,) in column_values(data, "employee", ["dept_code"])} <= {"OPS", "RND"}


def test_sqlite_unique_constraints_are_kept(tmp_path):
    path = tmp_path / "models.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript('CREATE TABLE "Model" (id INTEGER PRIMARY KEY, "Name" TEXT UNIQUE, maker TEXT);'
                       'CREATE TABLE "Part" (id INTEGER PRIMARY KEY, code TEXT, UNIQUE (code, id));')
    conn.execute('INSERT INTO "Model" VALUES (1, \'A\', \'x\')')
    conn.commit()
    conn.close()
    data, _ = read_source(str(path), "models", synthetic_rows=0)
    assert data.db_schema.table("model").unique_keys == [["name"]]
    assert data.db_schema.table("part").unique_keys == [["code", "id"]]


@pytest.mark.integration
def test_filled_ddl_domain_loads_and_yields_verified_tools(tmp_path, postgres_dsn):
    report = import_database(postgres_dsn, str(staff_ddl(tmp_path)), "staff", seed=1)
    manager = SandboxManager(postgres_dsn)
    schema = manager.domain_schema("staff")  # PostgreSQL enforced every key while loading the rows
    assert schema.provenance.synthetic_rows == report.synthetic_rows
    with psycopg.connect(postgres_dsn) as conn:
        loaded = {t: conn.execute(f"SELECT count(*) FROM {domain_schema_name('staff')}.{t}").fetchone()[0]
                  for t in schema.table_names}
    assert loaded == report.synthetic_rows
    prepared = prepare_database_tools(manager.connection(), domain_schema_name("staff"), schema,
                                      synthesizer="template", rng=random.Random(0))
    kept_tables = {table for v in prepared.kept for table, _ in v.candidate.param_columns.values()}
    assert len(prepared.kept) >= 10
    assert not [v.reason for v in prepared.verifications if v.reason.startswith("no sample arguments")]
    assert {"employee", "assignment"} <= kept_tables


@pytest.mark.integration
@pytest.mark.parametrize("name", ["car_1", "flight_2"])
def test_spider_schema_only_databases_yield_verified_tools(name, postgres_dsn):
    ddl = SPIDER_DIR / name / f"{name}.sql"
    if not ddl.is_file():
        pytest.skip(f"Spider DDL {ddl} not found")
    report = import_database(postgres_dsn, str(ddl), name)
    manager = SandboxManager(postgres_dsn)
    assert report.rows > 0 and set(report.synthetic_rows) == set(manager.domain_schema(name).table_names)
    prepared = prepare_database_tools(manager.connection(), domain_schema_name(name), manager.domain_schema(name),
                                      synthesizer="template", rng=random.Random(0))
    assert len(prepared.kept) >= 10
    assert manager.domain_schema(name).provenance.license.startswith("CC BY-SA 4.0")
