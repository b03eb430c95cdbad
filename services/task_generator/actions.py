"""Golden actions of every kind the toolset has, grounded in an entity tree.

A task has a main action (a read, an insert, an update or a delete, drawn by the action mix) on a record of the
tree, and a route to that record from something the person knows (routes.py): a search by their e-mail or phone
number, then hops along foreign keys, each key taken from the result before. The person asks for it in one
request; a harder task asks first about a record on the way and then, in a second request, acts from there.
"""
from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import dataclass, field
from typing import Any, Callable

from services.task_generator.entity_tree import MAX_DEPTH, EntityNode, EntityTree, RowSource, row_key
from services.task_generator.routes import Anchor, Hop, Route, TreeIndex, routes, search_anchors
from services.task_generator.tool_catalog import SqlTool, ToolCatalog, identifying_field
from shared.contracts import Difficulty, EffectKind, GoldenAction, Tool
from shared.env.dbschema import DatabaseSchema, Table
from shared.env.json_values import json_value

ACTION_KINDS = ("read", "insert", "update", "delete")
WRITE_SPLIT = {"insert": 1.0, "update": 5.0, "delete": 1.0}  # DySQL-Bench: about half updates, a tenth each
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
    returns: list[tuple[str, dict]] = field(default_factory=list)  # (table, row) it brings back that planning knows

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
    # Child lists the trajectory's earlier tasks added a row to, (table, column, parent value): "the latest invoice"
    # of that parent is no longer the one planning sees.
    blocked: set[tuple[str, str, str]] = field(default_factory=set)
    updated: set[tuple] = field(default_factory=set)  # (row key, column) an earlier task already changed
    edit: Callable[[Table, dict], "dict | None"] = lambda _table, row: row  # a row as earlier tasks left it


# --- the action mix ---------------------------------------------------------------------------------------------


def action_mix(settings) -> dict[str, float]:
    """The configured mix; without one, write_task_share split as DySQL-Bench splits writes."""
    mix = {kind: max(getattr(settings.action_mix, kind), 0.0) for kind in ACTION_KINDS}
    if sum(mix.values()) > 0:
        return mix
    share = min(max(settings.write_task_share, 0.0), 1.0)
    total = sum(WRITE_SPLIT.values())
    return {"read": 1.0 - share, **{kind: share * w / total for kind, w in WRITE_SPLIT.items()}}


def pick_kind(mix: dict[str, float], u: float, available: set[str]) -> str:
    """The kind at quantile `u` of the mix, among those the toolset can do; reads when it can do none of them."""
    weights = {k: w for k, w in mix.items() if k in available and w > 0}
    if not weights:
        return "read"
    return at_quantile(u, weights)


def at_quantile(u: float, weights: dict) -> Any:
    """The choice whose share of the weights' cumulative sum holds `u` (0 <= u < 1)."""
    total = sum(weights.values())
    running = 0.0
    for choice, weight in weights.items():
        running += weight / total
        if u < running:
            return choice
    return next(reversed(weights))


# --- difficulty -------------------------------------------------------------------------------------------------

# What each drawn difficulty aims at: foreign-key hops from what the person knows to the record acted on, and how
# many requests the task makes (a second one continues from where the first one's answer left off).
AIMS = {Difficulty.DIFFICULTY_EASY: (0, 1), Difficulty.DIFFICULTY_MEDIUM: (1, 1), Difficulty.DIFFICULTY_HARD: (2, 2)}


def difficulty_of(action_count: int, hops: int, writes: bool = False) -> int:
    """A task's difficulty from what it takes, not from the label it was drawn with: every foreign-key hop the
    agent must discover, a change to the data, and a long chain of calls each add a point."""
    points = hops + writes + (action_count >= 4)
    return [Difficulty.DIFFICULTY_EASY, Difficulty.DIFFICULTY_MEDIUM, Difficulty.DIFFICULTY_HARD][min(max(points - 1, 0), 2)]


# --- requests ---------------------------------------------------------------------------------------------------


@dataclass
class PlannedRequest:
    """One thing the person asks for in one message: the calls it takes, its main action last. The calls before it
    find the keys it needs (a search by what the person knows, a hop along a foreign key) or go first (the rows
    deleted before the one asked for)."""

    actions: list[PlannedAction]
    route: Route | None = None  # how the person names the record (None: by the values they give)

    @property
    def main(self) -> PlannedAction:
        return self.actions[-1]

    @property
    def hops(self) -> int:
        return len(self.route.hops) if self.route else 0


class Known:
    """What the agent has in hand at a point of the trajectory: values returned by earlier calls, by the column
    they identify. A reference is filed under the key it points at (a subscription's plan_id under plans.plan_id),
    so the key a row carries and the key a list takes match however the columns are named."""

    def __init__(self, db_schema: DatabaseSchema):
        self.db_schema = db_schema
        self.values: set[tuple[str, str, str]] = set()

    def canonical(self, table: str, column: str) -> tuple[str, str]:
        if table in self.db_schema.table_names:
            for fk in self.db_schema.table(table).foreign_keys:
                if fk.columns == [column]:
                    return fk.ref_table, fk.ref_columns[0]
        return table, column

    def add_row(self, table: str, row: dict) -> None:
        for column, value in row.items():
            if value is not None:
                self.values.add((*self.canonical(table, column), json.dumps(value)))

    def has(self, table: str, column: str, value: Any) -> bool:
        return (*self.canonical(table, column), json.dumps(value)) in self.values

    def copy(self) -> "Known":
        other = Known(self.db_schema)
        other.values = set(self.values)
        return other


def key_like(db_schema: DatabaseSchema, table: str, column: str) -> bool:
    """A key or a reference: a value a person does not know and an agent must find."""
    if table not in db_schema.table_names:
        return False
    t = db_schema.table(table)
    return column in t.primary_key or any(column in fk.columns for fk in t.foreign_keys)


def settle_arguments(action: PlannedAction, known: Known, db_schema: DatabaseSchema) -> bool:
    """Marks the arguments the agent takes from earlier results (looked up); False when a key the person cannot know
    is neither looked up nor given some other way."""
    action.looked_up = []
    complete = True
    for param, value in action.arguments.items():
        binding = action.tool.sql.parameter_columns.get(param, "")
        if "." not in binding:
            continue
        table, column = binding.split(".", 1)
        if not key_like(db_schema, table, column):
            continue
        if known.has(table, column, value):
            action.looked_up.append(param)
        else:
            complete = False
    return complete


def learn(action: PlannedAction, known: Known) -> None:
    for table, row in action.returns:
        known.add_row(table, row)


# --- planning ---------------------------------------------------------------------------------------------------


def plan_requests(kind: str, tree: EntityTree, g: Grounding, aim: tuple[int, int], known: Known,
                  anchors_known: list[Anchor] = (), chained: bool = True,
                  keys_given: bool = False) -> list[PlannedRequest]:
    """The task's requests in order; empty when the tree offers nothing of this kind. `aim`: (hops, requests) the
    drawn difficulty asks for. `known`: what earlier tasks brought back; `anchors_known`: records they named, which
    this task may start from ("that subscription"). `chained`: the agent can take keys from earlier results (not
    so when a model invents the tools' answers): the person then gives every value. `keys_given`: when no route
    reaches a record (a database without names, e-mails or phone numbers to search by), the person gives its key,
    as one does with an order number."""
    direct = not chained or keys_given
    index = TreeIndex(tree)
    if direct:
        found, reachable = [], None
    else:
        anchors = list(anchors_known) + search_anchors(index, g.catalog, g.rows, g.rng)
        found = routes(anchors, index, g.catalog, blocked=g.blocked)
        reachable = {id(r.target) for r in found}
    mains = {"read": _read, "insert": _insert, "update": _update, "delete": _delete}[kind](
        tree, g, aim[0], reachable, index)
    if not mains:
        return []
    if direct or mains[0][-1].node is None:
        # Without keys to find (tools a model simulates) the person gives every value; a ranking or a text search
        # names no record, so it needs no route either.
        main = mains[0]
        return [PlannedRequest(_settled(main, known.copy(), g) or main)]
    options = []
    for main in mains:
        for route in found:
            if route.target is main[-1].node:
                requests = _requests_along(route, main, g, known, aim[1], index)
                if requests:
                    options.append((route, requests))
    if not options:
        return []
    want = aim[0]

    def fit(option) -> tuple:
        route, requests = option
        # Given a record the conversation has, a route from it (a task that builds on the ones before); then the
        # hops asked for, then as many requests as asked.
        return (bool(anchors_known) and route.anchor.search is not None, abs(len(route.hops) - want),
                abs(len(requests) - aim[1]))

    best = min(fit(o) for o in options)
    return g.rng.choice([o[1] for o in options if fit(o) == best])


def _requests_along(route: Route, main: list[PlannedAction], g: Grounding, known: Known,
                    requests_wanted: int, index: TreeIndex) -> list[PlannedRequest]:
    """The calls the route takes, then the main actions; split in two requests when asked (the first one reads a
    record on the way, the second continues from it). Empty when some key cannot be found along the route."""
    anchor, last_kind = route.anchor, main[-1].tool.effect.kind
    reads = last_kind == EffectKind.EFFECT_KIND_READ
    if anchor.search is None and not route.hops and reads:
        return []  # the record's values came back already: asking again makes no call
    for with_last_get in (False, True):
        calls: list[PlannedAction] = []
        if anchor.search is not None:
            calls.append(PlannedAction(anchor.search.tool, {anchor.parameter: anchor.value}, anchor.node,
                                       anchor.node.depth, answer_rows=0,
                                       returns=[(anchor.node.table, anchor.node.row)]))
        actions = list(main)
        for i, hop in enumerate(route.hops):
            last = i == len(route.hops) - 1
            if hop.up:
                # The record's own values are needed to go further up, or (a last resort) for the main action.
                if (not last and route.hops[i + 1].up) or (last and with_last_get and not reads):
                    if hop.get is None:
                        break
                    calls.append(PlannedAction(hop.get.tool, _fill(hop.get, hop.node.row), hop.node,
                                               hop.node.depth, answer_rows=0,
                                               returns=[(hop.node.table, hop.node.row)]))
            elif last and reads:
                actions = [_as_list_read(hop, main[-1])]  # the list's first row is the record asked about
            else:
                calls.append(_list_call(hop, answer_rows=0))
        else:
            if not route.hops and anchor.search is not None and reads:
                calls, actions = [], [_as_search_read(calls[0], main[-1])]
            if last_kind == EffectKind.EFFECT_KIND_DELETE and len(actions) > 1:
                actions = _children_listed_first(route.target, actions, g, index)
            planned = _settled(calls + actions, known.copy(), g) if actions else None
            if planned and _clear(planned):
                requests = [PlannedRequest(planned, route)]
                if requests_wanted > 1:
                    requests = _split(route, planned, g) or requests
                return requests
        if not route.hops or not route.hops[-1].up:
            break
    return []


def _clear(actions: list[PlannedAction]) -> bool:
    """No two values the person gives in one request go by the same name (the line's phone number to find it and
    the new line's phone number): a request that says "phone number" twice leaves the agent guessing which is which."""
    given: dict[str, str] = {}
    for action in actions:
        for param, value in action.given.items():
            if given.setdefault(param, json.dumps(value)) != json.dumps(value):
                return False
    return True


def _settled(actions: list[PlannedAction], known: Known, g: Grounding) -> list[PlannedAction] | None:
    """The actions with their looked-up arguments marked, or None when one needs a key nothing before it gave."""
    for action in actions:
        if not settle_arguments(action, known, g.db_schema):
            return None
        learn(action, known)
    return actions


def _fill(tool: SqlTool, row: dict) -> dict[str, Any]:
    return {p: row[tool.columns[p][1]] for p in tool.roles}


def _list_call(hop: Hop, answer_rows: int) -> PlannedAction:
    tool = hop.children
    param = tool.params("match")[0]
    kids = [hop.node]  # the row singled out; the others the list returns are not needed downstream
    return PlannedAction(tool.tool, {param: hop.node.row[tool.columns[param][1]]}, hop.node, hop.node.depth,
                         answer_rows=answer_rows, returns=[(hop.node.table, k.row) for k in kids])


def _as_search_read(search: PlannedAction, read: PlannedAction) -> PlannedAction:
    """A read of the record the person names: the search that finds it already returns what they ask."""
    fields = set(sql_tool_fields(search.tool))
    search.asks_for = [f for f in read.asks_for if f in fields] or read.asks_for[:1]
    search.answer_rows = 1
    return search


def _as_list_read(hop: Hop, read: PlannedAction) -> PlannedAction:
    """A read of a record reached down a list: the list's first row carries what the person asks."""
    listed = _list_call(hop, answer_rows=1)
    fields = set(hop.children.result_fields)
    listed.asks_for = [f for f in read.asks_for if f in fields] or [
        f for f in fields if f in hop.node.row and hop.node.row[f] is not None and f not in _hidden(hop.node, listed)][:1]
    return listed


def _children_listed_first(node: EntityNode, main: list[PlannedAction], g: Grounding,
                           index: TreeIndex) -> list[PlannedAction]:
    """A delete of a record with children: the agent lists each kind of child to learn their keys, deletes them,
    then the record."""
    lists = []
    for relation, kids in index.children_of(node).items():
        if not kids:
            continue
        table, column = relation.split(".", 1)
        tools = g.catalog.child_lists(table, column)
        if not tools:
            return []
        param = tools[0].params("match")[0]
        lists.append(PlannedAction(tools[0].tool, {param: kids[0].row[column]}, node, node.depth, answer_rows=0,
                                   returns=[(table, k.row) for k in kids]))
    return lists + main


def _split(route: Route, actions: list[PlannedAction], g: Grounding) -> list[PlannedRequest] | None:
    """Two requests: first the person asks about a record on the way (a lookup becomes a read they want the
    answer of), then, in their next message, for the main action from there."""
    candidates = [i for i, a in enumerate(actions[:-1]) if a.node is not None and a.answer_rows == 0
                  and a.tool.effect.kind == EffectKind.EFFECT_KIND_READ and _askable(a, g)
                  and any(n is a.node for n in route.nodes)]
    if not candidates:
        return None
    i = g.rng.choice(candidates)
    first = actions[i]
    first.asks_for = _askable(first, g)[: g.rng.randint(1, 2)]
    first.answer_rows = 1
    at = next(j for j, n in enumerate(route.nodes) if n is first.node)
    return [PlannedRequest(actions[: i + 1], Route(route.anchor, route.hops[:at])),
            PlannedRequest(actions[i + 1:], Route(Anchor(first.node), route.hops[at:]))]


def _hidden(node: EntityNode, action: PlannedAction, db_schema: DatabaseSchema | None = None) -> set[str]:
    """Fields not worth asking about: keys, references, stamps and the values the call was made with."""
    hidden = {tc.split(".", 1)[-1] for p, tc in action.tool.sql.parameter_columns.items() if p in action.arguments}
    if db_schema is not None and node.table in db_schema.table_names:
        table = db_schema.table(node.table)
        hidden |= set(table.primary_key) | {c for fk in table.foreign_keys for c in fk.columns}
    return hidden | {f for f in node.row if f.endswith(("_at", "_id")) or f == "id"}


def _askable(action: PlannedAction, g: Grounding) -> list[str]:
    """Fields of the record the person could want to know: not keys, references, stamps or the value searched by."""
    node = action.node
    hidden = _hidden(node, action, g.db_schema)
    fields = [f for f, v in node.row.items() if f not in hidden and v is not None]
    listed = set(sql_tool_fields(action.tool))
    return [f for f in fields if not listed or f in listed]


def sql_tool_fields(tool: Tool) -> list[str]:
    schema = json.loads(tool.output_schema_json or "{}")
    shape = schema.get("items", schema)
    return [f for f in shape.get("properties", {}) if f != "found"]


# --- main actions of each kind: candidates on the tree's records -------------------------------------------------


def fillable(tool: SqlTool, row: dict, params: list[str]) -> bool:
    return all(row.get(tool.columns[p][1]) is not None for p in params)


def _key_arguments(tool: SqlTool, row: dict) -> dict[str, Any]:
    return {p: row[tool.columns[p][1]] for p in tool.params("match")}


Reachable = "set[int] | None"  # ids of the tree's records some route reaches (None: any record)
MAIN_CANDIDATES = 8  # records a kind's main action is tried on, among those a route reaches


def _on(nodes: list[EntityNode], reachable) -> list[EntityNode]:
    return [n for n in nodes if reachable is None or id(n) in reachable]


def _read(tree: EntityTree, g: Grounding, hops: int, reachable: Reachable = None,
          index: TreeIndex | None = None) -> list[list[PlannedAction]]:
    """Candidates: a record's values (reached by a route), a text search, or a ranking (no record)."""
    records = [(t, n) for n in _on(tree.nodes(), reachable) for t in g.catalog.record_reads(n.table)
               if fillable(t, n.row, list(t.roles))]
    g.rng.shuffle(records)
    records = [[record_read(t, n, g)] for t, n in records[:MAIN_CANDIDATES]]
    searches = [(n, t) for n in tree.nodes() for t in g.catalog.searches(n.table)
                if isinstance(n.row.get(t.columns[next(iter(t.roles))][1]), str)]
    rankings = g.catalog.ranking_reads()
    # Records first whenever a route can be asked for: a search or a ranking is a single call.
    if records and (hops > 0 or g.rng.random() < 0.6):
        return records
    if searches and (not rankings or g.rng.random() < 0.5):
        node, tool = g.rng.choice(searches)
        param = next(iter(tool.roles))
        pattern = search_word(node.row[tool.columns[param][1]], g.rng)
        return [[PlannedAction(tool.tool, {param: pattern}, None, node.depth,
                               asks_for=_present([identifying_field(tool.result_fields, _keys(g, node.table))]),
                               answer_rows=ANSWER_ROWS_LISTED)]]
    if rankings:
        return [[ranking_read(g.rng.choice(rankings), g)]]
    return records


def record_read(tool: SqlTool, node: EntityNode, g: Grounding, asks: int | None = None) -> PlannedAction:
    """A lookup of the record: the user wants one or two of its values."""
    table = g.db_schema.table(node.table)
    hidden = set(_keys(g, node.table)) | {c for fk in table.foreign_keys for c in fk.columns} | set(tool.roles)
    worth_asking = [f for f in tool.result_fields if f not in hidden and not f.endswith(("_at", "_id"))
                    and node.row.get(f, "") is not None]
    asked = g.rng.sample(worth_asking, min(asks or g.rng.randint(1, 2), len(worth_asking)))
    return PlannedAction(tool.tool, {p: node.row[tool.columns[p][1]] for p in tool.roles}, node, node.depth,
                         asks_for=sorted(asked, key=worth_asking.index), returns=[(node.table, node.row)])


def ranking_read(tool: SqlTool, g: Grounding) -> PlannedAction:
    """Top-N or an aggregate per parent: the first row's computed values, or the first rows' names."""
    args = {p: g.rng.randint(*LIMIT_RANGE) for p in tool.roles}
    computed = tool.computed_fields
    if computed:
        return PlannedAction(tool.tool, args, asks_for=computed[:3], answer_rows=1)
    asked = _present([identifying_field(tool.result_fields, _keys(g, tool.table))])
    return PlannedAction(tool.tool, args, asks_for=asked, answer_rows=ANSWER_ROWS_LISTED)


def _update(tree: EntityTree, g: Grounding, hops: int, reachable: Reachable = None,
            index: TreeIndex | None = None) -> list[list[PlannedAction]]:
    options = [(n, t) for n in _on(tree.nodes(), reachable) for t in g.catalog.updates(n.table)
               if fillable(t, n.row, t.params("match")) and t.columns[t.params("new_value")[0]][1] in n.row
               and (row_key(g.db_schema.table(n.table), n.row), t.columns[t.params("new_value")[0]][1]) not in g.updated]
    g.rng.shuffle(options)
    out = []
    for node, tool in options[:MAIN_CANDIDATES]:
        param = tool.params("new_value")[0]
        column = tool.columns[param][1]
        values = g.rows.column_values(node.table).get(column, [])
        value = new_value(node.row[column], values, g.rng)
        if _is_unique(g.db_schema.table(node.table), column):
            value = fresh_value(value, g.rows.max_value(node.table, column), g.rng)
        changed = {**node.row, column: value}
        out.append([PlannedAction(tool.tool, {**_key_arguments(tool, node.row), param: value}, node, node.depth,
                                  returns=[(node.table, changed)])])
    return out


def _delete(tree: EntityTree, g: Grounding, hops: int, reachable: Reachable = None,
            index: TreeIndex | None = None) -> list[list[PlannedAction]]:
    """A row nothing references, or one whose few children the toolset can delete first (a longer task)."""
    def deletion(node: EntityNode) -> PlannedAction | None:
        tools = [t for t in g.catalog.deletes(node.table) if fillable(t, node.row, list(t.roles))]
        return PlannedAction(tools[0].tool, _key_arguments(tools[0], node.row), node, node.depth) if tools else None

    def known_leaf(node: EntityNode) -> bool:  # its references were counted (or its table has none) and are none
        return (bool(node.child_counts) or not _referenced(g.db_schema, node.table)) and node.is_leaf

    index = index or TreeIndex(tree)
    counted = [n for n in _on(tree.nodes(), reachable) if n.child_counts or not _referenced(g.db_schema, n.table)]
    leaves = [[d] for n in counted if known_leaf(n) and (d := deletion(n))]
    with_children = []
    for node in counted:
        kids = _all_children(node, index)
        if node.is_leaf or kids is None or len(kids) > MAX_CHILDREN_DELETED_FIRST:
            continue
        first = [deletion(c) if known_leaf(c) else None for c in kids]
        last = deletion(node)
        if last and all(first):
            with_children.append(first + [last])
    g.rng.shuffle(leaves)
    g.rng.shuffle(with_children)
    return (with_children + leaves) if hops >= 2 else (leaves + with_children)


def _all_children(node: EntityNode, index: TreeIndex) -> list[EntityNode] | None:
    """Every row that references the record, when the tree holds them all (none left out by sampling)."""
    children = index.children_of(node)
    if any(len(children.get(relation, [])) != count for relation, count in node.child_counts.items()):
        return None
    return [k for kids in children.values() for k in kids]


def _insert(tree: EntityTree, g: Grounding, hops: int, reachable: Reachable = None,
            index: TreeIndex | None = None) -> list[list[PlannedAction]]:
    """A new row under a record of the tree (a new ticket for this customer), with fresh unique values."""
    nodes = tree.nodes()
    attached = [(t, fk, n) for n in _on(nodes, reachable) for t, fk in _references_to(g.db_schema, n.table)
                if g.catalog.creates(t.name)]
    g.rng.shuffle(attached)
    out = []
    for table, fk, parent in attached[:MAIN_CANDIDATES]:
        tool = g.rng.choice(g.catalog.creates(table.name))
        arguments = insert_arguments(tool, table, fk, parent, nodes, g)
        if arguments is not None:
            out.append([PlannedAction(tool.tool, arguments, parent, min(parent.depth + 1, MAX_DEPTH))])
    if out:
        return out
    creatable = sorted(g.catalog.tables_with(EffectKind.EFFECT_KIND_INSERT) & set(g.db_schema.table_names))
    if not creatable:
        return []
    table = g.db_schema.table(g.rng.choice(creatable))
    tool = g.rng.choice(g.catalog.creates(table.name))
    arguments = insert_arguments(tool, table, None, None, nodes, g)
    return [[PlannedAction(tool.tool, arguments)]] if arguments is not None else []


def insert_arguments(tool: SqlTool, table: Table, fk, parent: EntityNode | None, nodes: list[EntityNode],
                     g: Grounding, tries: int = 3) -> dict | None:
    """A copy of a real row (so NOT NULL and checks hold), pointed at the tree's records, unique values fresh."""
    for _ in range(tries):
        raw = g.rows.random_row(table.name, g.rng)
        if raw is None:
            return None
        row = json_value(raw)
        for other in table.foreign_keys:
            if other is not fk and parent is not None and _same_reference(g.db_schema, parent, other):
                # A new ticket for a subscription belongs to that subscription's customer, not to anybody's.
                row[other.columns[0]] = parent.row[other.columns[0]]
                continue
            near = [n for n in nodes if n.table == other.ref_table and len(other.columns) == 1]
            chosen = parent if other is fk else (g.rng.choice(near) if near else None)
            if chosen is not None:
                row[other.columns[0]] = chosen.row[other.ref_columns[0]]
        for column in _fresh_columns(table):
            if row.get(column) is not None:
                row[column] = fresh_value(row[column], g.rows.max_value(table.name, column), g.rng)
        arguments = {p: row.get(tool.columns[p][1]) for p in tool.roles}
        if all(arguments[p] is not None for p in tool.required if p in arguments) and _new_key(table, row, g) \
                and _references_exist(table, row, g):
            return {p: v for p, v in arguments.items() if v is not None}
    return None


def _references_exist(table: Table, row: dict, g: Grounding) -> bool:
    """Every row the new one references is there, as the trajectory's earlier tasks left the data."""
    for fk in table.foreign_keys:
        if len(fk.columns) != 1 or row.get(fk.columns[0]) is None:
            continue
        parent = g.rows.row_by_key(fk.ref_table, fk.ref_columns[0], row[fk.columns[0]])
        if parent is None or g.edit(g.db_schema.table(fk.ref_table), json_value(parent)) is None:
            return False
    return True


def _new_key(table: Table, row: dict, g: Grounding) -> bool:
    """No row holds the new row's key yet (a key of several columns, or one that is also a reference, cannot be
    made fresh: it must simply not be taken)."""
    key = table.primary_key
    if not key or table.identity_column is not None or any(row.get(c) is None for c in key):
        return True
    same, _ = g.rows.referencing_rows(table.name, key[0], row[key[0]], 200, g.rng)
    return not any(all(json_value(r.get(c)) == row[c] for c in key) for r in same)


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


def _same_reference(db_schema: DatabaseSchema, parent: EntityNode, fk) -> bool:
    """The parent row references the same table through a column of the same name."""
    return len(fk.columns) == 1 and parent.row.get(fk.columns[0]) is not None and any(
        own.columns == fk.columns and own.ref_table == fk.ref_table
        for own in db_schema.table(parent.table).foreign_keys)


def _fresh_columns(table: Table) -> list[str]:
    """Columns that must not repeat: a key the database does not generate, single-column unique keys."""
    keys = [table.primary_key] if table.primary_key and table.identity_column is None else []
    references = {c for fk in table.foreign_keys for c in fk.columns}  # a new number would point at nothing
    return [k[0] for k in keys + table.unique_keys if len(k) == 1 and k[0] not in references]


def _is_unique(table: Table, column: str) -> bool:
    return [column] in table.unique_keys or table.primary_key == [column]


def _present(items: list) -> list:
    return [i for i in items if i]
