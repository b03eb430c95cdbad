"""task-generator's planning: each task grounded in an entity tree of real records, or, without a database, in the
tool specs alone."""
from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Callable

from services.task_generator import actions as golden
from services.task_generator.actions import Grounding, PlannedAction
from services.task_generator.entity_tree import EntityTree, RowSource, build_tree, row_key
from services.task_generator.tool_catalog import ToolCatalog
from shared.contracts import EFFECT_KIND_OF_NAME, Difficulty, EffectKind, SeedToolset, TaskLength, Tool, ToolExecution
from shared.env.dbschema import DatabaseSchema, Table
from shared.env.tool_spec import mutates
from shared.runtime.errors import PermanentError

ROOT_ATTEMPTS = 8  # an empty table or a record nothing of the drawn kind can act on is skipped; this many tries
EXTEND_SHARE = 0.5  # later tasks start from a record the previous task acted on this often


@dataclass
class PlannedTask:
    tree: EntityTree | None  # all the task generator saw of the data (None without a database)
    kind: str  # read | insert | update | delete: its main action
    actions: list[PlannedAction]

    @property
    def hops(self) -> int:
        return max((a.hops for a in self.actions), default=0)

    @property
    def difficulty(self) -> int:
        return golden.difficulty_of(len(self.actions), self.hops)

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


@dataclass
class TrajectoryEdits:
    """What the trajectory's earlier tasks do to the rows, so a later task sees the data as they leave it."""

    deleted: set[tuple] = field(default_factory=set)
    changed: dict[tuple, dict] = field(default_factory=dict)

    def apply(self, table: Table, row: dict) -> dict | None:
        key = row_key(table, row)
        if key in self.deleted:
            return None
        return {**row, **self.changed.get(key, {})}

    def record(self, db_schema: DatabaseSchema, task: PlannedTask) -> None:
        for action in task.actions:
            node = action.node
            if node is None or action.tool.effect.table != node.table:
                continue
            key = row_key(db_schema.table(node.table), node.row)
            if action.tool.effect.kind == EffectKind.EFFECT_KIND_DELETE:
                self.deleted.add(key)
            elif action.tool.effect.kind == EffectKind.EFFECT_KIND_UPDATE:
                keys = db_schema.table(node.table).primary_key
                columns = {p: tc.split(".", 1)[-1] for p, tc in action.tool.sql.parameter_columns.items()}
                new = {columns[p]: v for p, v in action.arguments.items() if p in columns and columns[p] not in keys}
                self.changed.setdefault(key, {}).update(new)
                node.row.update(new)


def plan_task(prepared: SeedToolset, db_schema: DatabaseSchema, rows: RowSource, rng: random.Random,
              previous: PlannedTask | None, edits: TrajectoryEdits) -> PlannedTask:
    settings = prepared.seed.settings
    catalog = ToolCatalog(prepared.toolset)
    grounding = Grounding(db_schema, catalog, rows, rng)
    target = golden.TARGET_ACTIONS[pick_difficulty(rng, settings.difficulty_mix)]
    kind = golden.pick_kind(golden.action_mix(settings), rng, available_kinds(catalog))
    for attempt in range(ROOT_ATTEMPTS):
        tree = _tree(rows, db_schema, catalog, kind, rng, edits, previous if attempt == 0 else None)
        if tree is None:
            continue
        # Simulated tools answer with invented rows: keys cannot be looked up in them, the user gives them.
        chained = settings.tool_execution != ToolExecution.TOOL_EXECUTION_SIMULATED
        planned = golden.plan_actions(kind, tree, grounding, target, chained)
        if planned:
            return PlannedTask(tree, kind, planned)
    raise PermanentError(f"could not ground a {kind} task in domain '{prepared.toolset.domain_database}' after "
                         f"{ROOT_ATTEMPTS} records")


def available_kinds(catalog: ToolCatalog) -> set[str]:
    return {name for name, kind in EFFECT_KIND_OF_NAME.items() if catalog.tables_with(kind)} | \
        ({"read"} if catalog.ranking_reads() else set())


def _tree(rows: RowSource, db_schema: DatabaseSchema, catalog: ToolCatalog, kind: str, rng: random.Random,
          edits: TrajectoryEdits, previous: PlannedTask | None) -> EntityTree | None:
    """A tree around a record of a table this kind can act on; a later task half the time continues from a
    record the previous one acted on."""
    reached = [a.node for a in previous.actions if a.node is not None] if previous else []
    if reached and rng.random() < EXTEND_SHARE:
        node = rng.choice(reached)
        row = edits.apply(db_schema.table(node.table), node.row)
        if row is not None:
            return build_tree(_Fixed(rows, node.table, row), db_schema, node.table, rng, edits.apply)
    tables = sorted(catalog.tables_with(EFFECT_KIND_OF_NAME[kind]) & set(db_schema.table_names)) or \
        db_schema.table_names
    if kind == "insert":  # the new row hangs under a record of the tree: root it in a table it references
        tables = sorted({fk.ref_table for t in tables for fk in db_schema.table(t).foreign_keys}) or tables
    return build_tree(rows, db_schema, rng.choice(tables), rng, edits.apply)


class _Fixed:
    """A row source whose random row of one table is a given record: a tree rooted where the last task acted."""

    def __init__(self, rows: RowSource, table: str, row: dict):
        self._rows, self._table, self._row = rows, table, row

    def random_row(self, table: str, rng: random.Random) -> dict | None:
        return self._row if table == self._table else self._rows.random_row(table, rng)

    def __getattr__(self, name):
        return getattr(self._rows, name)


def pick_difficulty(rng: random.Random, mix) -> int:
    weights = [max(mix.easy, 0), max(mix.medium, 0), max(mix.hard, 0)]
    if sum(weights) == 0:
        weights = [1, 1, 1]
    return rng.choices([Difficulty.DIFFICULTY_EASY, Difficulty.DIFFICULTY_MEDIUM, Difficulty.DIFFICULTY_HARD],
                       weights=weights)[0]


def plan_tool_spec_task(prepared: SeedToolset, rng: random.Random,
                        invent_arguments: Callable[[Tool], dict]) -> PlannedTask:
    """Without a database: tools picked by difficulty, with concrete, schema-valid arguments someone invents."""
    target = golden.TARGET_ACTIONS[pick_difficulty(rng, prepared.seed.settings.difficulty_mix)]
    tools = rng.sample(list(prepared.toolset.tools), min(target, len(prepared.toolset.tools)))
    planned = [PlannedAction(tool, invent_arguments(tool)) for tool in tools]
    kind = next((name for name, k in EFFECT_KIND_OF_NAME.items() if any(a.tool.effect.kind == k for a in planned)
                 and name != "read"), "read")
    return PlannedTask(None, kind, planned)
