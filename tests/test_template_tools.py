"""Template tools from a small schema, each verified against a real PostgreSQL before it is kept."""
from __future__ import annotations

import json
import random
from datetime import date, timedelta
from decimal import Decimal

import psycopg
import pytest

from shared.contracts import EffectKind, SeedEvent, ToolEffect
from shared.toolgen.templates import ToolCandidate, synthesize_template_tools
from shared.toolgen.toolset import toolset_from_verifications
from shared.toolgen.verify import json_schema_for_result, verify_tools
from shared.env.dbschema import Column, DatabaseSchema, ForeignKey, Table, identity_reset_sql, quote_ident, schema_ddl
from shared.env.sql_guard import check_statement

SCHEMA_NAME = "domain_test"
ROWS = 20

SHOP = DatabaseSchema(
    name="shop",
    description="A small web shop.",
    tables=[
        Table(
            name="customers",
            primary_key=["customer_id"],
            columns=[
                Column(name="customer_id", type="integer", nullable=False),
                Column(name="name", type="text", nullable=False, description="Full name of the customer."),
                Column(name="email", type="text", nullable=False),
                Column(name="city", type="text"),
                Column(name="signup_date", type="date", nullable=False),
                Column(name="created_at", type="timestamp", nullable=False),
            ],
        ),
        Table(
            name="products",
            primary_key=["product_id"],
            columns=[
                Column(name="product_id", type="integer", nullable=False),
                Column(name="title", type="text", nullable=False),
                Column(name="category", type="text", nullable=False),
                Column(name="price", type="numeric(10,2)", nullable=False),
                Column(name="stock", type="integer", nullable=False),
                Column(name="active", type="boolean", nullable=False),
            ],
        ),
        Table(
            name="orders",
            primary_key=["order_id"],
            foreign_keys=[
                ForeignKey(columns=["customer_id"], ref_table="customers", ref_columns=["customer_id"]),
                ForeignKey(columns=["product_id"], ref_table="products", ref_columns=["product_id"]),
            ],
            columns=[
                Column(name="order_id", type="integer", nullable=False),
                Column(name="customer_id", type="integer", nullable=False),
                Column(name="product_id", type="integer", nullable=False),
                Column(name="quantity", type="integer", nullable=False),
                Column(name="total", type="numeric(10,2)", nullable=False),
                Column(name="status", type="text", nullable=False, description="One of 'new', 'paid', 'shipped'."),
                Column(name="order_date", type="date", nullable=False),
                Column(name="note", type="text"),
                Column(name="created_at", type="timestamp", nullable=False),
            ],
        ),
    ],
)

FIRST = ["Amelia", "Liam", "Olivia", "Noah", "Emma", "Mateo", "Sofia", "Lucas", "Ava", "Ethan"]
LAST = ["Anderson", "Baker", "Castillo", "Dubois"]
CITIES = ["Springfield", "Riverton", "Lakeside", "Fairview", None]
CATEGORIES = ["books", "garden", "kitchen", "toys"]


def shop_rows(rng: random.Random) -> dict[str, list[list]]:
    day = date(2024, 1, 1)
    customers = [
        [i, f"{FIRST[i % 10]} {LAST[i % 4]}", f"user{i}@example.com", CITIES[i % 5], day + timedelta(days=i), "2024-01-01"]
        for i in range(1, ROWS + 1)
    ]
    products = [
        [i, f"Product {i} {CATEGORIES[i % 4]} set", CATEGORIES[i % 4], Decimal(rng.randint(100, 9999)) / 100,
         rng.randint(0, 50), i % 3 != 0]
        for i in range(1, ROWS + 1)
    ]
    orders = []
    for i in range(1, ROWS + 1):
        product = products[rng.randrange(ROWS)]
        quantity = rng.randint(1, 4)
        orders.append([
            i, rng.randint(1, ROWS // 2), product[0], quantity, product[3] * quantity,
            rng.choice(["new", "paid", "shipped"]), day + timedelta(days=30 + i),
            "gift wrap please" if i % 4 == 0 else None, "2024-02-01",
        ])
    return {"customers": customers, "products": products, "orders": orders}


@pytest.fixture
def shop_conn(postgres_dsn):
    """A connection to a database holding the shop in schema domain_test."""
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {SCHEMA_NAME}")
        conn.execute(f"SET search_path TO {SCHEMA_NAME}")
        for ddl in schema_ddl(SHOP):
            conn.execute(ddl)
        for table, rows in shop_rows(random.Random(7)).items():
            marks = ", ".join(["%s"] * len(rows[0]))
            with conn.cursor() as cur:
                cur.executemany(f"INSERT INTO {quote_ident(table)} VALUES ({marks})", rows)
            conn.execute(identity_reset_sql(SHOP.table(table)))
        conn.execute("RESET search_path")
        yield conn


def row_counts(conn) -> dict[str, int]:
    return {
        t: conn.execute(f"SELECT count(*) FROM {SCHEMA_NAME}.{quote_ident(t)}").fetchone()[0]
        for t in SHOP.table_names
    }


def test_template_tools_verify_against_real_rows(shop_conn):
    candidates = synthesize_template_tools(SHOP)
    names = [c.name for c in candidates]
    assert len(names) == len(set(names)) and all(len(n) <= 64 for n in names)

    before = row_counts(shop_conn)
    verifications = verify_tools(shop_conn, SCHEMA_NAME, SHOP, candidates, random.Random(1))
    assert row_counts(shop_conn) == before  # verification always rolls back

    failed = {v.candidate.name: v.reason for v in verifications if not v.ok}
    assert not failed, failed
    kept = [v for v in verifications if v.ok]
    assert len(kept) >= 10
    assert {"insert", "update", "delete"} <= {v.candidate.kind for v in kept}

    statements = {v.candidate.name: check_statement(v.candidate.sql, SHOP.table_names) for v in kept}
    reads = [s for name, s in statements.items() if s.kind == "read"]
    assert any(s.has_join for s in reads) and any(s.has_aggregate for s in reads)
    assert any("CASE" in v.candidate.sql for v in kept)

    for v in kept:
        assert v.row_count > 0 and v.result_columns
        assert set(v.sample_arguments) == set(v.candidate.parameters["properties"])


def test_verification_declares_each_kept_tools_effect(shop_conn):
    verifications = verify_tools(shop_conn, SCHEMA_NAME, SHOP, synthesize_template_tools(SHOP), random.Random(1))
    by_name = {v.candidate.name: v for v in verifications}
    read, insert, update, delete = (EffectKind.EFFECT_KIND_READ, EffectKind.EFFECT_KIND_INSERT,
                                    EffectKind.EFFECT_KIND_UPDATE, EffectKind.EFFECT_KIND_DELETE)
    assert by_name["get_order"].effect == ToolEffect(kind=read, single_row=True, table="orders")
    assert by_name["search_customers_by_name"].effect == ToolEffect(kind=read, table="customers")
    assert by_name["count_orders_per_customer"].effect == ToolEffect(kind=read, table="customers")  # FROM the parent
    assert by_name["create_order"].effect == ToolEffect(kind=insert, single_row=True, table="orders")
    assert by_name["update_order_status"].effect == ToolEffect(kind=update, single_row=True, table="orders")
    assert by_name["delete_order"].effect == ToolEffect(kind=delete, single_row=True, table="orders")
    assert [v.candidate.name for v in verifications if v.is_search] == [
        c for c in by_name if c.startswith("search_")]
    assert by_name["list_top_products_by_price"].is_top_n and not by_name["count_orders_per_customer"].is_top_n

    toolset = toolset_from_verifications(SeedEvent(seed_id="s", domain="shop"), verifications, kept=verifications)
    tool = next(t for t in toolset.tools if t.name == "get_order")
    assert tool.effect == by_name["get_order"].effect and json.loads(tool.output_schema_json)["type"] == "object"


def test_tool_shapes(shop_conn):
    by_name = {c.name: c for c in synthesize_template_tools(SHOP)}
    assert {"get_order", "search_customers_by_name", "list_top_products_by_price", "count_orders_per_customer",
            "create_order", "update_order_status", "delete_order"} <= set(by_name)

    create = by_name["create_order"]
    assert "order_id" not in create.parameters["properties"]  # the identity is generated
    assert "created_at" not in create.parameters["properties"] and "now()" in create.sql
    assert set(create.parameters["required"]) == {"customer_id", "product_id", "quantity", "total", "status", "order_date"}
    assert create.parameters["properties"]["order_date"] == {
        "type": "string", "format": "date", "description": "The date of the new order."}
    assert create.parameters["properties"]["status"]["description"] == "One of 'new', 'paid', 'shipped'."
    assert create.parameters["additionalProperties"] is False

    [v] = verify_tools(shop_conn, SCHEMA_NAME, SHOP, [by_name["get_order"]], random.Random(2))
    assert v.ok and v.single_row and v.row_count == 1
    assert ("customer_name", "text") in v.result_columns and ("product_title", "text") in v.result_columns
    output = v.output_schema
    assert output["type"] == "object"
    assert output["properties"]["total"] == {"type": "number"}
    assert output["properties"]["note"] == {"type": ["string", "null"]}

    [search] = verify_tools(shop_conn, SCHEMA_NAME, SHOP, [by_name["search_customers_by_name"]], random.Random(3))
    assert search.ok and not search.single_row and search.output_schema["type"] == "array"
    assert search.sample_arguments["name"] in set(FIRST) | set(LAST)  # a word of a real name


def test_broken_and_empty_candidates_are_rejected(shop_conn):
    id_param = {"type": "object", "properties": {"customer_id": {"type": "integer"}},
                "required": ["customer_id"], "additionalProperties": False}
    broken = ToolCandidate(
        name="get_customer_shoe_size", description="Broken.", parameters=id_param,
        sql="SELECT shoe_size FROM customers WHERE customer_id = :customer_id", kind="read",
        param_columns={"customer_id": ("customers", "customer_id")},
    )
    empty = ToolCandidate(
        name="get_customer_never", description="Finds nothing.", parameters=id_param,
        sql="SELECT * FROM customers WHERE customer_id = :customer_id AND city = 'Atlantis'", kind="read",
        param_columns={"customer_id": ("customers", "customer_id")},
    )
    unsafe = ToolCandidate(
        name="drop_customers", description="Unsafe.", parameters={"type": "object", "properties": {}},
        sql="DROP TABLE customers", kind="delete",
    )
    results = verify_tools(shop_conn, SCHEMA_NAME, SHOP, [broken, empty, unsafe], random.Random(4))
    assert [v.ok for v in results] == [False, False, False]
    assert results[0].reason.startswith("execution error: ") and "shoe_size" in results[0].reason
    assert results[1].reason == "read returned no rows for existing arguments"
    assert results[2].reason == "unsafe SQL: DDL is not allowed: DROP TABLE"
    # a failed statement leaves the connection usable
    assert shop_conn.execute("SELECT 1").fetchone() == (1,)


def test_json_schema_for_result():
    columns = [("id", "int4"), ("price", "numeric"), ("day", "date"), ("at", "timestamptz"), ("ok", "bool")]
    many = json_schema_for_result(columns, nullable=["price"])
    assert many["type"] == "array"
    props = many["items"]["properties"]
    assert props["id"] == {"type": "integer"} and props["price"] == {"type": ["number", "null"]}
    assert props["day"] == {"type": "string", "format": "date"}
    assert props["at"] == {"type": "string", "format": "date-time"} and props["ok"] == {"type": "boolean"}
    one = json_schema_for_result(columns, single_row=True)
    assert one["type"] == "object" and one["properties"]["id"] == {"type": ["integer", "null"]}


AWKWARD = DatabaseSchema(
    name="awkward",
    tables=[
        # reserved words as names, a self reference, a boolean and a modification stamp
        Table(
            name="user",
            primary_key=["user_id"],
            foreign_keys=[ForeignKey(columns=["manager_id"], ref_table="user", ref_columns=["user_id"])],
            columns=[
                Column(name="user_id", type="integer", nullable=False),
                Column(name="order", type="text", nullable=False),
                Column(name="is_admin", type="boolean", nullable=False),
                Column(name="manager_id", type="integer"),
                Column(name="updated_at", type="timestamp"),
            ],
        ),
        Table(
            name="countries",
            primary_key=["code"],  # a text key the caller supplies
            columns=[Column(name="code", type="text", nullable=False), Column(name="label", type="text", nullable=False)],
        ),
        Table(
            name="memberships",
            primary_key=["user_id", "country_code"],  # a link table: the key is two references
            foreign_keys=[
                ForeignKey(columns=["user_id"], ref_table="user", ref_columns=["user_id"]),
                ForeignKey(columns=["country_code"], ref_table="countries", ref_columns=["code"]),
            ],
            columns=[
                Column(name="user_id", type="integer", nullable=False),
                Column(name="country_code", type="text", nullable=False),
                Column(name="fee", type="numeric(10,2)"),
            ],
        ),
        Table(name="audit_log", columns=[Column(name="message", type="text"), Column(name="created_at", type="timestamp")]),
    ],
)


def test_awkward_schema_tools_verify(postgres_dsn):
    rows = {
        "user": [[i, f"order {i}", i % 2 == 0, i - 1 if i > 1 else None, None] for i in range(1, 11)],
        "countries": [[c, f"Country {c}"] for c in ("DE", "FR", "IT", "ES")],
        "memberships": [[u, c, 10 + u] for u in range(1, 6) for c in ("DE", "FR")],
        "audit_log": [["hello world", "2024-01-01"]],
    }
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA awkward")
        conn.execute("SET search_path TO awkward")
        for ddl in schema_ddl(AWKWARD):
            conn.execute(ddl)
        for table, values in rows.items():
            marks = ", ".join(["%s"] * len(values[0]))
            with conn.cursor() as cur:
                cur.executemany(f"INSERT INTO {quote_ident(table)} VALUES ({marks})", values)
            if identity_reset_sql(AWKWARD.table(table)):
                conn.execute(identity_reset_sql(AWKWARD.table(table)))
        conn.execute("RESET search_path")

        candidates = synthesize_template_tools(AWKWARD)
        verifications = verify_tools(conn, "awkward", AWKWARD, candidates, random.Random(5))
        assert {v.candidate.name: v.reason for v in verifications if not v.ok} == {}
        by_name = {v.candidate.name: v for v in verifications}
        assert {"get_membership", "create_membership", "count_users_per_manager", "create_country",
                "search_audit_logs_by_message", "update_user_order"} <= set(by_name)
        assert "get_audit_log" not in by_name  # no key, no lookup
        assert by_name["get_membership"].single_row
        link = by_name["create_membership"].sample_arguments
        assert (link["user_id"], link["country_code"]) not in {(u, c) for u, c, _ in rows["memberships"]}
        assert by_name["create_country"].sample_arguments["code"] not in {"DE", "FR", "IT", "ES"}
        assert "updated_at = now()" in by_name["update_user_order"].candidate.sql
