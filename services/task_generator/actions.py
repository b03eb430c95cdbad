"""Golden actions of every kind the toolset has, grounded in an entity tree.

A task has a main action (a read, an insert, an update or a delete, drawn by the action mix), reads along the
tree from its root to the record it acts on (so longer tasks cross more foreign keys), and, when the record can be
found by something a person knows (a name, an email, a phone number), a search for it first: the user then gives
that value and the agent must look the key up before acting.
"""
from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import dataclass, field
from typing import Any

from services.task_generator.entity_tree import MAX_DEPTH, EntityNode, EntityTree, RowSource
from services.task_generator.tool_catalog import SqlTool, ToolCatalog, identifying_field
from shared.contracts import Difficulty, EffectKind, GoldenAction, Tool
from shared.env.dbschema import DatabaseSchema, Table
from shared.env.json_values import json_value

ACTION_KINDS = ("read", "insert", "update", "delete")
WRITE_SPLIT = {"insert": 1.0, "update": 5.0, "delete": 1.0}  # DySQL-Bench: about half updates, a tenth each
# The most actions a task of each drawn difficulty aims at (a lookup by a known value may add one).
TARGET_ACTIONS = {Difficulty.DIFFICULTY_EASY: 1, Difficulty.DIFFICULTY_MEDIUM: 2, Difficulty.DIFFICULTY_HARD: 3}
LIMIT_RANGE = (3, 5)
MAX_CHILDREN_DELETED_FIRST = 3
ANSWER_ROWS_LISTED = 3  # a list answer is checked by the identifying values of its first rows


@dataclass
class PlannedAction:
    tool: Tool
    arguments: dict[str, Any]
    node: EntityNode | None = None  # the record it reads or writes (an insert: the one the new row hangs under)
    hops: int = 0
    looked_up: list[str] = field(default_factory=list)  # arguments the agent takes from an earlier result
    asks_for: list[str] = field(default_factory=list)  # result fields the user wants to know (reads)
    answer_rows: int = 1  # 1: the record's (or the first row's) values; 3: identifying values of the first rows

    @property
    def given(self) -> dict[str, Any]:
        """Arguments the user states."""
        return {k: v for k, v in self.arguments.items() if k not in self.looked_up}

    def golden(self) -> GoldenAction:
        return GoldenAction(tool_name=self.tool.name, arguments_json=json.dumps(self.arguments),
                            looked_up_arguments=self.looked_up)


@dataclass
class Grounding:
    """What planning reads besides the tree."""

    db_schema: DatabaseSchema
    catalog: ToolCatalog
    rows: RowSource
    rng: random.Random


# --- the action mix ---------------------------------------------------------------------------------------------


def action_mix(settings) -> dict[str, float]:
    """The configured mix; without one, write_task_share split as DySQL-Bench splits writes."""
    mix = {kind: max(getattr(settings.action_mix, kind), 0.0) for kind in ACTION_KINDS}
    if sum(mix.values()) > 0:
        return mix
    share = min(max(settings.write_task_share, 0.0), 1.0)
    total = sum(WRITE_SPLIT.values())
    return {"read": 1.0 - share, **{kind: share * w / total for kind, w in WRITE_SPLIT.items()}}


def pick_kind(mix: dict[str, float], rng: random.Random, available: set[str]) -> str:
    """A kind by the mix, among those the toolset can do; reads when it can do none of the drawn weights."""
    weights = {k: w for k, w in mix.items() if k in available and w > 0}
    if not weights:
        return "read"
    return rng.choices(list(weights), weights=list(weights.values()))[0]


# --- difficulty -------------------------------------------------------------------------------------------------


def difficulty_of(action_count: int, hops: int) -> int:
    """DySQL's short (< 3 actions) and long tasks, and how far through the tree they reach."""
    points = (action_count >= 3) + (action_count >= 4) + (hops >= 2)
    return [Difficulty.DIFFICULTY_EASY, Difficulty.DIFFICULTY_MEDIUM, Difficulty.DIFFICULTY_HARD][min(points, 2)]


# --- planning ---------------------------------------------------------------------------------------------------


def plan_actions(kind: str, tree: EntityTree, g: Grounding, target: int, chained: bool = True) -> list[PlannedAction]:
    """The task's golden actions in order; empty when the tree offers nothing of this kind. `chained`: the agent
    can take keys from earlier results (not so when a model invents the tools' answers)."""
    main = {"read": _read, "insert": _insert, "update": _update, "delete": _delete}[kind](tree, g, target)
    if not main:
        return []
    actions = _path_reads(tree, g, main, room=target - len(main)) + main
    if chained:
        actions = _with_lookup(actions, g)
        mark_looked_up(actions, g.db_schema)
    return actions


def fillable(tool: SqlTool, row: dict, params: list[str]) -> bool:
    return all(row.get(tool.columns[p][1]) is not None for p in params)


def _key_arguments(tool: SqlTool, row: dict) -> dict[str, Any]:
    return {p: row[tool.columns[p][1]] for p in tool.params("match")}


def _read(tree: EntityTree, g: Grounding, target: int) -> list[PlannedAction]:
    options = {
        "record": [(n, t) for n in tree.nodes() for t in g.catalog.record_reads(n.table)
                   if fillable(t, n.row, list(t.roles))],
        "search": [(n, t) for n in tree.nodes() for t in g.catalog.searches(n.table)
                   if isinstance(n.row.get(t.columns[next(iter(t.roles))][1]), str)],
        "ranking": [(None, t) for t in g.catalog.ranking_reads()],
    }
    options = {k: v for k, v in options.items() if v}
    if not options:
        return []
    category = g.rng.choice(sorted(options))
    node, tool = g.rng.choice(options[category])
    if category == "record":
        return [record_read(tool, node, g)]
    if category == "search":
        param = next(iter(tool.roles))
        pattern = search_word(node.row[tool.columns[param][1]], g.rng)
        fields = tool.result_fields
        return [PlannedAction(tool.tool, {param: pattern}, node, node.depth,
                              asks_for=_present([identifying_field(fields, _keys(g, node.table))]),
                              answer_rows=ANSWER_ROWS_LISTED)]
    return [ranking_read(tool, g)]


def record_read(tool: SqlTool, node: EntityNode, g: Grounding, asks: int | None = None) -> PlannedAction:
    """A lookup of the record: the user wants one or two of its values."""
    table = g.db_schema.table(node.table)
    hidden = set(_keys(g, node.table)) | {c for fk in table.foreign_keys for c in fk.columns} | set(tool.roles)
    worth_asking = [f for f in tool.result_fields if f not in hidden and not f.endswith(("_at", "_id"))
                    and node.row.get(f, "") is not None]
    asked = g.rng.sample(worth_asking, min(asks or g.rng.randint(1, 2), len(worth_asking)))
    return PlannedAction(tool.tool, {p: node.row[tool.columns[p][1]] for p in tool.roles}, node, node.depth,
                         asks_for=sorted(asked, key=worth_asking.index))


def ranking_read(tool: SqlTool, g: Grounding) -> PlannedAction:
    """Top-N or an aggregate per parent: the first row's computed values, or the first rows' names."""
    args = {p: g.rng.randint(*LIMIT_RANGE) for p in tool.roles}
    computed = tool.computed_fields
    if computed:
        return PlannedAction(tool.tool, args, asks_for=computed[:3], answer_rows=1)
    asked = _present([identifying_field(tool.result_fields, _keys(g, tool.table))])
    return PlannedAction(tool.tool, args, asks_for=asked, answer_rows=ANSWER_ROWS_LISTED)


def _update(tree: EntityTree, g: Grounding, target: int) -> list[PlannedAction]:
    options = [(n, t) for n in tree.nodes() for t in g.catalog.updates(n.table)
               if fillable(t, n.row, t.params("match")) and t.columns[t.params("new_value")[0]][1] in n.row]
    if not options:
        return []
    node, tool = g.rng.choice(options)
    param = tool.params("new_value")[0]
    column = tool.columns[param][1]
    values = g.rows.column_values(node.table).get(column, [])
    value = new_value(node.row[column], values, g.rng)
    if _is_unique(g.db_schema.table(node.table), column):
        value = fresh_value(value, g.rows.max_value(node.table, column), g.rng)
    return [PlannedAction(tool.tool, {**_key_arguments(tool, node.row), param: value}, node, node.depth)]


def _delete(tree: EntityTree, g: Grounding, target: int) -> list[PlannedAction]:
    """A row nothing references, or one whose few children the toolset can delete first (for a longer task)."""
    def deletion(node: EntityNode) -> PlannedAction | None:
        tools = [t for t in g.catalog.deletes(node.table) if fillable(t, node.row, list(t.roles))]
        return PlannedAction(tools[0].tool, _key_arguments(tools[0], node.row), node, node.depth) if tools else None

    def known_leaf(node: EntityNode) -> bool:  # its references were counted (or its table has none) and are none
        return (bool(node.child_counts) or not _referenced(g.db_schema, node.table)) and node.is_leaf

    counted = [n for n in tree.nodes() if n.child_counts or not _referenced(g.db_schema, n.table)]
    leaves = [[d] for n in counted if known_leaf(n) and (d := deletion(n))]
    with_children = []
    for node in counted:
        kids = [c for rows in node.children.values() for c in rows]
        if node.is_leaf or not node.children_all_present or len(kids) > MAX_CHILDREN_DELETED_FIRST:
            continue
        first = [deletion(c) if known_leaf(c) else None for c in kids]
        last = deletion(node)
        if last and all(first):
            with_children.append(first + [last])
    prefer, fallback = (with_children, leaves) if target >= 3 else (leaves, with_children)
    options = prefer or fallback
    return list(g.rng.choice(options)) if options else []


def _insert(tree: EntityTree, g: Grounding, target: int) -> list[PlannedAction]:
    """A new row under a record of the tree (a new ticket for this customer), with fresh unique values."""
    nodes = tree.nodes()
    attached = [(t, fk, n) for n in nodes for t, fk in _references_to(g.db_schema, n.table) if g.catalog.creates(t.name)]
    if attached:
        table, fk, parent = g.rng.choice(attached)
    else:
        creatable = sorted(g.catalog.tables_with(EffectKind.EFFECT_KIND_INSERT) & set(g.db_schema.table_names))
        if not creatable:
            return []
        table, fk, parent = g.db_schema.table(g.rng.choice(creatable)), None, None
    tool = g.rng.choice(g.catalog.creates(table.name))
    arguments = insert_arguments(tool, table, fk, parent, nodes, g)
    if arguments is None:
        return []
    hops = min(parent.depth + 1, MAX_DEPTH) if parent else 0
    return [PlannedAction(tool.tool, arguments, parent, hops)]


def insert_arguments(tool: SqlTool, table: Table, fk, parent: EntityNode | None, nodes: list[EntityNode],
                     g: Grounding, tries: int = 3) -> dict | None:
    """A copy of a real row (so NOT NULL and checks hold), pointed at the tree's records, unique values fresh."""
    for _ in range(tries):
        raw = g.rows.random_row(table.name, g.rng)
        if raw is None:
            return None
        row = json_value(raw)
        for other in table.foreign_keys:
            near = [n for n in nodes if n.table == other.ref_table and len(other.columns) == 1]
            chosen = parent if other is fk else (g.rng.choice(near) if near else None)
            if chosen is not None:
                row[other.columns[0]] = chosen.row[other.ref_columns[0]]
        for column in _fresh_columns(table):
            if row.get(column) is not None:
                row[column] = fresh_value(row[column], g.rows.max_value(table.name, column), g.rng)
        arguments = {p: row.get(tool.columns[p][1]) for p in tool.roles}
        if all(arguments[p] is not None for p in tool.required if p in arguments):
            return {p: v for p, v in arguments.items() if v is not None}
    return None


def _path_reads(tree: EntityTree, g: Grounding, main: list[PlannedAction], room: int) -> list[PlannedAction]:
    """Reads of the records from the root down to the one acted on (a write's own record last): the hops a
    person takes through their data before the change."""
    node = main[0].node
    if room <= 0 or node is None:
        return []
    path = _path_to(tree.root, node) or [node]
    if main[0].tool.effect.kind == EffectKind.EFFECT_KIND_READ:  # a read of the record itself needs no second read of it
        path = path[:-1]
    reads = []
    for step in path:
        tools = [t for t in g.catalog.record_reads(step.table) if fillable(t, step.row, list(t.roles))]
        if tools:
            reads.append(record_read(tools[0], step, g, asks=1))
    return reads[:room]


def _path_to(at: EntityNode, target: EntityNode) -> list[EntityNode] | None:
    if at is target:
        return [at]
    for nxt in list(at.parents.values()) + [c for rows in at.children.values() for c in rows]:
        rest = _path_to(nxt, target)
        if rest:
            return [at] + rest
    return None


def _with_lookup(actions: list[PlannedAction], g: Grounding) -> list[PlannedAction]:
    """When the first record acted on by key can be found by a value its owner knows, search for it first."""
    first = next((a for a in actions if _names_its_record_by_key(a, g)), None)
    if first is None:
        return actions
    node = first.node
    table = node.table
    for tool in g.rng.sample(g.catalog.person_known_searches(table), len(g.catalog.person_known_searches(table))):
        param = tool.params("pattern", "bare_pattern")[0]
        value = node.row.get(tool.columns[param][1])
        if isinstance(value, str) and value.strip() and g.rows.count_containing(table, tool.columns[param][1], value) == 1:
            return [PlannedAction(tool.tool, {param: value}, node, node.depth, answer_rows=0)] + actions
    return actions


def _names_its_record_by_key(action: PlannedAction, g: Grounding) -> bool:
    """The action names its record by key: its own key, or for an insert the reference to the parent record."""
    node = action.node
    if node is None:
        return False
    columns = {c for _t, c in _columns_of(action, g).values()}
    if action.tool.effect.kind == EffectKind.EFFECT_KIND_INSERT:
        return any(_refers_to(g, action, c, node.table) for c in columns)
    keys = set(_keys(g, node.table))
    return bool(keys) and keys <= columns


def mark_looked_up(actions: list[PlannedAction], db_schema: DatabaseSchema) -> None:
    """A key argument whose value an earlier action's record holds is one the agent looks up, not one the user
    gives (get_subscription, then get_plan with the subscription's plan_id)."""
    known: set[tuple[str, str]] = set()
    for action in actions:
        tool_table = action.tool.effect.table
        table = db_schema.table(tool_table) if tool_table in db_schema.table_names else None
        key_like = set(table.primary_key) | {c for fk in table.foreign_keys for c in fk.columns} if table else set()
        for param, value in action.arguments.items():
            column = action.tool.sql.parameter_columns.get(param, "").split(".", 1)[-1]
            if column in key_like and (column, json.dumps(value)) in known:
                action.looked_up.append(param)
        if action.node is not None and action.tool.effect.kind in (EffectKind.EFFECT_KIND_READ,
                                                                   EffectKind.EFFECT_KIND_UPDATE):
            known |= {(c, json.dumps(v)) for c, v in action.node.row.items()}


# --- values -----------------------------------------------------------------------------------------------------


def new_value(old: Any, column_values: list[Any], rng: random.Random) -> Any:
    """A different, plausible value for an update: another value the column holds, or a nudge of the old one."""
    others = [v for v in column_values if v is not None and v != old]
    if isinstance(old, bool):
        return not old
    if isinstance(old, (int, float)):
        return round(old * 1.1 + 1, 2) if isinstance(old, float) else old + 1
    if isinstance(old, str) and looks_like_date(old):
        return (dt.date.fromisoformat(old[:10]) + dt.timedelta(days=7)).isoformat()
    if others:
        return rng.choice(others)
    return f"{old} (updated)"


def fresh_value(value: Any, top: Any, rng: random.Random) -> Any:
    """A value no row holds yet, like the one given: an email gets a tag, text a suffix, a number goes past the
    largest."""
    if isinstance(value, str):
        tag = f"{rng.randrange(16 ** 4):04x}"
        local, at, domain = value.partition("@")
        return f"{local}+{tag}@{domain}" if at else f"{value} {tag}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (top if isinstance(top, (int, float)) else 0) + 1 + rng.randrange(100)
    return value


def looks_like_date(s: str) -> bool:
    try:
        dt.date.fromisoformat(s[:10])
        return len(s) == 10
    except ValueError:
        return False


def search_word(value: str, rng: random.Random) -> str:
    """What a person types to find something: one word of it (as tool verification searches)."""
    words = [w for w in value.split() if len(w) >= 3]
    return rng.choice(words) if words else value


# --- schema helpers ---------------------------------------------------------------------------------------------


def _keys(g: Grounding, table: str) -> list[str]:
    return g.db_schema.table(table).primary_key if table in g.db_schema.table_names else []


def _referenced(db_schema: DatabaseSchema, table: str) -> bool:
    return any(fk.ref_table == table for t in db_schema.tables for fk in t.foreign_keys)


def _references_to(db_schema: DatabaseSchema, table: str) -> list[tuple[Table, Any]]:
    return [(t, fk) for t in db_schema.tables for fk in t.foreign_keys if fk.ref_table == table and len(fk.columns) == 1]


def _refers_to(g: Grounding, action: PlannedAction, column: str, table: str) -> bool:
    own = g.db_schema.table(action.tool.effect.table)
    return any(fk.ref_table == table and fk.columns == [column] for fk in own.foreign_keys)


def _columns_of(action: PlannedAction, g: Grounding) -> dict[str, tuple[str, str]]:
    return {p: tuple(tc.split(".", 1)) for p, tc in action.tool.sql.parameter_columns.items()
            if p in action.arguments and "." in tc}


def _fresh_columns(table: Table) -> list[str]:
    """Columns that must not repeat: a key the database does not generate, single-column unique keys."""
    keys = [table.primary_key] if table.primary_key and table.identity_column is None else []
    return [k[0] for k in keys + table.unique_keys if len(k) == 1]


def _is_unique(table: Table, column: str) -> bool:
    return [column] in table.unique_keys or table.primary_key == [column]


def _present(items: list) -> list:
    return [i for i in items if i]
