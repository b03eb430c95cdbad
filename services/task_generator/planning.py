"""task-generator's planning: each task grounded in a real record and the records its foreign keys reach, or,
without a database, in the tool specs alone."""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Callable

from services.task_generator import logic
from shared.contracts import GoldenAction, SeedToolset, Tool
from shared.env.tool_spec import mutates
from shared.env.dbschema import DatabaseSchema
from shared.env.domain_rows import DomainRows
from shared.env.trajectory import tool_by_name
from shared.runtime.errors import PermanentError

ROOT_ATTEMPTS = 6  # an empty table or a record no tool can act on is skipped; this many tries, then give up


@dataclass
class PlannedTask:
    view: logic.DataView  # all the task generator saw of the data (empty without a database)
    difficulty: int
    actions: list[GoldenAction]
    changes_data: bool


def data_view(rows: DomainRows, db_schema: DatabaseSchema, table: str, rng: random.Random) -> logic.DataView | None:
    row = rows.random_row(table, rng)
    if row is None:
        return None
    view = logic.DataView(table=table, row=row)
    for fk in db_schema.table(table).foreign_keys:
        value = row.get(fk.columns[0])
        if value is not None and len(fk.columns) == 1:
            parent = rows.row_by_key(fk.ref_table, fk.ref_columns[0], value)
            if parent:
                view.related[fk.ref_table] = parent
    return view


def plan_task(prepared: SeedToolset, db_schema: DatabaseSchema, rows: DomainRows, rng: random.Random,
              previous: logic.DataView | None) -> PlannedTask:
    settings = prepared.seed.settings
    difficulty = logic.pick_difficulty(rng, settings.difficulty_mix)
    changes_data = rng.random() < settings.write_task_share
    tables = db_schema.table_names
    if changes_data:
        # A write task needs a root record whose table has an update tool.
        writable = [t for t in tables if any(logic.updates_table(tool, t) for tool in prepared.toolset.tools)]
        tables, changes_data = (writable, True) if writable else (tables, False)
    for attempt in range(ROOT_ATTEMPTS):
        # Later tasks extend an earlier one half the time: start from a record the last task reached.
        extendable = sorted(t for t in (previous.related if previous else {}) if t in tables)
        if extendable and attempt == 0 and rng.random() < 0.5:
            table = rng.choice(extendable)
        else:
            table = rng.choice(tables)
        view = data_view(rows, db_schema, table, rng)
        if view is None:
            continue
        actions = logic.plan_golden_actions(prepared.toolset, db_schema, view, difficulty, changes_data,
                                            rows.column_values(table) if changes_data else {}, rng)
        if actions:
            writes = any(mutates(tool_by_name(prepared.toolset, a.tool_name)) for a in actions)
            return PlannedTask(view, difficulty, actions, writes)
    raise PermanentError(f"could not ground a task in domain '{prepared.toolset.domain_database}' after "
                         f"{ROOT_ATTEMPTS} records")


def plan_tool_spec_task(prepared: SeedToolset, rng: random.Random,
                        invent_arguments: Callable[[Tool], dict]) -> PlannedTask:
    """Without a database: tools picked by difficulty, with concrete, schema-valid arguments someone invents."""
    difficulty = logic.pick_difficulty(rng, prepared.seed.settings.difficulty_mix)
    tools = rng.sample(list(prepared.toolset.tools),
                       min(logic.ACTIONS_PER_DIFFICULTY[difficulty], len(prepared.toolset.tools)))
    actions = [GoldenAction(tool_name=tool.name, arguments_json=json.dumps(invent_arguments(tool))) for tool in tools]
    return PlannedTask(logic.DataView(table="", row={}), difficulty, actions, False)
