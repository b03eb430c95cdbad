"""task-generator's planning: each task grounded in an entity tree of real records, or, without a database, in the
tool specs alone.

A trajectory's tasks are planned one after another over the data as the earlier ones leave it (TrajectoryEdits):
a later task usually starts from a record an earlier one named ("and cancel that subscription", "what plan is it
on?"), so it depends on what the conversation found. Across a seed's trajectories, each trajectory takes its own
positions of a shared sequence: roots are drawn without replacement and the kinds, difficulties and tables of
the tasks follow the configured mixes closely instead of by luck.
"""
from __future__ import annotations

import hashlib
import json
import math
import random
from dataclasses import dataclass, field
from typing import Callable

from services.task_generator import actions as golden
from services.task_generator.actions import Grounding, Known, PlannedAction, PlannedRequest
from services.task_generator.entity_tree import EntityTree, RowSource, build_tree, row_key
from services.task_generator.routes import Anchor
from services.task_generator.tool_catalog import ToolCatalog
from shared.contracts import EFFECT_KIND_OF_NAME, Difficulty, EffectKind, SeedToolset, TaskLength, Tool, ToolExecution
from shared.env.dbschema import DatabaseSchema, Table
from shared.env.tool_spec import mutates
from shared.runtime.errors import PermanentError

ROOT_ATTEMPTS = 8  # an empty table or a record nothing of the drawn kind can act on is skipped; this many tries
BUILD_ON_SHARE = 0.7  # a later task starts from a record an earlier one named this often (when one can be named)
# Irrational steps: position n of a seed's sequence draws n*step mod 1 for each choice, which covers [0, 1) evenly
# for any number of trajectories (a Weyl sequence), so the mixes hold on 20 trajectories as well as on 2,000.
STEPS = {"kind": (math.sqrt(5) - 1) / 2, "difficulty": math.sqrt(2) - 1, "table": math.sqrt(3) - 1}


@dataclass
class PlannedTask:
    tree: EntityTree | None  # all the task generator saw of the data (None without a database)
    kind: str  # read | insert | update | delete: its main action
    requests: list[PlannedRequest]
    builds_on: int = -1  # the earlier task of the trajectory whose record this one starts from

    @property
    def actions(self) -> list[PlannedAction]:
        return [a for r in self.requests for a in r.actions]

    @property
    def hops(self) -> int:
        return sum(r.hops for r in self.requests)

    @property
    def difficulty(self) -> int:
        return golden.difficulty_of(len(self.actions), self.hops, self.changes_data)

    @property
    def length(self) -> int:
        return TaskLength.TASK_LENGTH_SHORT if len(self.actions) < 3 else TaskLength.TASK_LENGTH_LONG

    @property
    def changes_data(self) -> bool:
        return any(mutates(a.tool) for a in self.actions)

    def records_json(self) -> str:
        """The records the actions read or write (the whole tree goes with the task, for the user simulator)."""
        touched = {id(a.node): a.node for a in self.actions if a.node is not None}
        return json.dumps([{"table": n.table, "record": n.row} for n in touched.values()], indent=1)

    def signature(self) -> str:
        """The task's golden calls with their values: two tasks with one signature are the same task."""
        return "\n".join(call_signature(a) for a in self.actions)


@dataclass
class TrajectoryEdits:
    """What the trajectory's earlier tasks did and found, so a later task sees the data as they leave it and can
    start from what the conversation already has."""

    deleted: set[tuple] = field(default_factory=set)
    changed: dict[tuple, dict] = field(default_factory=dict)
    blocked: set[tuple[str, str, str]] = field(default_factory=set)  # child lists an insert added to
    named: list[tuple[int, str, dict]] = field(default_factory=list)  # (task, table, row): records the tasks named
    updated: set[tuple] = field(default_factory=set)  # (row key, column) an earlier task changed: not again
    calls: set[str] = field(default_factory=set)  # the earlier tasks' golden calls: a later task repeats none
    known: Known | None = None  # values the earlier tasks' calls brought back

    def apply(self, table: Table, row: dict) -> dict | None:
        key = row_key(table, row)
        if key in self.deleted:
            return None
        return {**row, **self.changed.get(key, {})}

    def known_values(self, db_schema: DatabaseSchema) -> Known:
        if self.known is None:
            self.known = Known(db_schema)
        return self.known

    def record(self, db_schema: DatabaseSchema, task: PlannedTask, task_index: int = 0) -> None:
        known = self.known_values(db_schema)
        self.calls |= {call_signature(a) for a in task.actions}
        for action in task.actions:
            golden.learn(action, known)
            node, effect = action.node, action.tool.effect
            if effect.kind == EffectKind.EFFECT_KIND_INSERT and effect.table in db_schema.table_names:
                for fk in db_schema.table(effect.table).foreign_keys:
                    if len(fk.columns) == 1 and fk.columns[0] in action.arguments:
                        self.blocked.add((effect.table, fk.columns[0], json.dumps(action.arguments[fk.columns[0]])))
            if node is None or effect.table != node.table:
                continue
            key = row_key(db_schema.table(node.table), node.row)
            if effect.kind == EffectKind.EFFECT_KIND_DELETE:
                self.deleted.add(key)
            elif effect.kind == EffectKind.EFFECT_KIND_UPDATE:
                keys = db_schema.table(node.table).primary_key
                columns = {p: tc.split(".", 1)[-1] for p, tc in action.tool.sql.parameter_columns.items()}
                new = {columns[p]: v for p, v in action.arguments.items() if p in columns and columns[p] not in keys}
                self.changed.setdefault(key, {}).update(new)
                self.updated |= {(key, column) for column in new}
                node.row.update(new)
        for request in task.requests:
            target = request.main.node
            if target is not None and (not mutates(request.main.tool) or
                                       request.main.tool.effect.kind != EffectKind.EFFECT_KIND_DELETE):
                self.named.append((task_index, target.table, target.row))

    def nameable(self, db_schema: DatabaseSchema) -> list[tuple[int, str, dict]]:
        """Records a later task can call "that subscription": of each table, the one named last, when the task that
        named it named no other of its table (the conversation's latest subscription is "that subscription"); not
        since deleted, as the edits leave it."""
        latest: dict[str, tuple[int, str, dict]] = {}
        for named in self.named:
            latest[named[1]] = named
        out = []
        for task_index, table, row in latest.values():
            same_task = [n for n in self.named if n[0] == task_index and n[1] == table]
            current = self.apply(db_schema.table(table), row)
            if len(same_task) == 1 and current is not None:
                out.append((task_index, table, current))
        return out


@dataclass(frozen=True)
class Position:
    """Where a task sits in its seed's sequence: trajectory `index` of `trajectories`, task `task` of `tasks`;
    `variant` > 0 when the trajectory is planned again (its first plan repeated another's): past every slot the
    seed's first plans and their retries use."""

    index: int
    task: int
    trajectories: int
    tasks: int
    salt: str  # the seed's domain and random seed: the shuffles every replica shares
    variant: int = 0

    @property
    def slot(self) -> int:
        return self.task * max(self.trajectories, 1) + self.index + self.variant * self.stride * (ROOT_ATTEMPTS + 1)

    def draw(self, choice: str, attempt: int = 0) -> float:
        """A number in [0, 1) for `choice` at this slot: evenly spread over the seed's slots."""
        offset = int(hashlib.sha256(f"{self.salt}/{choice}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        return (offset + (self.slot + attempt * self.stride) * STEPS[choice]) % 1.0

    @property
    def stride(self) -> int:
        return max(self.trajectories, 1) * max(self.tasks, 1)


def plan_task(prepared: SeedToolset, db_schema: DatabaseSchema, rows: RowSource, rng: random.Random,
              edits: TrajectoryEdits, position: Position) -> PlannedTask:
    settings = prepared.seed.settings
    catalog = ToolCatalog(prepared.toolset)
    grounding = Grounding(db_schema, catalog, rows, rng, blocked=edits.blocked, updated=edits.updated,
                          edit=edits.apply)
    aim = golden.AIMS[pick_difficulty(position.draw("difficulty"), settings.difficulty_mix)]
    kind = golden.pick_kind(golden.action_mix(settings), position.draw("kind"), available_kinds(catalog))
    # Simulated tools answer with invented rows: keys cannot be looked up in them, the user gives them.
    chained = settings.tool_execution != ToolExecution.TOOL_EXECUTION_SIMULATED
    known = edits.known_values(db_schema)
    builds_on_earlier = chained and rng.random() < BUILD_ON_SHARE
    for attempt in range(ROOT_ATTEMPTS):
        continued = _continued(rows, db_schema, edits, rng) if builds_on_earlier and attempt < 3 else None
        if continued is not None:
            builds_on, tree = continued
            anchors = [Anchor(tree.root)]
        else:
            builds_on, anchors = -1, []
            tree = _fresh_tree(rows, db_schema, catalog, kind, rng, edits, position, attempt)
        if tree is None:
            continue
        # Past half the tries, a record no route reaches is named by its key (a database with nothing to search by).
        keys_given = attempt >= ROOT_ATTEMPTS // 2 and continued is None
        requests = golden.plan_requests(kind, tree, grounding, aim, known, anchors, chained, keys_given)
        if requests and not any(call_signature(a) in edits.calls for r in requests for a in r.actions):
            starts_known = requests[0].route is not None and requests[0].route.anchor.search is None
            return PlannedTask(tree, kind, requests, builds_on if starts_known else -1)
    raise PermanentError(f"could not ground a {kind} task in domain '{prepared.toolset.domain_database}' after "
                         f"{ROOT_ATTEMPTS} records")


def call_signature(action: PlannedAction) -> str:
    return json.dumps([action.tool.name, action.arguments], sort_keys=True, default=str)


def plan_signature(tasks: list[PlannedTask]) -> str:
    """A digest of a trajectory's golden calls and values, task by task."""
    return hashlib.sha256("\n".join(t.signature() for t in tasks).encode()).hexdigest()


def available_kinds(catalog: ToolCatalog) -> set[str]:
    return {name for name, kind in EFFECT_KIND_OF_NAME.items() if catalog.tables_with(kind)} | \
        ({"read"} if catalog.ranking_reads() else set())


def _continued(rows: RowSource, db_schema: DatabaseSchema, edits: TrajectoryEdits,
               rng: random.Random) -> tuple[int, EntityTree] | None:
    """A tree around a record an earlier task named, most often the latest one's, as the edits leave it."""
    nameable = edits.nameable(db_schema)
    if not nameable:
        return None
    latest = max(t for t, _, _ in nameable)
    task_index, table, row = rng.choice([n for n in nameable if n[0] == latest] if rng.random() < 0.7 else nameable)
    tree = build_tree(_Fixed(rows, table, row), db_schema, table, rng, edits.apply)
    return (task_index, tree) if tree is not None else None


def _fresh_tree(rows: RowSource, db_schema: DatabaseSchema, catalog: ToolCatalog, kind: str, rng: random.Random,
                edits: TrajectoryEdits, position: Position, attempt: int) -> EntityTree | None:
    """A tree around a record of a table this kind can act on: the table by the seed's sequence, its row the
    slot's own in the table's shuffle (without replacement across the seed's trajectories)."""
    tables = sorted(catalog.tables_with(EFFECT_KIND_OF_NAME[kind]) & set(db_schema.table_names)) or \
        db_schema.table_names
    if kind == "insert":  # the new row hangs under a record of the tree: root it in a table it references
        tables = sorted({fk.ref_table for t in tables for fk in db_schema.table(t).foreign_keys}) or tables
    table = tables[int(position.draw("table", attempt) * len(tables))]
    slot = position.slot + attempt * position.stride
    row = rows.row_at(table, slot, f"{position.salt}/{table}")
    if row is None:
        return None
    return build_tree(_Fixed(rows, table, row), db_schema, table, rng, edits.apply)


class _Fixed:
    """A row source whose random row of one table is a given record: the tree's root."""

    def __init__(self, rows: RowSource, table: str, row: dict):
        self._rows, self._table, self._row = rows, table, row

    def random_row(self, table: str, rng: random.Random) -> dict | None:
        return self._row if table == self._table else self._rows.random_row(table, rng)

    def __getattr__(self, name):
        return getattr(self._rows, name)


def pick_difficulty(u: float, mix) -> int:
    """The difficulty at quantile `u` of the mix."""
    weights = [max(mix.easy, 0), max(mix.medium, 0), max(mix.hard, 0)]
    if sum(weights) == 0:
        weights = [1, 1, 1]
    levels = [Difficulty.DIFFICULTY_EASY, Difficulty.DIFFICULTY_MEDIUM, Difficulty.DIFFICULTY_HARD]
    return golden.at_quantile(u, dict(zip(levels, weights)))


def plan_tool_spec_task(prepared: SeedToolset, rng: random.Random, position: Position,
                        invent_arguments: Callable[[Tool], dict]) -> PlannedTask:
    """Without a database: tools picked by difficulty, with concrete, schema-valid arguments someone invents; each
    call is its own request."""
    hops, count = golden.AIMS[pick_difficulty(position.draw("difficulty"), prepared.seed.settings.difficulty_mix)]
    tools = rng.sample(list(prepared.toolset.tools), min(hops + count, len(prepared.toolset.tools)))
    planned = [PlannedAction(tool, invent_arguments(tool)) for tool in tools]
    kind = next((name for name, k in EFFECT_KIND_OF_NAME.items() if any(a.tool.effect.kind == k for a in planned)
                 and name != "read"), "read")
    return PlannedTask(None, kind, [PlannedRequest([a]) for a in planned])
