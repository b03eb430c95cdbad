"""The SQL guard: what tool SQL may do, why the rest is refused, and the driver form of what passes."""
from __future__ import annotations

import psycopg
import pytest

from shared.env.sql_guard import UnsafeSQL, check_statement, to_driver_sql

TABLES = ["customers", "orders"]


@pytest.mark.parametrize(
    "sql, kind, tables, params",
    [
        (
            "SELECT c.name, o.total FROM customers c JOIN orders o ON o.customer_id = c.customer_id "
            "WHERE c.city = :city AND o.total > :min_total ORDER BY o.total DESC LIMIT :limit",
            "read", {"customers", "orders"}, ("city", "min_total", "limit"),
        ),
        (
            "WITH big AS (SELECT customer_id FROM orders WHERE total > :min_total) "
            "SELECT * FROM customers WHERE customer_id IN (SELECT customer_id FROM big) AND city = :city",
            "read", {"customers", "orders"}, ("min_total", "city"),
        ),
        ("SELECT name FROM customers UNION SELECT status FROM orders", "read", {"customers", "orders"}, ()),
        ("SELECT * FROM orders WHERE order_id = :order_id FOR UPDATE", "read", {"orders"}, ("order_id",)),
        (
            "INSERT INTO orders (customer_id, total, created_at) VALUES (:customer_id, :total, now()) RETURNING *",
            "insert", {"orders"}, ("customer_id", "total"),
        ),
        (
            "UPDATE orders SET status = :status WHERE order_id = :order_id RETURNING *",
            "update", {"orders"}, ("status", "order_id"),
        ),
        ("DELETE FROM orders WHERE order_id = :order_id RETURNING order_id", "delete", {"orders"}, ("order_id",)),
    ],
)
def test_accepted_statements(sql, kind, tables, params):
    statement = check_statement(sql, TABLES)
    assert statement.sql == sql
    assert statement.kind == kind
    assert statement.tables == frozenset(tables)
    assert statement.parameters == params


def test_statement_facts_and_shape():
    statement = check_statement(
        "SELECT c.city, COUNT(*) FROM customers c JOIN orders o ON o.customer_id = c.customer_id "
        "WHERE o.status = 'paid' AND o.total > 10 AND c.name ILIKE :q GROUP BY c.city",
        TABLES,
    )
    assert statement.has_join and statement.has_aggregate
    assert "'paid'" not in statement.shape and "10" not in statement.shape
    assert "?" in statement.shape and ":q" in statement.shape
    plain = check_statement("SELECT * FROM customers WHERE customer_id = :id", TABLES)
    assert not plain.has_join and not plain.has_aggregate


@pytest.mark.parametrize(
    "sql, reason",
    [
        ("DROP TABLE customers", "DDL is not allowed: DROP TABLE"),
        ("CREATE TABLE evil (a int)", "DDL is not allowed: CREATE TABLE"),
        ("TRUNCATE customers", "DDL is not allowed: TRUNCATE"),
        ("ALTER TABLE customers ADD COLUMN x int", "DDL is not allowed: ALTER TABLE"),
        ("GRANT ALL ON customers TO public", "DDL is not allowed: GRANT"),
        ("SET ROLE postgres", "commands are not allowed: SET ROLE"),
        ("COPY customers TO '/tmp/out.csv'", "not COPY"),
        ("VACUUM customers", "commands are not allowed: VACUUM"),
        ("SELECT 1; DELETE FROM customers", "exactly one statement is allowed, found 2"),
        ("SELECT * FROM other_schema.customers", "schema-qualified table references are not allowed: other_schema.customers"),
        ("SELECT * FROM suppliers", "table is not allowed (not in this schema): suppliers"),
        ("SELECT * FROM pg_catalog.pg_class", "system catalogs are not allowed: pg_catalog.pg_class"),
        ("SELECT * FROM pg_class", "system catalogs are not allowed: pg_class"),
        ("SELECT * FROM information_schema.tables", "system catalogs are not allowed: information_schema.tables"),
        ("SELECT pg_sleep(10)", "function is not allowed: pg_sleep"),
        ("SELECT set_config('search_path', 'other', false)", "function is not allowed: set_config"),
        ("SELECT current_setting('search_path')", "function is not allowed: current_setting"),
        ("SELECT * FROM customers WHERE name = pg_catalog.upper(:n)", "schema-qualified function calls are not allowed"),
        (
            "WITH gone AS (DELETE FROM orders RETURNING *) SELECT * FROM gone",
            "data-modifying statements inside WITH or subqueries are not allowed",
        ),
        ("SELECT * FROM customers WHERE customer_id = %s", "only :name parameters are allowed, not %s"),
        ("SELECT * FROM customers WHERE customer_id = %(id)s", "only :name parameters are allowed, not %(id)s"),
        ("SELECT * FROM customers WHERE customer_id = ?", "only :name parameters are allowed, not ?"),
        ("SELECT * FROM customers WHERE customer_id = $1", "positional parameters are not allowed: $1"),
        ("SELECT name INTO copy_of_customers FROM customers", "SELECT ... INTO is not allowed"),
        ("SELECT * FROM (", "could not parse SQL"),
        ("", "empty statement"),
    ],
)
def test_rejected_statements(sql, reason):
    with pytest.raises(UnsafeSQL) as info:
        check_statement(sql, TABLES)
    assert reason in str(info.value)


def test_cte_names_are_not_tables():
    statement = check_statement("WITH recent AS (SELECT * FROM orders) SELECT * FROM recent", TABLES)
    assert statement.tables == frozenset({"orders"})
    # a CTE name is visible only inside its own statement
    with pytest.raises(UnsafeSQL, match="table is not allowed"):
        check_statement("SELECT * FROM (WITH recent AS (SELECT 1) SELECT 1) s, recent", TABLES)


def test_driver_sql_runs_in_psycopg(postgres_dsn):
    with psycopg.connect(postgres_dsn) as conn:
        conn.execute("CREATE TABLE customers (customer_id int PRIMARY KEY, name text, note text)")
        conn.execute(
            "INSERT INTO customers VALUES (1, 'Ann :x', '100% sure'), (2, 'Bob', 'meh'), (3, 'Cy', '50% off')"
        )
        statement = check_statement(
            "SELECT customer_id, name, ':name' AS literal FROM customers "
            "WHERE (name ILIKE '%' || :q || '%' OR note LIKE '%\\%%' ESCAPE '\\') AND customer_id % 2 = 1 "
            "AND customer_id >= :min_id ORDER BY customer_id",
            ["customers"],
        )
        # the ':name' inside a string literal is text, not a parameter
        assert statement.parameters == ("q", "min_id")
        driver_sql = to_driver_sql(statement)
        assert "%(q)s" in driver_sql and "%(min_id)s" in driver_sql and "':name'" in driver_sql
        rows = conn.execute(driver_sql, {"q": "ann", "min_id": 1}).fetchall()
        assert rows == [(1, "Ann :x", ":name"), (3, "Cy", ":name")]


def test_driver_sql_without_parameters(postgres_dsn):
    statement = check_statement("SELECT '100%' AS a, 7 % 4 AS b", [])
    with psycopg.connect(postgres_dsn) as conn:
        assert conn.execute(to_driver_sql(statement), {}).fetchone() == ("100%", 3)
