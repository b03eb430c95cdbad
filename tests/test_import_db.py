"""import-db: SQLite files and PostgreSQL schemas become domain databases with their keys and foreign keys."""
from __future__ import annotations

import sqlite3
from types import SimpleNamespace

import psycopg
import pytest

from shared.runtime.config import Settings
from shared.data.import_db import import_database, normalise_name, read_source
from shared.env.sandbox import SandboxManager, domain_schema_name

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
    assert cmd_import_db(SimpleNamespace(source=str(path), name=None, schema="public"), settings) == 0
    out = capsys.readouterr().out
    assert "domain league: 5 tables, 9 rows, 2 foreign keys" in out


@pytest.mark.parametrize("bad", ["/nonexistent/x.sqlite"])
def test_missing_file_is_reported(bad):
    with pytest.raises(FileNotFoundError):
        read_source(bad, "x")
