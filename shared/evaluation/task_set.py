"""Frozen task sets: one JSON record per line, written by `turnforge tasks import-dysql` or `turnforge tasks export`,
read by `turnforge eval`.

Both writers share import-dysql's record: task_id, benchmark, domain, instruction, golden_actions, golden_hash,
changes_data, action_count, difficulty. The golden actions differ by benchmark:

- "dysql": raw SQL, `{sql, source_sql, source_action, kind, expected_values?}`; the agent gets one tool,
  execute_sql(query).
- "turnforge" (one trajectory of a generation run, all its tasks, since its golden hash covers them all): tool
  calls, `{tool, arguments, result, kind, expected_values?}`, with the tools offered (`tools`: OpenAI specs,
  `tool_bindings`: their SQL and effects, as dataset records carry them) and the subtasks the user revealed.

A read's `expected_values` are the values it returned, which must reach the user.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from shared.env.outcomes import flat_values
from shared.evaluation.dysql import difficulty

DYSQL, TURNFORGE = "dysql", "turnforge"


@dataclass
class TaskSetExport:
    tasks: list[dict] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (record id, why it cannot be frozen)


def load_task_set(path: str | Path, limit: int | None = None) -> list[dict]:
    records = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    if not records:
        raise ValueError(f"no tasks in {path}")
    for record in records:
        missing = {"task_id", "benchmark", "domain", "instruction", "golden_actions", "golden_hash"} - set(record)
        if missing:
            raise ValueError(f"{path}: task {record.get('task_id', '?')} lacks {', '.join(sorted(missing))}")
    return records[:limit] if limit else records


def _subtasks(tasks: list[dict]) -> list[dict]:
    """Every task's subtasks, each pointing into the golden actions of all tasks together (-1: none)."""
    out, offset = [], 0
    for task in tasks:
        for sub in task["subtasks"]:
            out.append({"description": sub["description"], "expected_values": sub["expected_values"],
                        "golden_action": offset + sub["golden_action"] if sub["golden_action"] >= 0 else -1})
        offset += len(task["golden_actions"])
    return out


def _golden_actions(meta: dict) -> list[dict]:
    """The golden actions of all tasks, each with its kind and, for a read a subtask asked values of, those
    values."""
    subtasks = _subtasks(meta["tasks"])
    out = []
    for index, action in enumerate(a for t in meta["tasks"] for a in t["golden_actions"]):
        entry = {"tool": action["tool"], "arguments": action["arguments"], "result": action["result"],
                 "kind": meta["tool_bindings"][action["tool"]]["effect"]["kind"]}
        asked = [v for s in subtasks if s["golden_action"] == index and s["expected_values"]
                 for v in flat_values(s["expected_values"])]
        if asked:
            entry["expected_values"] = asked
        out.append(entry)
    return out


def _instruction(tasks: list[dict]) -> str:
    """What the user is told: each task's goal and the steps the generation run's user revealed."""
    parts = []
    for task in tasks:
        steps = "\n".join(f"- {s['description']}" for s in task["subtasks"])
        parts.append(f"{task['description']}\n{steps}" if steps else task["description"])
    return "\n\n".join(parts)


def why_not_frozen(record: dict, accepted_only: bool) -> str:
    """Why a dataset record cannot become a frozen task ("" when it can)."""
    meta = record.get("metadata") or {}
    if "tasks" not in meta or "tool_bindings" not in meta:
        return "no tasks or tool bindings in its metadata (written by an older run)"
    if accepted_only and not (meta.get("verdict") or {}).get("accepted", False):
        return "not accepted"
    if meta.get("tool_execution") != "sql":
        return "its tools were simulated: there is no database state to hold a trial to"
    if not meta.get("golden_state_hash"):
        return "no golden state hash"
    if meta.get("prefix_messages") or meta["start_state"]["setup_actions"]:
        return "it continued a start state; a frozen task starts from the domain's own state"
    return ""


def export_task_set(records: list[dict], accepted_only: bool = False) -> TaskSetExport:
    """A generation run's dataset records as frozen tasks, one per trajectory."""
    result = TaskSetExport()
    for record in records:
        reason = why_not_frozen(record, accepted_only)
        if reason:
            result.skipped.append((record.get("id", "?"), reason))
            continue
        meta = record["metadata"]
        golden = _golden_actions(meta)
        offered = {t["function"]["name"] for t in record["tools"]}
        result.tasks.append({
            "task_id": f"tf-{record['id']}", "benchmark": TURNFORGE, "source_trajectory": record["id"],
            "domain": meta["domain_database"] or meta["domain"], "instruction": _instruction(meta["tasks"]),
            "golden_actions": golden, "golden_hash": meta["golden_state_hash"],
            "changes_data": any(t["changes_data"] for t in meta["tasks"]), "action_count": len(golden),
            "difficulty": difficulty(len(golden)),
            "subtasks": [{"description": s["description"], "golden_action": s["golden_action"]}
                         for s in _subtasks(meta["tasks"])],
            "tools": record["tools"],
            "tool_bindings": {name: b for name, b in meta["tool_bindings"].items() if name in offered},
        })
    return result
