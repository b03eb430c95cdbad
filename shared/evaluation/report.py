"""An evaluation's figures (from shared.evaluation.measures), its report.md and its plots.

A measure that has nothing to measure (TCA with no tool call, STC with no acting turn) is None, not 0: the noop
agent made no call, which is not the same as making wrong ones.
"""
from __future__ import annotations

import json
from pathlib import Path
from statistics import mean
from typing import Any, Callable, Sequence

from shared.evaluation import measures
from shared.evaluation.measures import TrialOutcome


def _or_none(measure: Callable[[Sequence[TrialOutcome]], float], trials: Sequence[TrialOutcome]) -> float | None:
    try:
        return round(float(measure(trials)), 4)  # a mean of booleans comes back as an int
    except ValueError:
        return None


def success_rate(trials: Sequence[TrialOutcome]) -> float:
    if not trials:
        raise ValueError("no trials")
    return mean(t.success for t in trials)


def agent_figures(trials: list[TrialOutcome], tasks: int) -> dict[str, Any]:
    """The measures of one agent's trials over a task set of `tasks` tasks."""
    executable = len({t.task_id for t in trials})
    figures: dict[str, Any] = {"tasks": tasks, "executable": executable, "trials": len(trials)}
    if not trials:
        return figures | {"pass_hat_k": {}, "dsr": None, "tca": None, "stc": None}
    domains = sorted({t.domain for t in trials})
    return figures | {
        "pass_hat_k": {str(k): round(v, 4) for k, v in measures.pass_hat_k(trials).items()},
        "dsr": _or_none(measures.dialogue_success_rate, trials),
        "tca": _or_none(measures.tool_call_accuracy, trials),
        "stc": _or_none(measures.state_tracking_consistency, trials),
        "accuracy_by_turn": {str(i): round(float(v), 4) for i, v in measures.accuracy_by_turn(trials).items()},
        "hallucination_rate": _or_none(measures.hallucination_rate, trials),
        "failed_sql_calls": sum(measures.failed_sql_calls(t) for t in trials),
        "failed_sql_histogram": {str(n): c for n, c in measures.failed_sql_histogram(trials).items()},
        "success_by_domain": {d: round(float(success_rate([t for t in trials if t.domain == d])), 4) for d in domains},
    }


def transfer(trials: list[TrialOutcome]) -> dict[str, Any]:
    """Success rate per (agent, domain); with in- and cross-domain cells (an agent named as a domain), the gap."""
    matrix = measures.transfer_matrix(measures.scores_by_pair(trials, success_rate))
    out: dict[str, Any] = {"sources": list(matrix.sources), "targets": list(matrix.targets),
                           "rows": [[None if v is None else round(float(v), 4) for v in row] for row in matrix.rows()]}
    try:
        gap = matrix.gap()
    except ValueError:
        return out
    return out | {"in_domain": round(gap.in_domain, 4), "cross_domain": round(gap.cross_domain, 4),
                  "absolute_gap": round(gap.absolute_gap, 4), "relative_gap": round(gap.relative_gap, 4)}


def figures(trials_by_agent: dict[str, list[TrialOutcome]], tasks: int) -> dict[str, Any]:
    """The first agent's figures at the top level; with several agents each under "agents", and the transfer table
    over all of them."""
    per_agent = {name: agent_figures(trials, tasks) for name, trials in trials_by_agent.items()}
    first = next(iter(per_agent))
    out: dict[str, Any] = {"agent": first, **per_agent[first]}
    all_trials = [t for trials in trials_by_agent.values() for t in trials]
    if len(per_agent) > 1:
        out["agents"] = per_agent
    if all_trials:
        out["transfer"] = transfer(all_trials)
    return out


def _cell(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def render_markdown(result: dict[str, Any], run_id: str, notes: list[str]) -> str:
    per_agent = result.get("agents") or {result["agent"]: result}
    ks = sorted({int(k) for f in per_agent.values() for k in f["pass_hat_k"]})
    lines = [f"# TurnForge evaluation {run_id}", "", *[f"- {n}" for n in notes], "", "## Agents", "",
             "| agent | tasks | executable | trials | " + " | ".join(f"Pass^{k}" for k in ks)
             + " | DSR | TCA | STC | hallucination | failed SQL |",
             "|---|---:|---:|---:|" + "---:|" * (len(ks) + 5)]
    for name, f in per_agent.items():
        passes = " | ".join(_cell(f["pass_hat_k"].get(str(k))) for k in ks)
        lines.append(f"| {name} | {f['tasks']} | {f['executable']} | {f['trials']} | {passes} | {_cell(f['dsr'])} | "
                     f"{_cell(f['tca'])} | {_cell(f['stc'])} | {_cell(f.get('hallucination_rate'))} | "
                     f"{_cell(f.get('failed_sql_calls'))} |")
    for name, f in per_agent.items():
        if f.get("accuracy_by_turn"):
            lines += ["", f"### {name}: accuracy by turn", "", "| turn | accuracy |", "|---:|---:|"]
            lines += [f"| {i} | {_cell(v)} |" for i, v in f["accuracy_by_turn"].items()]
        if f.get("failed_sql_histogram"):
            lines += ["", f"### {name}: dialogues by failed SQL calls", "", "| failed calls | dialogues |",
                      "|---:|---:|"]
            lines += [f"| {n} | {c} |" for n, c in f["failed_sql_histogram"].items()]
    table = result.get("transfer")
    if table:
        lines += ["", "## Success by agent and domain", "",
                  "| agent \\ domain | " + " | ".join(table["targets"]) + " |",
                  "|---|" + "---:|" * len(table["targets"])]
        lines += [f"| {s} | " + " | ".join(_cell(v) for v in row) + " |"
                  for s, row in zip(table["sources"], table["rows"])]
        if "absolute_gap" in table:
            lines += ["", f"In-domain {_cell(table['in_domain'])}, cross-domain {_cell(table['cross_domain'])}: "
                          f"absolute gap {_cell(table['absolute_gap'])}, relative gap {_cell(table['relative_gap'])}."]
    return "\n".join(lines) + "\n"


def write_plots(result: dict[str, Any], out: Path) -> list[Path]:
    """Pass^k curve, accuracy by turn and success per domain, one line or bar group per agent."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    per_agent = result.get("agents") or {result["agent"]: result}
    paths = []

    def save(fig, name: str) -> None:
        fig.tight_layout()
        fig.savefig(out / name, dpi=120)
        plt.close(fig)
        paths.append(out / name)

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, f in per_agent.items():
        ks = sorted(int(k) for k in f["pass_hat_k"])
        ax.plot(ks, [f["pass_hat_k"][str(k)] for k in ks], marker="o", label=name)
    ax.set_xticks(sorted({int(k) for f in per_agent.values() for k in f["pass_hat_k"]}))
    ax.set(xlabel="k", ylabel="Pass^k", ylim=(-0.02, 1.02), title="Pass^k")
    ax.legend()
    save(fig, "pass_hat_k.png")

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, f in per_agent.items():
        turns = f.get("accuracy_by_turn") or {}
        ax.plot([int(i) for i in turns], list(turns.values()), marker="o", label=name)
    ax.set(xlabel="turn", ylabel="tool-call accuracy", ylim=(-0.02, 1.02), title="Accuracy by turn")
    ax.legend()
    save(fig, "accuracy_by_turn.png")

    fig, ax = plt.subplots(figsize=(5, 3.5))
    domains = sorted({d for f in per_agent.values() for d in f.get("success_by_domain", {})})
    width = 0.8 / max(len(per_agent), 1)
    for i, (name, f) in enumerate(per_agent.items()):
        ax.bar([j + i * width for j in range(len(domains))],
               [f.get("success_by_domain", {}).get(d, 0) for d in domains], width, label=name)
    ax.set_xticks([j + width * (len(per_agent) - 1) / 2 for j in range(len(domains))], domains)
    ax.set(ylabel="success rate (Pass^1)", ylim=(0, 1.05), title="Success by domain")
    ax.legend()
    save(fig, "success_by_domain.png")
    return paths


FIGURES_FILE = "figures.json"  # every figure of the report, for scripts and the review page


def write_report(result: dict[str, Any], out: Path, run_id: str, notes: list[str]) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(render_markdown(result, run_id, notes))
    (out / FIGURES_FILE).write_text(json.dumps({"run_id": run_id, "notes": notes, **result}, indent=2))
    return [out / "report.md", out / FIGURES_FILE, *write_plots(result, out)]
