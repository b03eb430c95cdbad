"""The demo domain databases: schema shape, referential integrity, value types and determinism."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from shared.env.dbschema import schema_ddl
from shared.data.demo_databases import DEMO_DOMAINS, build_demo

ALLOWED_TYPES = {"integer", "bigint", "text", "numeric(10,2)", "date", "timestamp", "boolean"}


def _singular_ok(pk: str) -> bool:
    return pk.endswith("_id") and len(pk) > 3


def _value_ok(value, type_: str) -> bool:
    if type_ in ("integer", "bigint"):
        return isinstance(value, int) and not isinstance(value, bool)
    if type_ == "numeric(10,2)":
        return isinstance(value, Decimal) and value.as_tuple().exponent == -2 and abs(value) < Decimal("1e8")
    if type_ == "date":
        return isinstance(value, date) and not isinstance(value, datetime) and date(2023, 1, 1) <= value <= date(2025, 12, 31)
    if type_ == "timestamp":
        return isinstance(value, datetime) and value.tzinfo is None and datetime(2023, 1, 1) <= value < datetime(2026, 1, 1)
    if type_ == "boolean":
        return isinstance(value, bool)
    if type_ == "text":
        return isinstance(value, str) and value != ""
    return False


@pytest.fixture(scope="module", params=DEMO_DOMAINS)
def demo(request):
    return request.param, build_demo(request.param)


def test_domain_list():
    assert DEMO_DOMAINS == ("telecom", "banking", "healthcare", "retail", "logistics", "education")


def test_schema_shape(demo):
    name, data = demo
    schema = data.db_schema
    assert schema.name == name and schema.description
    assert 4 <= len(schema.tables) <= 8
    assert len(set(schema.table_names)) == len(schema.tables)
    assert set(data.rows) == set(schema.table_names)
    for table in schema.tables:
        assert table.description
        assert len(table.primary_key) == 1 and _singular_ok(table.primary_key[0])
        pk = table.column(table.primary_key[0])
        assert pk.type == "integer" and not pk.nullable
        assert table.identity_column == pk.name
        assert len({c.name for c in table.columns}) == len(table.columns)
        assert {c.type for c in table.columns} <= ALLOWED_TYPES


def test_foreign_keys_reference_earlier_tables(demo):
    _, data = demo
    schema = data.db_schema
    seen: set[str] = set()
    total, refs = 0, {}
    for table in schema.tables:
        for fk in table.foreign_keys:
            total += 1
            assert len(fk.columns) == 1 and fk.ref_columns == fk.columns
            assert fk.ref_table in seen, f"{table.name} references {fk.ref_table} before it is defined"
            ref = schema.table(fk.ref_table)
            assert ref.primary_key == fk.ref_columns
            col, ref_col = table.column(fk.columns[0]), ref.column(fk.ref_columns[0])
            assert col.type == ref_col.type == "integer"
            refs.setdefault(table.name, set()).add(fk.ref_table)
        seen.add(table.name)
    assert total >= 3

    def depth(t: str) -> int:
        return 1 + max((depth(r) for r in refs.get(t, ())), default=0)

    assert max(depth(t) for t in schema.table_names) >= 3, "expected a chain a -> b -> c"


def test_rows_and_types(demo):
    _, data = demo
    total = 0
    for table in data.db_schema.tables:
        rows = data.rows[table.name]
        assert 40 <= len(rows) <= 300, table.name
        total += len(rows)
        for row in rows:
            assert len(row) == len(table.columns), table.name
            for col, value in zip(table.columns, row):
                if value is None:
                    assert col.nullable, f"{table.name}.{col.name} is NOT NULL"
                else:
                    assert _value_ok(value, col.type), f"{table.name}.{col.name}: {value!r} is not {col.type}"
        ids = [row[0] for row in rows]
        assert table.columns[0].name == table.primary_key[0]
        assert len(set(ids)) == len(ids), f"{table.name} has duplicate keys"
    assert total >= 400


def test_foreign_key_values_exist(demo):
    _, data = demo
    schema = data.db_schema
    for table in schema.tables:
        names = [c.name for c in table.columns]
        for fk in table.foreign_keys:
            ref = schema.table(fk.ref_table)
            ref_idx = [c.name for c in ref.columns].index(fk.ref_columns[0])
            keys = {row[ref_idx] for row in data.rows[ref.name]}
            idx = names.index(fk.columns[0])
            values = [row[idx] for row in data.rows[table.name]]
            assert any(v is not None for v in values)
            missing = {v for v in values if v is not None} - keys
            assert not missing, f"{table.name}.{fk.columns[0]} -> {ref.name}: {sorted(missing)[:5]}"


def test_search_and_aggregate_columns(demo):
    _, data = demo
    columns = [(t, c) for t in data.db_schema.tables for c in t.columns]
    types = {c.type for _, c in columns}
    assert {"text", "numeric(10,2)", "date", "timestamp"} <= types
    assert any(c.name == "created_at" and c.type == "timestamp" for _, c in columns)
    assert any(c.name in ("name", "last_name", "city") for _, c in columns)
    # a status-like text column with a small closed set of values
    for t, c in columns:
        if c.name == "status":
            idx = t.columns.index(c)
            values = {row[idx] for row in data.rows[t.name]}
            assert 2 <= len(values) <= 8
            break
    else:
        pytest.fail("no status column")


def test_ddl_renders_one_create_table_per_table(demo):
    _, data = demo
    ddl = schema_ddl(data.db_schema)
    assert len(ddl) == len(data.db_schema.tables)
    for stmt, table in zip(ddl, data.db_schema.tables):
        assert stmt.startswith(f'CREATE TABLE "{table.name}" (')
        assert stmt.count("FOREIGN KEY") == len(table.foreign_keys)


@pytest.mark.parametrize("name", DEMO_DOMAINS)
def test_deterministic_and_seeded(name):
    a, b = build_demo(name), build_demo(name, seed=7)
    assert a == b
    assert a.model_dump() == b.model_dump()
    other = build_demo(name, seed=8)
    assert other.db_schema == a.db_schema
    assert other.rows != a.rows


def test_unknown_domain_raises():
    with pytest.raises(ValueError):
        build_demo("astrology")
