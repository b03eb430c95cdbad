"""The review page: every trajectory of a run (accepted, rejected, dead-lettered) with its dialogue, tool calls,
tasks and checks, and the figures of the whole set, in one HTML file that opens from disk with no network.

The page is a Jinja template with its script, its styles and the vendored Grid.js (the paginated, sortable list)
inlined. The data is embedded as JSON: one small summary per trajectory, which the list filters, and each
trajectory's full view in a script block of its own, parsed only when it is opened, so a set of 10,000 opens at
once. Everything a trajectory says is put on the page as text, never as markup.
"""
from __future__ import annotations

import base64
import functools
import http.server
import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from shared.evaluation.report import FIGURES_FILE
from shared.run import stats
from shared.run.dataset import DATASET_FILE, DEAD_LETTERS_FILE, REJECTED_FILE, TRIALS_FILE, reason_kinds

PAGE_NAME = "review.html"
ASSETS = Path(__file__).parent / "assets"
ACCEPTED, REJECTED, DEAD_LETTERED = "accepted", "rejected", "dead-lettered"  # a run's outcomes
PASSED, FAILED = "passed", "failed"  # an evaluation trial's
RECORD_FILES = (DATASET_FILE, REJECTED_FILE, DEAD_LETTERS_FILE, TRIALS_FILE)


@dataclass
class Inputs:
    """What a page is made of: the records of one folder or file, and an evaluation's figures and plots."""

    source: Path
    accepted: list[dict] = field(default_factory=list)  # dataset.jsonl records
    rejected: list[dict] = field(default_factory=list)  # rejected.jsonl records
    dead_letters: list[dict] = field(default_factory=list)  # dead_letters.jsonl records
    trials: list[dict] = field(default_factory=list)  # an evaluation's trials.jsonl records
    evaluation: dict | None = None  # an evaluation's figures.json
    plots: list[Path] = field(default_factory=list)


def record_kind(record: dict) -> str:
    """Which file a line comes from, by its shape: a rejection names its trajectory, a dead letter its service, a
    trial its agent."""
    if "service" in record and "reason" in record:
        return DEAD_LETTERED
    if "trajectory_id" in record and "reasons" in record:
        return REJECTED
    if "messages" in record and "id" in record:
        return "trial" if "evaluation" in record.get("metadata", {}) else ACCEPTED
    raise ValueError(f"not a dataset, rejection or dead-letter record (keys: {', '.join(sorted(record)[:8])})")


def read_inputs(path: str | Path) -> Inputs:
    """A run's (or `cluster collect`'s) output folder, an evaluation's output folder, or one .jsonl file of them."""
    path = Path(path)
    inputs = Inputs(source=path)
    if path.is_dir():
        files = [path / name for name in RECORD_FILES if (path / name).is_file()]
        if (path / FIGURES_FILE).is_file():
            inputs.evaluation = json.loads((path / FIGURES_FILE).read_text())
        inputs.plots = sorted(path.glob("*.png"))
        if not files and inputs.evaluation is None and not inputs.plots:
            raise FileNotFoundError(f"{path} holds none of {', '.join(RECORD_FILES)}, {FIGURES_FILE} or plots")
    elif path.is_file():
        files = [path]
    else:
        raise FileNotFoundError(f"no such file or folder: {path}")
    by_kind = {ACCEPTED: inputs.accepted, REJECTED: inputs.rejected, DEAD_LETTERED: inputs.dead_letters,
               "trial": inputs.trials}
    for record in stats.load_records(files):
        by_kind[record_kind(record)].append(record)
    return inputs


# -- one trajectory -----------------------------------------------------------------------------------------------

def failed_messages(check: dict, messages: list[dict]) -> list[int]:
    """The messages a check names as failing it; for a record written before checks named them, the messages of the
    tool calls its detail mentions."""
    if "messages" in check:
        return list(check["messages"])
    detail = check.get("detail", "")
    return sorted({i for i, m in enumerate(messages) for c in m.get("tool_calls") or []
                   if re.search(rf"(?<![\w-]){re.escape(c['id'])}(?![\w-])", detail)})


def _dialogue_summary(messages: list[dict]) -> dict[str, int]:
    dialogue = [m for m in messages if m["role"] != "system"]
    return {"turns": len(dialogue), "user_turns": sum(m["role"] == "user" for m in dialogue),
            "tool_calls": sum(len(m.get("tool_calls") or []) for m in dialogue)}


def trajectory_view(record: dict, outcome: str) -> tuple[dict, dict]:
    """(summary, detail) of a dataset or rejection record: the summary is what the list shows and filters on, the
    detail what the trajectory's view shows."""
    meta = record.get("metadata", {})
    verdict = meta.get("verdict", {})
    messages = record.get("messages", [])
    checks = [{**c, "messages": failed_messages(c, messages)} for c in record.get("checks", verdict.get("checks", []))]
    reasons = record.get("reasons", verdict.get("reasons", []))
    tasks = meta.get("tasks", [])
    summary = {
        "id": record.get("id") or record.get("trajectory_id", ""), "outcome": outcome,
        "seed": record.get("seed_id") or meta.get("seed_id", ""), "domain": meta.get("domain", ""),
        # a trial's agent where a generated trajectory has its pipeline mode
        "mode": meta["evaluation"]["agent"] if "evaluation" in meta else meta.get("pipeline_mode", ""),
        "tasks": len(tasks),
        "difficulty": sorted({t["difficulty"] for t in tasks}),
        **_dialogue_summary(messages),
        "reasons": sorted(reason_kinds({"reasons": reasons, "checks": checks})) if outcome in (REJECTED, FAILED)
        else [],
        "failed": [c["name"] for c in checks if not c.get("passed")],
        # what the search box matches besides the dialogue itself
        "text": " ".join([*(t["description"] for t in tasks), *reasons]),
    }
    detail = {
        "messages": messages,
        "given": 1 + (meta.get("prefix_messages") or 0),  # the system prompt and a start state's prefix
        "tools": record.get("tools", []),
        "bindings": meta.get("tool_bindings", {}),
        "tasks": tasks,
        "setup_actions": meta.get("start_state", {}).get("setup_actions", []),
        "checks": checks,
        "reasons": reasons,
        "call_results": {r["call_id"]: r for r in meta.get("tool_results", [])},
        "judge": {"decision": verdict.get("judge_decision", ""),
                  "label": record.get("judge_judgment", verdict.get("judge_label", "")),
                  "reasoning": record.get("judge_reasoning", verdict.get("judge_reasoning", "")),
                  "rubric": verdict.get("rubric", [])},
        "facts": _facts(record, meta),
    }
    return summary, detail


def _facts(record: dict, meta: dict) -> list[list[str]]:
    """(label, value) rows of the trajectory's header, the ones it has."""
    counters = meta.get("counters", {})
    database = meta.get("database") or {}
    rows = [
        ("seed", record.get("seed_id") or meta.get("seed_id")),
        ("domain", meta.get("domain")),
        ("database", database.get("source") or database.get("generator")),
        ("pipeline", meta.get("pipeline_mode")),
        ("agent under test", meta.get("evaluation", {}).get("agent")),
        ("tools run", meta.get("tool_execution")),
        ("wall time", f"{meta['latency_s']} s" if meta.get("latency_s") is not None else None),
        ("tokens", f"{counters.get('prompt_tokens', 0)} prompt, {counters.get('completion_tokens', 0)} generated"
         if counters else None),
        ("models", ", ".join(f"{role}: {model}" for role, model in meta.get("models", {}).items())),
        ("trace id", record.get("trace_id") or meta.get("trace_id")),
        ("abandoned", meta.get("abandoned_reason")),
    ]
    return [[label, str(value)] for label, value in rows if value]


def dead_letter_view(letter: dict) -> tuple[dict, dict]:
    summary = {
        "id": letter.get("trajectory_id") or f"{letter.get('seed_id', '')} (whole seed)", "outcome": DEAD_LETTERED,
        "seed": letter.get("seed_id", ""), "domain": "", "mode": "", "tasks": 0, "difficulty": [],
        "turns": 0, "user_turns": 0, "tool_calls": 0,
        "reasons": [f"dead letter: {letter['service']}"], "failed": [], "text": letter["reason"],
    }
    facts = [["service", letter["service"]], ["error", letter.get("error_type", "")],
             ["reason", letter["reason"]], ["attempts", str(letter.get("attempts", ""))],
             ["from", f"{letter.get('source_topic', '')} partition {letter.get('partition', '')} "
                      f"offset {letter.get('offset', '')}"],
             ["failed at", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(letter["failed_at"]))
              if letter.get("failed_at") else ""]]
    return summary, {"messages": [], "given": 0, "tools": [], "bindings": {}, "tasks": [], "setup_actions": [],
                     "checks": [], "reasons": [letter["reason"]], "call_results": {}, "judge": {},
                     "facts": [f for f in facts if f[1]], "dead_letter": True}


# -- the whole set ------------------------------------------------------------------------------------------------

def _plot(path: Path) -> dict[str, str]:
    return {"name": path.stem.replace("_", " "),
            "src": "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()}


def page_data(inputs: Inputs) -> tuple[list[dict], list[dict], dict[str, Any]]:
    """(summaries, details, figures) of the page."""
    views = [trajectory_view(r, ACCEPTED) for r in inputs.accepted]
    views += [trajectory_view(r, REJECTED) for r in inputs.rejected]
    views += [dead_letter_view(d) for d in inputs.dead_letters]
    views += [trajectory_view(r, PASSED if r["metadata"]["verdict"]["accepted"] else FAILED) for r in inputs.trials]
    summaries = [s for s, _ in views]
    reasons: Counter[str] = Counter(reason for s in summaries for reason in s["reasons"])
    run = inputs.accepted or inputs.rejected or inputs.dead_letters or not inputs.trials
    outcomes = ((ACCEPTED, REJECTED, DEAD_LETTERED) if run else ()) + ((PASSED, FAILED) if inputs.trials else ())
    figures = {
        "counts": {outcome: sum(s["outcome"] == outcome for s in summaries) for outcome in outcomes},
        # The dataset is the accepted trajectories: its figures are theirs.
        "dataset": stats.dataset_figures(inputs.accepted) if inputs.accepted else {},
        "reasons": reasons.most_common(),
        "evaluation": inputs.evaluation,
        "plots": [_plot(p) for p in inputs.plots],
    }
    return summaries, [d for _, d in views], figures


@functools.cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(ASSETS), autoescape=True, undefined=jinja2.StrictUndefined)
    # tojson still escapes < > & ' (safe inside a script block); text stays as written, so the search box finds it.
    env.policies["json.dumps_kwargs"] = {"ensure_ascii": False}
    return env


def build_page(inputs: Inputs) -> str:
    summaries, details, figures = page_data(inputs)
    asset = {name: (ASSETS / name).read_text() for name in
             ("review.js", "review.css", "vendor/gridjs/gridjs.umd.js", "vendor/gridjs/mermaid.min.css")}
    return _environment().get_template("review.html.j2").render(
        title=f"TurnForge review: {inputs.source.resolve().name}", source=str(inputs.source),
        generated=time.strftime("%Y-%m-%d %H:%M"), summaries=summaries, details=details, figures=figures,
        asset=asset)


def default_page_path(source: Path) -> Path:
    """A folder's page is review.html inside it; a file's sits beside it, named after it."""
    return source / PAGE_NAME if source.is_dir() else source.with_name(f"{source.stem}.{PAGE_NAME}")


def write_page(source: str | Path, out: str | Path | None = None) -> Path:
    source = Path(source)
    path = Path(out) if out else default_page_path(source)
    path.write_text(build_page(read_inputs(source)), encoding="utf-8")
    return path


def serve(page: Path, port: int = 0) -> None:
    """Serve the page, and only it, on 127.0.0.1 until interrupted."""
    body = page.read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server interface
            if self.path.split("?", 1)[0] not in ("/", f"/{PAGE_NAME}"):
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):  # noqa: A002 - quiet: the terminal shows the address only
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler) as server:
        print(f"serving {page} at http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C stops)", flush=True)
        server.serve_forever()
