"""What each `:name` parameter of a proposed statement stands for, read from the SQL itself.

A model proposes SQL; the tool's JSON Schema, its kind and where sample arguments come from are derived here
from the statement (sqlglot), not taken from the model: a parameter compared to, assigned to or inserted into a
column takes that column's type, and its sample values come from that column's real rows.
"""
from __future__ import annotations

import sqlglot
from sqlglot import exp

from shared.env.dbschema import DatabaseSchema

COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Like, exp.ILike, exp.In, exp.Between)


class UnboundParameter(ValueError):
    pass


def bind_parameters(sql: str, schema: DatabaseSchema) -> dict[str, tuple[str, str]]:
    """parameter -> (table, column) for every parameter that meets a column; LIMIT/OFFSET ones are left out."""
    tree = sqlglot.parse_one(sql, read="postgres")
    aliases = _table_aliases(tree, schema)
    bound: dict[str, tuple[str, str]] = {}
    if isinstance(tree, exp.Insert):
        bound |= _insert_bindings(tree, schema)
    for ph in tree.find_all(exp.Placeholder):
        name = ph.this if isinstance(ph.this, str) else None
        if name is None or name in bound:
            continue
        column = _column_met(ph, tree)
        if column is None:
            continue
        resolved = _resolve(column, aliases, schema)
        if resolved is not None:
            bound[name] = resolved
    return bound


def limit_parameters(sql: str) -> set[str]:
    tree = sqlglot.parse_one(sql, read="postgres")
    names = set()
    for ph in tree.find_all(exp.Placeholder):
        if isinstance(ph.this, str) and ph.find_ancestor(exp.Limit, exp.Offset, exp.Fetch) is not None:
            names.add(ph.this)
    return names


def ranking(sql: str) -> tuple[str, bool] | None:
    """The column a statement's rows are ranked by first and whether the largest come first ("subscription_count",
    True for ORDER BY subscription_count DESC); None when it orders by no plain column."""
    order = sqlglot.parse_one(sql, read="postgres").args.get("order")
    first = order.expressions[0] if order is not None and order.expressions else None
    if first is None or not isinstance(first.this, exp.Column):
        return None
    return first.this.name, bool(first.args.get("desc"))


def _table_aliases(tree: exp.Expression, schema: DatabaseSchema) -> dict[str, str]:
    known = {t.lower(): t for t in schema.table_names}
    aliases = {}
    for table in tree.find_all(exp.Table):
        real = known.get(table.name.lower())
        if real is None:
            continue
        aliases[table.name.lower()] = real
        if table.alias:
            aliases[table.alias.lower()] = real
    return aliases


def _column_met(ph: exp.Placeholder, root: exp.Expression) -> exp.Column | None:
    """The column a placeholder is compared with or assigned to (through ||, %, casts and arithmetic)."""
    node: exp.Expression = ph
    while node.parent is not None and node is not root:
        parent = node.parent
        if isinstance(parent, COMPARISONS):
            sides = [parent.this, parent.args.get("expression"), *(parent.args.get("expressions") or []),
                     parent.args.get("low"), parent.args.get("high")]
            for side in sides:
                if isinstance(side, exp.Column):
                    return side
                if side is not None and side is not node and isinstance(side, exp.Expression):
                    col = side.find(exp.Column)
                    if col is not None and side.find(exp.Placeholder) is None:
                        return col
            return None
        if isinstance(parent, (exp.Select, exp.Where, exp.Having, exp.Join, exp.Subquery)):
            return None
        node = parent
    return None


def _resolve(column: exp.Column, aliases: dict[str, str], schema: DatabaseSchema) -> tuple[str, str] | None:
    name = column.name.lower()
    if column.table:
        table = aliases.get(column.table.lower())
        candidates = [table] if table else []
    else:
        candidates = list(dict.fromkeys(aliases.values()))
    for t in candidates:
        for c in schema.table(t).columns:
            if c.name.lower() == name:
                return t, c.name
    return None


def _insert_bindings(tree: exp.Insert, schema: DatabaseSchema) -> dict[str, tuple[str, str]]:
    target = tree.this
    table_node = target.this if isinstance(target, exp.Schema) else target
    if not isinstance(table_node, exp.Table):
        return {}
    tables = {t.lower(): t for t in schema.table_names}
    table = tables.get(table_node.name.lower())
    if table is None:
        return {}
    columns = [c.name for c in target.expressions] if isinstance(target, exp.Schema) else \
        [c.name for c in schema.table(table).columns]
    values = tree.expression
    if not isinstance(values, exp.Values) or not values.expressions:
        return {}
    bound = {}
    for col, value in zip(columns, values.expressions[0].expressions):
        if isinstance(value, exp.Placeholder) and isinstance(value.this, str):
            real = next((c.name for c in schema.table(table).columns if c.name.lower() == col.lower()), None)
            if real is not None:
                bound[value.this] = (table, real)
    return bound
