"""Dataset statistics, as the paper reports them (Table 1: density; Table 4: generation efficiency).

Definitions (the paper's Appendix B): a turn is any message of the dialogue (user, assistant, tool; not the
system prompt); a step is one tool-use iteration the agent needs to satisfy one user request; a task is one
high-level goal of the session.
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from statistics import mean


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
