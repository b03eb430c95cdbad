"""Dataset statistics, as the paper reports them (Table 1: density; Table 4: generation efficiency).

Definitions (the paper's Appendix B): a turn is any message of the dialogue (user, assistant, tool; not the
system prompt); a step is one tool-use iteration the agent needs to satisfy one user request; a task is one
high-level goal of the session.
"""
from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from pathlib import Path
from statistics import mean
from typing import Any


def sample_measures(record: dict) -> dict:
    messages = [m for m in record["messages"] if m["role"] != "system"]
    steps_per_request, current = [], None
    for m in messages:
        if m["role"] == "user":
            if current is not None:
                steps_per_request.append(current)
            current = 0
        elif m["role"] == "assistant" and m.get("tool_calls") and current is not None:
            current += 1
    if current is not None:
        steps_per_request.append(current)
    meta = record.get("metadata", {})
    counters = meta.get("counters", {})
    return {
        "mode": meta.get("pipeline_mode", "unknown"),
        "turns": len(messages),
        "steps": mean(steps_per_request) if steps_per_request else 0.0,
        "max_steps": max(steps_per_request, default=0),
        "tasks": len(meta.get("tasks", [])),
        "latency_s": meta.get("latency_s"),
        "generated_tokens": int(counters.get("completion_tokens", 0) or 0),
    }


def dataset_stats(records: list[dict]) -> dict[str, dict]:
    """Per pipeline mode: Table 1's columns (mean and max) and Table 4's (latency, generated tokens/s)."""
    by_mode: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        m = sample_measures(r)
        by_mode[m["mode"]].append(m)
    out = {}
    for mode, ms in sorted(by_mode.items()):
        timed = [m for m in ms if m["latency_s"]]
        out[mode] = {
            "samples": len(ms),
            "steps_mean": mean(m["steps"] for m in ms), "steps_max": max(m["max_steps"] for m in ms),
            "turns_mean": mean(m["turns"] for m in ms), "turns_max": max(m["turns"] for m in ms),
            "tasks_mean": mean(m["tasks"] for m in ms), "tasks_max": max(m["tasks"] for m in ms),
            "latency_s_per_sample": mean(m["latency_s"] for m in timed) if timed else None,
            "generated_tokens_per_s": (sum(m["generated_tokens"] for m in timed) / sum(m["latency_s"] for m in timed)
                                       if timed else None),
        }
    return out


# --- diversity ---------------------------------------------------------------------------------------------------

WORD = re.compile(r"[a-z0-9']+")


def _calls(task: dict) -> list[tuple[str, str]]:
    return [(a["tool"], json.dumps(a["arguments"], sort_keys=True)) for a in task["golden_actions"]]


def _effect(record: dict, tool: str) -> tuple[str, str]:
    """(kind, table) of a tool, from the record's own bindings."""
    binding = record["metadata"].get("tool_bindings", {}).get(tool) or {}
    effect = binding.get("effect") or {}
    return effect.get("kind", "unknown"), effect.get("table", "")


def golden_shape(record: dict) -> tuple:
    """A trajectory's golden actions as a shape: the sequence of tools and their effects, task by task, without
    the values (two dialogues of one shape differ only in the records they touch)."""
    return tuple(tuple((a["tool"], _effect(record, a["tool"])[0]) for a in t["golden_actions"])
                 for t in record["metadata"].get("tasks", []))


def distinct_n(texts: list[str], n: int) -> float | None:
    """Distinct n-grams over all n-grams of the texts (Li et al.'s distinct-n): 1.0 when nothing repeats."""
    grams = Counter()
    for text in texts:
        tokens = WORD.findall(text.lower())
        grams.update(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))
    total = sum(grams.values())
    return round(len(grams) / total, 4) if total else None


def _spread(counts: Counter) -> dict:
    """The counts and their evenness: Shannon entropy over its maximum (1.0: spread evenly, 0: all one kind)."""
    total = sum(counts.values())
    entropy = -sum(c / total * math.log(c / total) for c in counts.values()) if total else 0.0
    evenness = entropy / math.log(len(counts)) if len(counts) > 1 else (1.0 if counts else None)
    return {"counts": dict(counts.most_common()), "evenness": round(evenness, 3) if evenness is not None else None}


def diversity(records: list[dict]) -> dict:
    """How much a dataset repeats itself: distinct golden-action shapes and root entities, tasks and trajectories
    repeated with the same values, distinct-1/2 of user and agent turns, and the spread over the tables acted on,
    the effects and the difficulties."""
    tasks = [(r, t) for r in records for t in r["metadata"].get("tasks", [])]
    task_calls = Counter(tuple(_calls(t)) for _, t in tasks)
    trajectory_calls = Counter(tuple(tuple(_calls(t)) for t in r["metadata"].get("tasks", [])) for r in records)
    shapes = Counter(golden_shape(r) for r in records)
    roots = Counter(json.dumps(t.get("root"), sort_keys=True) for _, t in tasks if t.get("root"))
    user = [m["content"] for r in records for m in r["messages"] if m["role"] == "user" and m.get("content")]
    agent = [m["content"] for r in records for m in r["messages"] if m["role"] == "assistant" and m.get("content")]
    mains = [t["golden_actions"][s["golden_action"]]["tool"] for r, t in tasks for s in t["subtasks"][-1:]
             if s["golden_action"] >= 0]
    tables = Counter(_effect(r, t["golden_actions"][t["subtasks"][-1]["golden_action"]]["tool"])[1] or "(none)"
                     for r, t in tasks if t["subtasks"] and t["subtasks"][-1]["golden_action"] >= 0)
    effects = Counter(_effect(r, a["tool"])[0] for r, t in tasks for a in t["golden_actions"])
    return {
        "trajectories": len(records),
        "tasks": len(tasks),
        "golden_shapes": len(shapes),
        "golden_shapes_share": round(len(shapes) / len(records), 3) if records else None,
        "root_entities": len(roots),
        "repeated_tasks": sum(c - 1 for c in task_calls.values()),
        "repeated_trajectories": sum(c - 1 for c in trajectory_calls.values()),
        "builds_on_earlier_task": sum(bool(t.get("builds_on")) for _, t in tasks),
        "distinct_1_user": distinct_n(user, 1), "distinct_2_user": distinct_n(user, 2),
        "distinct_1_agent": distinct_n(agent, 1), "distinct_2_agent": distinct_n(agent, 2),
        "main_tools": len(set(mains)),
        "tables": _spread(tables),
        "effects": _spread(effects),
        "difficulties": _spread(Counter(t.get("difficulty", "unknown") for _, t in tasks)),
        "hops": _spread(Counter(t.get("hops", 0) for _, t in tasks)),
    }


def render_diversity(d: dict) -> str:
    def share(x):
        return "-" if x is None else f"{x:.3f}"

    def spread(name):
        counts = ", ".join(f"{k} {v}" for k, v in d[name]["counts"].items())
        return f"  {name:<13}evenness {share(d[name]['evenness'])}: {counts}"

    return "\n".join([
        "Diversity",
        f"  trajectories {d['trajectories']}, tasks {d['tasks']} ({d['builds_on_earlier_task']} build on an earlier "
        f"task)",
        f"  golden-action shapes {d['golden_shapes']} (share {share(d['golden_shapes_share'])}), root entities "
        f"{d['root_entities']}, main tools {d['main_tools']}",
        f"  repeated tasks {d['repeated_tasks']}, repeated trajectories {d['repeated_trajectories']}",
        f"  distinct-1/2: user {share(d['distinct_1_user'])}/{share(d['distinct_2_user'])}, "
        f"agent {share(d['distinct_1_agent'])}/{share(d['distinct_2_agent'])}",
        spread("tables"), spread("effects"), spread("difficulties"), spread("hops"),
    ])

def dataset_figures(records: list[dict]) -> dict[str, Any]:
    """Every figure of a dataset, one section each: `by_mode` (Tables 1 and 4, per pipeline mode) and any section
    added beside it. The review page (`turnforge view`) shows each section, a new one as a table of its values, so
    a figure added here is on the page without touching the page."""
    return {"by_mode": dataset_stats(records), "diversity": diversity(records)}


def load_records(paths: list[str | Path]) -> list[dict]:
    records = []
    for path in paths:
        with open(path) as f:
            records += [json.loads(line) for line in f if line.strip()]
    return records


def render(stats: dict[str, dict]) -> str:
    def fmt(v, digits=2):
        return "-" if v is None else (f"{v:.{digits}f}" if isinstance(v, float) else str(v))

    lines = ["Table 1: density (mean, max in parentheses)",
             f"{'mode':<16}{'steps':>14}{'turns':>16}{'tasks':>14}{'samples':>10}"]
    for mode, s in stats.items():
        lines.append(f"{mode:<16}{fmt(s['steps_mean']) + ' (' + str(s['steps_max']) + ')':>14}"
                     f"{fmt(s['turns_mean']) + ' (' + str(s['turns_max']) + ')':>16}"
                     f"{fmt(s['tasks_mean']) + ' (' + str(s['tasks_max']) + ')':>14}{s['samples']:>10}")
    lines += ["", "Table 4: efficiency",
              f"{'mode':<16}{'latency per sample (s)':>24}{'generated tokens/s':>20}"]
    for mode, s in stats.items():
        lines.append(f"{mode:<16}{fmt(s['latency_s_per_sample']):>24}{fmt(s['generated_tokens_per_s']):>20}")
    return "\n".join(lines)
