"""The template synthesiser: SQL-backed tools derived from the schema alone, without an LLM.

Every table gets the tools an agent on that database would plausibly need: a lookup by primary key,
text search, top-N by a number, aggregates across each foreign key, and insert / update / delete.
The SQL uses named `:name` parameters only; verify.py executes each candidate before it is kept.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError
from sqlglot.tokens import TokenType

from shared.env.dbschema import Column, DatabaseSchema, ForeignKey, Table, quote_ident

MAX_NAME_LENGTH = 64  # OpenAI function names are limited to 64 characters
MAX_SEARCH_TOOLS_PER_TABLE = 2
MAX_TOP_TOOLS_PER_TABLE = 2
MAX_UPDATE_TOOLS_PER_TABLE = 4
SEARCH_LIMIT = 20
LIMIT_PARAMETER = "limit"

NAME_LIKE = ("name", "full_name")  # then first_name + last_name
TITLE_LIKE = ("title", "label")
NAME_FALLBACK = ("username", "email")
# Numbers that are codes or calendar values: ranking or summing them answers nothing.
NOT_A_QUANTITY = ("year", "number", "code", "zip", "postal", "extension", "floor", "phone", "lat", "lon")
# Numbers whose sum over a parent's rows means something, best first.
ADDITIVE = ("total", "amount", "balance", "cost", "fee", "price", "value", "salary", "budget", "principal",
            "payment", "paid", "due", "revenue", "weight", "quantity", "qty", "points", "credits", "hours",
            "minutes", "limit", "stock", "capacity")
# Columns whose change is a typical user request ("cancel my order", "upgrade my plan").
STATE_LIKE = ("status", "state", "stage", "priority", "plan", "tier", "level", "role", "category", "type")

# PostgreSQL reserved words: such column or table names must be quoted.
PG_RESERVED = set(
    """all analyse analyze and any array as asc asymmetric authorization binary both case cast check
    collate collation column concurrently constraint create cross current_catalog current_date
    current_role current_schema current_time current_timestamp current_user default deferrable desc
    distinct do else end except false fetch for foreign freeze from full grant group having ilike in
    initially inner intersect into is isnull join lateral leading left like limit localtime
    localtimestamp natural not notnull null offset on only or order outer overlaps placing primary
    references returning right select session_user similar some symmetric system_user table
    tablesample then to trailing true union unique user using variadic verbose when where window
    with""".split()
)


@dataclass
class ToolCandidate:
    name: str  # snake_case, get_/search_/list_/count_/create_/update_/delete_ prefixes
    description: str  # one or two plain sentences a user-facing agent would read
    parameters: dict  # JSON Schema object (the OpenAI function "parameters")
    sql: str  # parameterised with :name placeholders only
    kind: str  # read | insert | update | delete
    param_columns: dict[str, tuple[str, str]] = field(default_factory=dict)  # parameter -> (table, column)
    source: str = "template"  # "template" or "llm": who proposed it
    rejection: str = ""  # set when a mechanical check already rules it out (verification then records it)


def synthesize_template_tools(schema: DatabaseSchema) -> list[ToolCandidate]:
    tools: list[ToolCandidate] = []
    for table in schema.tables:
        tools += _read_tools(schema, table)
    for table in schema.tables:
        for fk in table.foreign_keys:
            tools += _aggregate_tools(schema, table, fk)
            tools += [t for t in [_children_of(schema, table, fk)] if t]
    for table in schema.tables:
        tools += _write_tools(schema, table)
    return _with_unique_names(tools)


def _read_tools(schema: DatabaseSchema, table: Table) -> list[ToolCandidate]:
    tools = []
    if table.primary_key:
        tools.append(_get_by_key(schema, table))
    tools += [_search_by(table, col) for col in _searchable_columns(table)]
    tools += [_top_by(table, col) for col in _rankable_columns(table)]
    return tools


def _write_tools(schema: DatabaseSchema, table: Table) -> list[ToolCandidate]:
    tools = []
    create = _create(table)
    if create is not None:
        tools.append(create)
    if table.primary_key:
        referenced = {c for t in schema.tables for fk in t.foreign_keys if fk.ref_table == table.name
                      for c in fk.ref_columns}
        tools += [_update_column(table, col) for col in _updatable_columns(table) if col.name not in referenced]
        tools.append(_delete(schema, table))
    return tools


# --- reads ---------------------------------------------------------------------------------------


def _get_by_key(schema: DatabaseSchema, table: Table) -> ToolCandidate:
    """SELECT one row by its key, with the name of each referenced row joined in."""
    entity = _singular_words(table.name)
    select, joins, joined_names = _name_joins(schema, table)
    params = _key_parameters(table)
    where = " AND ".join(f"t.{_ident(c)} = :{p}" for p, c in params.items())
    sql = "\n".join(
        [f"SELECT {', '.join(['t.*', *select])}", f"FROM {_ident(table.name)} AS t", *joins, f"WHERE {where}"]
    )
    description = f"Look up one {entity} by its {_key_words(table)}."
    if joined_names:
        description += f" Returns the {entity} record with the {_join_words(joined_names)}."
    return ToolCandidate(
        name=f"get_{_singular(table.name)}",
        description=description,
        parameters=_object_schema(
            {p: _column_property(table, table.column(c), f"the {entity}") for p, c in params.items()},
            required=list(params),
        ),
        sql=sql,
        kind="read",
        param_columns={p: (table.name, c) for p, c in params.items()},
    )


def _name_joins(schema: DatabaseSchema, table: Table) -> tuple[list[str], list[str], list[str]]:
    """For each reference of `t`: the referenced row's name (select expression), its JOIN, and words for it."""
    select, joins, words = [], [], []
    taken = {c.name for c in table.columns}
    for i, fk in enumerate(table.foreign_keys, start=1):
        name = _name_ref(schema.table(fk.ref_table))
        alias = name.alias(_fk_role(fk)) if name else None
        if alias is None or alias in taken:
            continue
        taken.add(alias)
        j = f"j{i}"
        # a NULL reference must not hide the row
        join = "JOIN" if all(not table.column(c).nullable for c in fk.columns) else "LEFT JOIN"
        joins.append(f"{join} {_ident(fk.ref_table)} AS {j} ON {_join_condition(j, 't', fk)}")
        select.append(f"{name.sql(j)} AS {_ident(alias)}")
        words.append(_words(alias))
    return select, joins, words


def _search_by(table: Table, col: Column) -> ToolCandidate:
    param = _param_name(col.name)
    plural = _plural_words(table.name)
    order = ", ".join(_ident(c) for c in table.primary_key) or _ident(col.name)
    sql = (
        f"SELECT * FROM {_ident(table.name)}\n"
        f"WHERE {_ident(col.name)} ILIKE '%' || :{param} || '%'\n"
        f"ORDER BY {order}\nLIMIT {SEARCH_LIMIT}"
    )
    prop = {"type": "string", "description": f"Text to look for in the {_words(col.name)} (partial, case-insensitive)."}
    return ToolCandidate(
        name=f"search_{_plural(table.name)}_by_{col.name}",
        description=(
            f"Find {plural} whose {_words(col.name)} contains the given text, ignoring case. "
            f"Returns at most {SEARCH_LIMIT} matches."
        ),
        parameters=_object_schema({param: prop}, required=[param]),
        sql=sql,
        kind="read",
        param_columns={param: (table.name, col.name)},
    )


def _top_by(table: Table, col: Column) -> ToolCandidate:
    plural = _plural_words(table.name)
    tie_break = "".join(f", {_ident(c)}" for c in table.primary_key)
    sql = (
        f"SELECT * FROM {_ident(table.name)}\n"
        f"WHERE {_ident(col.name)} IS NOT NULL\n"
        f"ORDER BY {_ident(col.name)} DESC{tie_break}\nLIMIT :{LIMIT_PARAMETER}"
    )
    return ToolCandidate(
        name=f"list_top_{_plural(table.name)}_by_{col.name}",
        description=f"List the {plural} with the highest {_words(col.name)}, highest first.",
        parameters=_object_schema({LIMIT_PARAMETER: _limit_property(plural)}, required=[LIMIT_PARAMETER]),
        sql=sql,
        kind="read",
    )


def _aggregate_tools(schema: DatabaseSchema, child: Table, fk: ForeignKey) -> list[ToolCandidate]:
    parent = schema.table(fk.ref_table)
    tools = [_count_per_parent(child, parent, fk)]
    amounts = _additive_columns(child)
    if amounts:
        tools.append(_sum_per_parent(child, parent, fk, amounts[0]))
    return tools


def _parent_group(parent: Table, fk: ForeignKey) -> tuple[list[str], list[str]]:
    """Select and GROUP BY expressions for the parent side: its key, plus its name when it has one."""
    exprs = [f"p.{_ident(c)}" for c in fk.ref_columns]
    select = list(exprs)
    name = _name_ref(parent)
    if name is not None and not set(name.columns) & set(fk.ref_columns):
        exprs += [f"p.{_ident(c)}" for c in name.columns]
        select.append(f"{name.sql('p')} AS {_ident(name.alias(_fk_role(fk)))}")
    return select, exprs


def _count_per_parent(child: Table, parent: Table, fk: ForeignKey) -> ToolCandidate:
    role = _fk_role(fk)
    count_col = f"{_singular(child.name)}_count"
    select, group = _parent_group(parent, fk)
    # LEFT JOIN so parents without children are counted as 0; COUNT of the FK column skips those.
    sql = "\n".join([
        f"SELECT {', '.join(select)}, COUNT(c.{_ident(fk.columns[0])}) AS {_ident(count_col)}",
        f"FROM {_ident(parent.name)} AS p",
        f"LEFT JOIN {_ident(child.name)} AS c ON {_join_condition('p', 'c', fk)}",
        f"GROUP BY {', '.join(group)}",
        f"ORDER BY {_ident(count_col)} DESC, {', '.join(group[: len(fk.ref_columns)])}",
        f"LIMIT :{LIMIT_PARAMETER}",
    ])
    return ToolCandidate(
        name=f"count_{_plural(child.name)}_per_{role}",
        description=(
            f"Count the {_plural_words(child.name)} of each {_words(role)}, most first. "
            f"Returns one row per {_words(role)} with its number of {_plural_words(child.name)}."
        ),
        parameters=_object_schema({LIMIT_PARAMETER: _limit_property(_plural_words(role))}, required=[LIMIT_PARAMETER]),
        sql=sql,
        kind="read",
    )


def _sum_per_parent(child: Table, parent: Table, fk: ForeignKey, amount: Column) -> ToolCandidate:
    role = _fk_role(fk)
    col = _ident(amount.name)
    sum_col = f"{amount.name}_sum"
    count_col = f"{_singular(child.name)}_count"
    above_col = f"{_plural(child.name)}_above_average_{amount.name}"
    select, group = _parent_group(parent, fk)
    # The CASE buckets each child row against the overall average, so the answer says how many of a
    # parent's rows are unusually large, not only their total.
    sql = "\n".join([
        f"SELECT {', '.join(select)},",
        f"  COUNT(*) AS {_ident(count_col)},",
        f"  SUM(c.{col}) AS {_ident(sum_col)},",
        f"  SUM(CASE WHEN c.{col} > (SELECT AVG({col}) FROM {_ident(child.name)}) THEN 1 ELSE 0 END)"
        f" AS {_ident(above_col)}",
        f"FROM {_ident(parent.name)} AS p",
        f"JOIN {_ident(child.name)} AS c ON {_join_condition('p', 'c', fk)}",
        f"GROUP BY {', '.join(group)}",
        f"ORDER BY {_ident(sum_col)} DESC NULLS LAST, {', '.join(group[: len(fk.ref_columns)])}",
        f"LIMIT :{LIMIT_PARAMETER}",
    ])
    child_words = _plural_words(child.name)
    return ToolCandidate(
        name=f"list_{_plural(role)}_by_{_singular(child.name)}_{amount.name}_sum",
        description=(
            f"List {_plural_words(role)} by the summed {_words(amount.name)} of their {child_words}, largest first. "
            f"Also gives how many {child_words} each has and how many are above the average {_words(amount.name)}."
        ),
        parameters=_object_schema({LIMIT_PARAMETER: _limit_property(_plural_words(role))}, required=[LIMIT_PARAMETER]),
        sql=sql,
        kind="read",
    )


def _children_of(schema: DatabaseSchema, child: Table, fk: ForeignKey) -> ToolCandidate | None:
    """SELECT the `child` rows that reference one parent row, the most recent first where the child has a date: how
    an agent goes from a record to the ones under it (a customer's subscriptions, a line's latest invoice) once a
    lookup has given it the parent's key."""
    if len(fk.columns) != 1:
        return None
    column = child.column(fk.columns[0])
    param = _param_name(column.name)
    role = _fk_role(fk)
    newest = _recency_column(child)
    order = [f"{_ident(newest.name)} DESC NULLS LAST"] if newest else []
    order += [_ident(c) for c in child.primary_key] or [_ident(column.name)]
    sql = (
        f"SELECT * FROM {_ident(child.name)}\n"
        f"WHERE {_ident(column.name)} = :{param}\n"
        f"ORDER BY {', '.join(order)}\nLIMIT {SEARCH_LIMIT}"
    )
    plural = _plural_words(child.name)
    recency = f", the most recent {_words(newest.name)} first" if newest else ""
    return ToolCandidate(
        name=f"list_{_plural(child.name)}_of_{role}",
        description=f"List the {plural} of one {_words(role)}{recency}. Returns at most {SEARCH_LIMIT}.",
        parameters=_object_schema({param: _column_property(child, column, f"the {_words(role)}")}, required=[param]),
        sql=sql,
        kind="read",
        param_columns={param: (child.name, column.name)},
    )


# --- writes --------------------------------------------------------------------------------------


def _create(table: Table) -> ToolCandidate | None:
    """INSERT every column but the generated key; write stamps (`*_at`, timestamps) are set to now()."""
    entity = _singular_words(table.name)
    columns = [c for c in table.columns if c.name != table.identity_column]
    params = {_param_name(c.name): c for c in columns if not c.is_timestamp_like}
    if not params:
        return None
    values = [f":{_param_name(c.name)}" if not c.is_timestamp_like else "now()" for c in columns]
    sql = (
        f"INSERT INTO {_ident(table.name)} ({', '.join(_ident(c.name) for c in columns)})\n"
        f"VALUES ({', '.join(values)})\nRETURNING *"
    )
    required = [p for p, c in params.items() if not c.nullable or c.name in table.primary_key]
    returns = f" Returns the new {entity}"
    returns += f", including its new {_words(table.identity_column)}." if table.identity_column else "."
    return ToolCandidate(
        name=f"create_{_singular(table.name)}",
        description=f"Create a new {entity}.{returns}",
        parameters=_object_schema(
            {p: _column_property(table, c, f"the new {entity}") for p, c in params.items()},
            required=required,
        ),
        sql=sql,
        kind="insert",
        param_columns={p: (table.name, c.name) for p, c in params.items()},
    )


def _update_column(table: Table, col: Column) -> ToolCandidate:
    entity = _singular_words(table.name)
    keys = _key_parameters(table)
    value_param = _unused_param_name(col.name, keys)
    assignments = [f"{_ident(col.name)} = :{value_param}"]
    # A modification stamp follows the change; creation stamps stay as they are.
    assignments += [f"{_ident(c.name)} = now()" for c in table.columns if _is_modified_stamp(c)]
    where = " AND ".join(f"{_ident(c)} = :{p}" for p, c in keys.items())
    sql = f"UPDATE {_ident(table.name)}\nSET {', '.join(assignments)}\nWHERE {where}\nRETURNING *"
    properties = {p: _column_property(table, table.column(c), f"the {entity} to change") for p, c in keys.items()}
    new_value = _column_property(table, col, f"the {entity}")
    new_value["description"] = f"The new {_column_words(table, col)}. {_sentence(col.description)}".strip()
    properties[value_param] = new_value
    return ToolCandidate(
        name=f"update_{_singular(table.name)}_{col.name}",
        description=(
            f"Change the {_words(col.name)} of {_article(entity)} {entity}, identified by its {_key_words(table)}. "
            f"Returns the updated {entity}."
        ),
        parameters=_object_schema(properties, required=list(properties)),
        sql=sql,
        kind="update",
        param_columns={**{p: (table.name, c) for p, c in keys.items()}, value_param: (table.name, col.name)},
    )


def _delete(schema: DatabaseSchema, table: Table) -> ToolCandidate:
    entity = _singular_words(table.name)
    keys = _key_parameters(table)
    where = " AND ".join(f"{_ident(c)} = :{p}" for p, c in keys.items())
    returning = ", ".join(_ident(c) for c in table.primary_key)
    sql = f"DELETE FROM {_ident(table.name)}\nWHERE {where}\nRETURNING {returning}"
    key = _key_words(table)
    description = f"Delete {_article(entity)} {entity} by its {key}. Returns the {key} of the deleted {entity}."
    dependants = [
        t.name for t in schema.tables
        if t.name != table.name and any(fk.ref_table == table.name for fk in t.foreign_keys)
    ]
    if dependants:
        # schema_ddl declares every foreign key ON DELETE CASCADE
        description += f" Its {_join_words([_words(d) for d in dependants])} are deleted with it."
    return ToolCandidate(
        name=f"delete_{_singular(table.name)}",
        description=description,
        parameters=_object_schema(
            {p: _column_property(table, table.column(c), f"the {entity} to delete") for p, c in keys.items()},
            required=list(keys),
        ),
        sql=sql,
        kind="delete",
        param_columns={p: (table.name, c) for p, c in keys.items()},
    )


# --- choosing columns ----------------------------------------------------------------------------


def _key_and_fk_columns(table: Table) -> set[str]:
    return set(table.primary_key) | {c for fk in table.foreign_keys for c in fk.columns}


@dataclass(frozen=True)
class NameRef:
    """What names a row for a person: one column, or first and last name together."""

    columns: tuple[str, ...]
    label: str  # "name", "title", ...

    def sql(self, alias: str) -> str:
        return " || ' ' || ".join(f"{alias}.{_ident(c)}" for c in self.columns)

    def alias(self, prefix: str) -> str:
        """customer + name -> customer_name; customer + customer_name stays customer_name."""
        return self.label if self.label.startswith(prefix) else f"{prefix}_{self.label}"


def _name_ref(table: Table) -> NameRef | None:
    keys = _key_and_fk_columns(table)
    texts = [c.name for c in table.columns if _is_text(c) and c.name not in keys]
    for wanted in NAME_LIKE:
        if wanted in texts:
            return NameRef((wanted,), wanted)
    if "first_name" in texts and "last_name" in texts:
        return NameRef(("first_name", "last_name"), "name")
    for wanted in TITLE_LIKE:
        if wanted in texts:
            return NameRef((wanted,), wanted)
    named = [c for c in texts if c.endswith("_name")] + [c for c in NAME_FALLBACK if c in texts]
    if named:
        return NameRef((named[0],), named[0])
    return NameRef((texts[0],), texts[0]) if texts else None


def _searchable_columns(table: Table) -> list[Column]:
    keys = _key_and_fk_columns(table)
    texts = [c for c in table.columns if _is_text(c) and c.name not in keys]
    name = _name_ref(table)
    first = set(name.columns) if name else set()
    texts.sort(key=lambda c: c.name not in first)  # the name first, otherwise schema order
    return texts[:MAX_SEARCH_TOOLS_PER_TABLE]


def _quantities(table: Table) -> list[Column]:
    """Numeric columns that measure something: not keys, not codes or years."""
    keys = _key_and_fk_columns(table)
    return [
        c for c in table.columns
        if c.json_type in ("number", "integer") and c.name not in keys
        and not any(w in c.name.split("_") for w in NOT_A_QUANTITY)
    ]


def _rankable_columns(table: Table) -> list[Column]:
    """Numbers worth ranking by: amounts before counts."""
    numbers = sorted(_quantities(table), key=lambda c: c.json_type != "number")
    return numbers[:MAX_TOP_TOOLS_PER_TABLE]


def _additive_columns(table: Table) -> list[Column]:
    """Numbers whose sum means something (totals, amounts, quantities), best first; rates and scores excluded."""
    def rank(c: Column) -> int:
        words = c.name.split("_")
        return min((i for i, w in enumerate(ADDITIVE) if w in words), default=len(ADDITIVE))

    return sorted([c for c in _quantities(table) if rank(c) < len(ADDITIVE)], key=rank)


def _updatable_columns(table: Table) -> list[Column]:
    candidates = [c for c in table.columns if c.name not in table.primary_key and not c.is_timestamp_like]
    fks = {c for fk in table.foreign_keys for c in fk.columns}

    def interest(c: Column) -> int:
        if any(c.name == w or c.name.endswith("_" + w) for w in STATE_LIKE):
            return 0
        if c.name in fks:
            return 4  # re-pointing a reference is the least usual request
        return {"string": 1, "number": 2, "integer": 2, "boolean": 2}.get(c.json_type, 3)

    return sorted(candidates, key=interest)[:MAX_UPDATE_TOOLS_PER_TABLE]


def _recency_column(table: Table) -> Column | None:
    """The date that orders a table's rows in time for a person ("my latest invoice"): a calendar date before a
    write stamp, never a modified stamp (it moves with every update)."""
    dated = [c for c in table.columns if _base_type(c) in ("date", "timestamp", "timestamptz")
             or _base_type(c).startswith("timestamp")]
    dated = [c for c in dated if not _is_modified_stamp(c) and c.name not in _key_and_fk_columns(table)]
    dated.sort(key=lambda c: c.is_timestamp_like)
    return dated[0] if dated else None


def _is_modified_stamp(col: Column) -> bool:
    return col.is_timestamp_like and any(w in col.name for w in ("updated", "modified", "changed"))


# --- parameters and JSON Schema ------------------------------------------------------------------


def _key_parameters(table: Table) -> dict[str, str]:
    return {_param_name(c): c for c in table.primary_key}


def _object_schema(properties: dict, required: list[str]) -> dict:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def _column_property(table: Table, col: Column, whose: str) -> dict:
    """JSON Schema of a parameter bound to a column; `whose` is e.g. "the new order"."""
    prop: dict = {"type": col.json_type, "description": _sentence(col.description) or _describe(table, col, whose)}
    base = _base_type(col)
    if base == "date":
        prop["format"] = "date"
    elif base.startswith("timestamp"):
        prop["format"] = "date-time"
    return prop


def _describe(table: Table, col: Column, whose: str) -> str:
    words = _column_words(table, col)
    if col.json_type == "boolean":
        verb, _, rest = words.partition(" ")
        return f"Whether {whose} {verb} {rest}." if verb in ("is", "has") and rest else f"Whether {whose} is {words}."
    return f"The {words} of {whose}."


def _column_words(table: Table, col: Column) -> str:
    """A column in words, without the table's own name: customers.customer_id -> "id"."""
    prefix = _singular(table.name) + "_"
    name = col.name[len(prefix):] if col.name.startswith(prefix) and len(col.name) > len(prefix) else col.name
    return _words(name)


def _limit_property(what: str) -> dict:
    return {"type": "integer", "minimum": 1, "maximum": 100, "description": f"How many {what} to return (1-100)."}


def _param_name(column: str) -> str:
    """A parameter name sqlglot reads as `:name` (some keywords, e.g. :select, it does not)."""
    name = re.sub(r"[^a-z0-9_]", "_", column.lower()).strip("_") or "value"
    if name[0].isdigit():
        name = "p_" + name
    return name if _parses_as_placeholder(name) else name + "_value"


def _unused_param_name(column: str, taken: dict) -> str:
    name = _param_name(column)
    return name if name not in taken else "new_" + name


def _parses_as_placeholder(name: str) -> bool:
    try:
        tree = sqlglot.parse_one(f"SELECT :{name}", read="postgres")
    except ParseError:
        return False
    found = tree.find(exp.Placeholder)
    return found is not None and found.this == name


# --- SQL text helpers ----------------------------------------------------------------------------


def _ident(name: str) -> str:
    """Bare identifier when PostgreSQL and sqlglot both read it as a plain name, quoted otherwise."""
    if re.fullmatch(r"[a-z_][a-z0-9_]*", name) and name not in PG_RESERVED:
        tokens = Dialect.get_or_raise("postgres").tokenize(name)
        if len(tokens) == 1 and tokens[0].token_type in (TokenType.VAR, TokenType.NAME):
            return name
    return quote_ident(name)


def _join_condition(parent_alias: str, child_alias: str, fk: ForeignKey) -> str:
    return " AND ".join(
        f"{parent_alias}.{_ident(r)} = {child_alias}.{_ident(c)}" for c, r in zip(fk.columns, fk.ref_columns)
    )


def _fk_role(fk: ForeignKey) -> str:
    """What the referenced row is to the child: customer_id -> customer, manager_id -> manager."""
    if len(fk.columns) == 1 and fk.columns[0].endswith("_id") and len(fk.columns[0]) > 3:
        return fk.columns[0][:-3]
    return _singular(fk.ref_table)


def _is_text(col: Column) -> bool:
    return _base_type(col) in ("text", "varchar", "character varying")


def _base_type(col: Column) -> str:
    return col.type.split("(")[0].strip().lower()


# --- words ---------------------------------------------------------------------------------------


def _singular(name: str) -> str:
    head, _, last = name.rpartition("_")
    return (head + "_" if head else "") + _singular_word(last)


def _plural(name: str) -> str:
    head, _, last = name.rpartition("_")
    return (head + "_" if head else "") + _plural_word(last)


IRREGULAR = {"people": "person", "children": "child", "men": "man", "women": "woman", "data": "data"}


def _singular_word(word: str) -> str:
    if word in IRREGULAR:
        return IRREGULAR[word]
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "ches", "shes", "zes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _plural_word(word: str) -> str:
    if word in IRREGULAR or _singular_word(word) != word:
        return word  # already plural
    if word in IRREGULAR.values():
        return next(p for p, s in IRREGULAR.items() if s == word)
    if word.endswith("y") and word[-2:-1] not in ("a", "e", "i", "o", "u"):
        return word[:-1] + "ies"
    if word.endswith(("s", "x", "ch", "sh", "z")):
        return word + "es"
    return word + "s"


def _words(name: str) -> str:
    return name.replace("_", " ")


def _singular_words(name: str) -> str:
    return _words(_singular(name))


def _plural_words(name: str) -> str:
    return _words(_plural(name))


def _key_words(table: Table) -> str:
    return _join_words([_words(c) for c in table.primary_key])


def _join_words(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _article(noun: str) -> str:
    return "an" if noun[:1] in "aeiou" else "a"


def _sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text.endswith((".", "!", "?")) else text + "."


def _with_unique_names(tools: list[ToolCandidate]) -> list[ToolCandidate]:
    """Function names as OpenAI accepts them: snake_case, at most 64 characters, unique."""
    seen: set[str] = set()
    for tool in tools:
        base = re.sub(r"[^a-z0-9_]+", "_", tool.name.lower())[:MAX_NAME_LENGTH]
        name, n = base, 2
        while name in seen:
            suffix = f"_{n}"
            name, n = base[: MAX_NAME_LENGTH - len(suffix)] + suffix, n + 1
        tool.name = name
        seen.add(name)
    return tools
