"""task-generator's pure logic: an entity-tree data view, golden actions grounded in it, and the task around them.

Golden actions are chosen from real rows first and the model only phrases the goal around them (DySQL-style
entity trees). That keeps every task feasible and checkable even when the model is weak: the database settles what
the right calls are, the model settles how a person would put it.
"""
from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import dataclass, field
from typing import Any

from shared.contracts import Difficulty, EffectKind, GoldenAction, Rubric, Subtask, Task, Tool, Toolset
from shared.env.dbschema import DatabaseSchema, Table
from shared.env.json_values import json_value
from shared.env.tool_spec import tool_parameters
from shared.runtime.errors import PermanentError

ACTIONS_PER_DIFFICULTY = {Difficulty.DIFFICULTY_EASY: 1, Difficulty.DIFFICULTY_MEDIUM: 2, Difficulty.DIFFICULTY_HARD: 3}


@dataclass
class DataView:
    """A root record and the records its foreign keys reach: all the task generator may see of the data."""

    table: str
    row: dict[str, Any]
    related: dict[str, dict[str, Any]] = field(default_factory=dict)  # "table" -> row reached by a foreign key

    def as_json(self) -> str:
        return json.dumps(json_value({"record": {self.table: self.row}, "related": self.related}), indent=1)


def pick_difficulty(rng: random.Random, mix) -> int:
    weights = [max(mix.easy, 0), max(mix.medium, 0), max(mix.hard, 0)]
    if sum(weights) == 0:
        weights = [1, 1, 1]
    return rng.choices([Difficulty.DIFFICULTY_EASY, Difficulty.DIFFICULTY_MEDIUM, Difficulty.DIFFICULTY_HARD],
                       weights=weights)[0]


def _fillable(tool: Tool, row: dict) -> bool:
    schema = tool_parameters(tool)
    required = schema.get("required", list(schema.get("properties", {})))
    return bool(required) and all(p in row and row[p] is not None for p in required)


def lookup_tools(toolset: Toolset, row: dict) -> list[Tool]:
    return [t for t in toolset.tools if t.effect.kind == EffectKind.EFFECT_KIND_READ and _fillable(t, row)]


def updates_table(tool: Tool, table: str) -> bool:
    return tool.effect.kind == EffectKind.EFFECT_KIND_UPDATE and tool.effect.table == table


def update_tools(toolset: Toolset, table: Table, row: dict) -> list[Tool]:
    """Updates of the root table's own columns: the key plus one new value, all fillable from the row."""
    out = []
    for t in toolset.tools:
        if not updates_table(t, table.name):
            continue
        props = tool_parameters(t).get("properties", {})
        changed = [p for p in props if p not in table.primary_key]
        if all(p in row for p in props) and len(changed) == 1 and all(k in props for k in table.primary_key):
            out.append(t)
    return out


def new_value(old: Any, column_values: list[Any], rng: random.Random) -> Any:
    """A different, plausible value for an update: another value the column holds, or a nudge of the old one."""
    others = [v for v in column_values if v is not None and v != old]
    if isinstance(old, bool):
        return not old
    if isinstance(old, (int, float)) and not isinstance(old, bool):
        return type(old)(round(old * 1.1 + 1, 2)) if isinstance(old, float) else old + 1
    if isinstance(old, str) and _looks_like_date(old):
        return (dt.date.fromisoformat(old[:10]) + dt.timedelta(days=7)).isoformat()
    if others:
        return rng.choice(others)
    return f"{old} (updated)"


def _looks_like_date(s: str) -> bool:
    try:
        dt.date.fromisoformat(s[:10])
        return len(s) == 10
    except ValueError:
        return False


def plan_golden_actions(toolset: Toolset, db_schema: DatabaseSchema, view: DataView, difficulty: int,
                        changes_data: bool, column_values: dict[str, list[Any]], rng: random.Random) -> list[GoldenAction]:
    """Concrete calls that accomplish a task about the view's record: lookups, then (maybe) one update."""
    row = json_value(view.row)
    want = ACTIONS_PER_DIFFICULTY[difficulty]
    actions: list[GoldenAction] = []
    reads = lookup_tools(toolset, row)
    rng.shuffle(reads)
    # Prefer the record's own lookup first, then lookups of related records (a chain through foreign keys).
    reads.sort(key=lambda t: t.effect.table != view.table)
    related_rows = [json_value(r) for r in view.related.values()]
    for related_row in related_rows:
        reads += [t for t in lookup_tools(toolset, related_row) if t not in reads]
    writes = update_tools(toolset, db_schema.table(view.table), row) if changes_data else []
    n_reads = want - (1 if writes else 0)
    for tool in reads[:max(n_reads, 1)]:
        source = row if _fillable(tool, row) else next(r for r in related_rows if _fillable(tool, r))
        props = tool_parameters(tool).get("properties", {})
        args = {p: source[p] for p in props if p in source}
        actions.append(GoldenAction(tool_name=tool.name, arguments_json=json.dumps(args)))
    if writes:
        tool = rng.choice(writes)
        props = tool_parameters(tool).get("properties", {})
        table = db_schema.table(view.table)
        args = {}
        for p in props:
            if p in table.primary_key:
                args[p] = row[p]
            else:
                args[p] = new_value(row[p], column_values.get(p, []), rng)
        actions.append(GoldenAction(tool_name=tool.name, arguments_json=json.dumps(args)))
    return actions


def describe_action(action: GoldenAction, toolset: Toolset) -> str:
    """A plain statement of what one golden action achieves, with its concrete values (the user may reveal them)."""
    args = json.loads(action.arguments_json)
    tool = next(t for t in toolset.tools if t.name == action.tool_name)
    what = tool.description.rstrip(".")
    values = ", ".join(f"{k} = {v}" for k, v in args.items())
    return f"{what} ({values})"


def expected_tool_use(action: GoldenAction) -> str:
    args = json.loads(action.arguments_json)
    return f"{action.tool_name}(" + ", ".join(f"{k}=<{k}>" for k in args) + ")"


def build_task(task_id: str, difficulty: int, actions: list[GoldenAction], toolset: Toolset, phrasing: dict,
               changes_data: bool) -> Task:
    task = Task(task_id=task_id, description=phrasing["description"], difficulty=difficulty,
                changes_data=changes_data,
                rubric=Rubric(success_criteria=phrasing["success_criteria"],
                              expected_tool_use=[expected_tool_use(a) for a in actions],
                              checkpoints=phrasing["checkpoints"]))
    task.golden_actions.extend(actions)
    for i, action in enumerate(actions):
        task.subtasks.append(Subtask(description=describe_action(action, toolset), golden_action=i))
    return task


def agent_system_prompt(domain: str, db_description: str) -> str:
    return (f"You are a helpful assistant for a {domain} business. {db_description} "
            "Use the tools to look things up and to make changes; never invent data a tool did not return. "
            "Call a tool when you need data, and answer the user briefly once you have it. "
            "If a tool returns an error, say so plainly and suggest what to do next.")


def offered_tools(toolset: Toolset, tasks: list[Task], limit: int, rng: random.Random) -> Toolset:
    """The tasks' own tools plus randomly drawn distractors, up to `limit` (0: all), in toolset order.

    A trajectory then has to choose among a realistic handful of tools, and a small model is not swamped."""
    if limit <= 0 or limit >= len(toolset.tools):
        return toolset
    needed = {a.tool_name for t in tasks for a in t.golden_actions}
    others = [t.name for t in toolset.tools if t.name not in needed]
    chosen = needed | set(rng.sample(others, max(0, min(len(others), limit - len(needed)))))
    subset = Toolset()
    subset.CopyFrom(toolset)
    del subset.tools[:]
    subset.tools.extend(t for t in toolset.tools if t.name in chosen)
    return subset


PREFIX_ROLES = {"user", "assistant", "tool"}


def check_start_state(start, toolset: Toolset) -> None:
    """A start state must be a well-formed conversation and set up the database only through known SQL tools."""
    open_calls: set[str] = set()
    for i, m in enumerate(start.prefix):
        if m.role not in PREFIX_ROLES:
            raise PermanentError(f"start state message {i}: role must be user, assistant or tool, not {m.role!r}")
        open_calls |= {c.id for c in m.tool_calls}
        if m.role == "tool" and m.tool_call_id not in open_calls:
            raise PermanentError(f"start state message {i}: tool result for unknown call {m.tool_call_id!r}")
    for a in start.setup_actions:
        tool = next((t for t in toolset.tools if t.name == a.tool_name), None)
        if tool is None or not tool.HasField("sql"):
            raise PermanentError(f"start state setup action {a.tool_name!r} is not a SQL tool of this domain")
