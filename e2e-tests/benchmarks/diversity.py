"""The shape and diversity of what a configuration generates, measured on many trajectories through the scripted
model (the test double of e2e-tests/fake_llm.py: it plays every role competently and instantly, so a large run
takes minutes and measures the planner, not a model).

One process tree: the embedded broker (tansu) and PostgreSQL on free ports, the scripted model server, the seven
services as processes. The run takes its generation settings from a config file (configs/default.yaml,
configs/paper.yaml, ...) with the trajectory count and domains given here; the dataset lands in --out, and the
paper's Table 1 with the diversity figures are printed, then one JSON object on the last line.

    python e2e-tests/benchmarks/diversity.py --config configs/default.yaml --trajectories 500 --out /tmp/div
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import yaml
from rich.console import Console

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # e2e-tests, for fake_llm
sys.path.insert(0, str(HERE.parents[1]))  # the repository root, for `shared`

from fake_llm import FakeLLM  # noqa: E402

from shared.ops import local_postgres, stack  # noqa: E402
from shared.run import runner, stats  # noqa: E402
from shared.runtime.config import Settings  # noqa: E402
from shared.runtime.ports import free_port  # noqa: E402

HANDLERS = 16  # per service: the scripted model answers at once, so the services' own work sets the pace


def start(work: Path, model_url: str) -> Settings:
    settings = Settings(
        kafka={"bootstrap_servers": f"127.0.0.1:{free_port()}", "topic_prefix": "div.", "partitions": 4,
               "fetch_max_wait_ms": 50},
        postgres={"dsn": local_postgres.dsn_for(free_port(), "div")},
        llm={"default": {"base_url": model_url, "model": "scripted", "structured_output": "json_schema",
                         "timeout_s": 120, "extra_body": {}}},
        service={"concurrency": HANDLERS},
        state_dir=work / "state",
    )
    stack.start_broker(settings)
    port = int(settings.postgres.dsn.split(":")[-1].split("/")[0])
    local_postgres.start(work / "pgdata", port, database="div", max_connections=8 * HANDLERS + 100)
    stack.load_demo_domains(settings.postgres.dsn)
    stack.ensure_topics_ready(settings)
    for name in stack.SERVICES:
        stack.start_service(settings, name, check_s=0)
    return settings


def stop(settings: Settings, work: Path) -> None:
    for name in stack.SERVICES:
        stack.stop_service(settings, name)
    stack._stop(stack.pid_path(settings, "broker"))
    local_postgres.stop(work / "pgdata")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="configs/default.yaml", help="a run config: its generation section is used")
    p.add_argument("--trajectories", type=int, default=500, help="trajectories in all, split over the domains")
    p.add_argument("--domains", default="", help="comma-separated; default: the config's")
    p.add_argument("--out", default="", help="where dataset.jsonl and report.md go (default: a temporary folder)")
    args = p.parse_args(argv)

    with open(args.config) as f:
        generation = (yaml.safe_load(f) or {}).get("generation") or {}
    domains = args.domains.split(",") if args.domains else generation.get("domains", ["telecom"])
    work = Path(tempfile.mkdtemp(prefix="turnforge-diversity-"))
    out = Path(args.out) if args.out else work / "out"
    config = runner.RunConfig(**{**generation, "domains": domains,
                                 "num_trajectories": max(1, args.trajectories // len(domains)),
                                 "min_accepted": 0, "max_rounds": 1, "timeout_s": 3600,
                                 "trajectory_deadline_s": 3000, "output_dir": str(out)})
    with FakeLLM() as fake:
        fake.record_requests = False
        settings = start(work, fake.base_url)
        try:
            started = time.monotonic()
            result = runner.run(settings, config, console=Console(file=io.StringIO()))
            wall = time.monotonic() - started
        finally:
            stop(settings, work)
    records = stats.load_records([result.dataset_path])
    figures = {"config": args.config, "domains": domains, "seeded": result.seeded, "accepted": result.accepted,
               "rejected": result.rejected, "dead_lettered": result.dead_lettered, "missing": result.missing,
               "wall_s": round(wall, 1), "plans": plan_shape(records),
               "table1": stats.dataset_stats(records), "diversity": stats.diversity(records)}
    print(f"{args.config}: {result.seeded} seeded, {result.accepted} accepted, {result.rejected} rejected, "
          f"{result.dead_lettered} dead-lettered, {result.missing} missing in {wall:.0f} s; dataset {out}")
    if records:
        print(stats.render(figures["table1"]) + "\n\n" + stats.render_diversity(figures["diversity"]))
        print(f"Plans: {json.dumps(figures['plans'])}")
    print(json.dumps(figures))
    return 0


def plan_shape(records: list[dict]) -> dict:
    """What was planned for the accepted dialogues: tasks per trajectory, requests per task, golden calls per
    request (the paper's steps per subtask)."""
    tasks = [t for r in records for t in r["metadata"]["tasks"]]
    requests = [s for t in tasks for s in t["subtasks"]]
    per_request = [len(s.get("leading_actions", [])) + 1 for s in requests]
    return {"tasks_per_trajectory": round(len(tasks) / len(records), 2) if records else None,
            "requests_per_task": round(len(requests) / len(tasks), 2) if tasks else None,
            "golden_calls_per_request": round(sum(per_request) / len(per_request), 2) if per_request else None,
            "golden_calls_per_request_max": max(per_request, default=None),
            "requests_with_two_or_more_calls": sum(n >= 2 for n in per_request)}


if __name__ == "__main__":
    sys.exit(main())
