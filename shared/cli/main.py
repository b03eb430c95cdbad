"""The `turnforge` command: the embedded stack, runs, single services and seeding a cluster."""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import runpy
import signal
import sys
import time
from pathlib import Path

import yaml
from google.protobuf.json_format import ParseDict
from kafka.errors import KafkaError
from rich.console import Console
from rich.table import Table

from shared.cli import evaluate as evaluate_cli
from shared.cli.stacks import EMBEDDED_HELP, note, stack_for
from shared.cli import tools as tools_cli
from shared.contracts import SeedEvent
from shared.ops import cluster, stack, trace_lookup
from shared.ops.validate import validate_dataset
from shared.ops.stack import StackError
from shared.run import dataset, review, runner, stats
from shared.runtime.config import ROLES, Settings, load_settings



def _config_path(args) -> str | None:
    return args.config or os.environ.get("TURNFORGE_CONFIG") or None


def cmd_up(args) -> int:
    stack.up(load_settings(_config_path(args)), with_model=not args.no_model, config_path=_config_path(args))
    print("stack is up; `turnforge status` shows it, `turnforge down` stops it")
    return 0


def cmd_down(args) -> int:
    stack.down(load_settings(_config_path(args)))
    print("stack is down")
    return 0


def cmd_status(args) -> int:
    rows = stack.status(load_settings(_config_path(args)))
    table = Table("component", "state", "pid", "detail")
    for r in rows:
        table.add_row(r.name, "[green]running[/]" if r.running else "[red]stopped[/]", str(r.pid or "-"), r.detail)
    Console().print(table)
    return 0


def cmd_run(args) -> int:
    path = _config_path(args)
    settings = load_settings(path)
    run_config = runner.load_run_config(path)
    resume = {"run_id": args.resume, "resume": True} if args.resume else {}
    if args.embedded and args.resume:  # the embedded broker keeps topics in memory only: nothing of the run survives
        print("--resume needs a durable broker (Apache Kafka); the embedded one forgets its topics on stop",
              file=sys.stderr)
        return 2
    with stack_for(settings, args.embedded, "run") as settings:
        result = runner.run(settings, run_config, **resume)
    accepted = stats.load_records([result.dataset_path]) if result.dataset_path.is_file() else []
    if accepted:  # what the accepted dialogues are like: the paper's Table 1 and how much they repeat
        print(stats.render(stats.dataset_stats(accepted)) + "\n\n" + stats.render_diversity(stats.diversity(accepted)))
    print(f"report: {result.report_path}")
    print(f"dataset: {result.dataset_path}")
    print(f"review page: {result.page_path}  (open it in a browser; `turnforge view --serve` serves it)")
    print(f"seeded {result.seeded}, accepted {result.accepted}, rejected {result.rejected}, "
          f"dead-lettered {result.dead_lettered}, missing {result.missing}"
          + (" (timed out)" if result.timed_out else ""))
    return 0 if result.complete else 1


def cmd_service(args) -> int:
    if args.name not in stack.SERVICES:
        print(f"unknown service {args.name!r}; one of {', '.join(stack.SERVICES)}", file=sys.stderr)
        return 2
    if args.config:  # services read their settings themselves, from the environment
        os.environ["TURNFORGE_CONFIG"] = os.path.abspath(args.config)
    # By name: the library never imports a service's code, it runs the service's __main__ like `python -m`.
    runpy.run_module(f"services.{args.name}", run_name="__main__", alter_sys=True)
    return 0


def seeds_from_file(path: str, settings, run_id: str) -> list:
    """Seed events from a file: `seeds:` (a list of SeedEvent objects in protobuf JSON form), one SeedEvent
    (a mapping with seed_id), or a run config (a `generation:` section, or its fields at the top level)."""
    with open(path) as f:
        data = yaml.safe_load(f) or {}  # YAML is a superset of JSON
    if isinstance(data, dict) and ("seeds" in data or "seed_id" in data or "seedId" in data):
        seeds = [ParseDict(item, SeedEvent()) for item in data.get("seeds", [data])]
        for seed in seeds:
            if not seed.seed_id:
                raise ValueError(f"a seed in {path} has no seed_id")
            seed.created_at = seed.created_at or time.time()
            # Roles the file leaves out get the configured model, as a run's seeds do.
            for role in ROLES:
                if role not in seed.settings.models:
                    seed.settings.models[role] = settings.llm.for_role(role).model
        return seeds
    section = data.get("generation", data) if isinstance(data, dict) else data
    return runner.build_seed_events(runner.RunConfig(**(section or {})), run_id, settings)


def cmd_produce_seed(args) -> int:
    settings = load_settings(_config_path(args))
    seeds = seeds_from_file(args.file, settings, args.run_id or runner.new_run_id())
    stack.require_reachable(settings, postgres=False, model=False)
    runner.produce_seeds(settings, seeds)
    for seed in seeds:
        print(f"produced seed {seed.seed_id} ({seed.domain}, {seed.settings.num_trajectories} trajectories)")
    return 0


def cmd_stats(args) -> int:
    records = stats.load_records(args.datasets)
    figures = stats.dataset_stats(records)
    if not figures:
        print("no samples in " + ", ".join(args.datasets), file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(stats.dataset_figures(records), indent=2))
    else:
        print(stats.render(figures) + "\n\n" + stats.render_diversity(stats.diversity(records)))
    return 0


def cmd_view(args) -> int:
    page = review.write_page(args.path, args.out)
    print(f"review page: {page}")
    if args.serve:
        review.serve(page, args.port)
    return 0


def cmd_export(args) -> int:
    records = stats.load_records(args.datasets)
    path = dataset.export(records, args.format, Path(args.out), rejections=dataset.load_rejections(args.datasets))
    print(f"{len(records)} trajectories -> {path}")
    return 0


def cmd_validate(args) -> int:
    results = validate_dataset(load_settings(_config_path(args)), args.dataset, judge=args.judge)
    if args.json:
        for r in results:
            print(json.dumps({"id": r.id, "accepted": r.accepted, "reasons": r.reasons}, ensure_ascii=False))
    else:
        for r in results:
            print(f"{'accepted' if r.accepted else 'REJECTED'}  {r.id}")
            for reason in r.reasons:
                print(f"    {reason}")
        accepted = sum(r.accepted for r in results)
        print(f"{accepted} of {len(results)} records re-validate as accepted"
              + ("" if args.judge else " (deterministic checks and replay; --judge adds the rubric judge)"))
    return 0 if results and all(r.accepted for r in results) else 1


def cmd_trace(args) -> int:
    settings = load_settings(_config_path(args))
    folders = [Path(d) for d in args.out] if args.out else [Path(runner_output_dir(_config_path(args)))]
    ref = trace_lookup.find_in_files(args.trajectory_id, folders)
    if ref is None and not args.no_kafka:
        ref = trace_lookup.find_on_kafka(settings, args.trajectory_id)
    ui = settings.tracing.jaeger_ui_url
    if ref is None:
        print(f"no trace id for {args.trajectory_id} in {', '.join(map(str, folders))}"
              + ("" if args.no_kafka else " or on the terminal topics"), file=sys.stderr)
        print(f"search Jaeger for it: {trace_lookup.search_url(ui, args.trajectory_id)}", file=sys.stderr)
        return 1
    print(f"trajectory {ref.trajectory_id}")
    print(f"trace id   {ref.trace_id}")
    print(f"jaeger     {ref.jaeger_url(ui)}")
    print(f"found in   {ref.source}")
    return 0


def runner_output_dir(config_path: str | None) -> str:
    return runner.load_run_config(config_path).output_dir


def _release_settings(args) -> Settings:
    if _config_path(args):
        settings = load_settings(_config_path(args))
    else:  # the release's own settings (its topic and consumer group prefixes), as its pods read them
        settings = Settings(**(yaml.safe_load(cluster.release_config(args.release, args.namespace)) or {}))
    if args.bootstrap:
        settings.kafka.bootstrap_servers = args.bootstrap
    return settings


def cmd_cluster_status(args) -> int:
    status = cluster.gather(_release_settings(args), args.release, args.namespace)
    if args.json:  # for scripts, e.g. waiting until no trajectory is in flight
        print(json.dumps(dataclasses.asdict(status), indent=2))
    else:
        console = Console()
        for part in cluster.render(status):
            console.print(part)
    healthy = status.services and all(r.healthy for r in status.services + status.model_servers)
    return 0 if healthy else 1


def cmd_cluster_collect(args) -> int:
    rows, paths = cluster.collect(_release_settings(args), Path(args.out or f"out/{args.release}"))
    accepted, rejected, in_flight = (sum(getattr(r, f) for r in rows) for f in ("accepted", "rejected", "in_flight"))
    print(f"{len(rows)} seed(s): {accepted} accepted, {rejected} rejected, "
          f"{sum(r.dead_lettered for r in rows)} dead-lettered, {in_flight} in flight"
          + (" (not written yet: collect again later)" if in_flight else ""))
    print(f"dataset: {paths['dataset_path']}\nrejected: {paths['rejected_path']}\nreview page: {paths['page_path']}")
    return 0


def cmd_cluster_init(args) -> int:
    settings = load_settings(_config_path(args))
    kafka = settings.kafka  # arguments override the config's kafka.partitions, topic_partitions, replication_factor
    kafka.partitions = args.partitions or kafka.partitions
    kafka.replication_factor = args.replication_factor or kafka.replication_factor
    for item in args.topic_partitions:
        topic, _, count = item.partition("=")
        kafka.topic_partitions[topic] = int(count)
    cluster.init(settings, demo_domains=args.demo_domains, wait_s=args.wait_s)
    return 0


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="YAML config file (default: $TURNFORGE_CONFIG)")
    parser = argparse.ArgumentParser(prog="turnforge", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("up", parents=[common], help="start the embedded stack (broker, PostgreSQL, model, services)")
    p.add_argument("--no-model", action="store_true", help="do not start the local model server")
    p.set_defaults(func=cmd_up)
    sub.add_parser("down", parents=[common], help="stop the embedded stack").set_defaults(func=cmd_down)
    sub.add_parser("status", parents=[common], help="show the embedded stack").set_defaults(func=cmd_status)
    p = sub.add_parser("run", parents=[common], help="seed a run and wait for its trajectories")
    p.add_argument("--embedded", action="store_true", help=EMBEDDED_HELP)
    p.add_argument("--resume", metavar="RUN_ID", help="finish an interrupted run (same config): completed "
                   "trajectories are kept, not generated again")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("service", parents=[common], help="run one service in this process")
    p.add_argument("name")
    p.set_defaults(func=cmd_service)
    p = sub.add_parser("produce-seed", parents=[common], help="produce seed events from a file, without waiting")
    p.add_argument("file")
    p.add_argument("--run-id", help="prefix of the seed ids (default: a new run id)")
    p.set_defaults(func=cmd_produce_seed)
    p = sub.add_parser("stats", help="steps, turns, tasks and efficiency of datasets per pipeline mode, and their "
                       "diversity")
    p.add_argument("datasets", nargs="+", help="dataset.jsonl files")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(func=cmd_stats)
    p = sub.add_parser("view", help="write the review page of a run: every trajectory with its dialogue, tools, "
                                    "tasks and checks, and the set's figures (one HTML file that works offline)")
    p.add_argument("path", help="a run's output folder, an evaluation's --out folder, or a dataset.jsonl, "
                                "rejected.jsonl or dead_letters.jsonl")
    p.add_argument("--out", help="the HTML file (default: review.html in the folder, or FILE.review.html beside "
                                 "the file)")
    p.add_argument("--serve", action="store_true", help="then serve it on 127.0.0.1 until Ctrl-C")
    p.add_argument("--port", type=int, default=0, help="with --serve (default: any free port)")
    p.set_defaults(func=cmd_view)
    p = sub.add_parser("export", help="convert dataset.jsonl files to another training format")
    p.add_argument("datasets", nargs="+", help="dataset.jsonl files")
    p.add_argument("--format", choices=["openai", "sharegpt", "hf"], default="openai")
    p.add_argument("--out", required=True, help="a .jsonl file (openai, sharegpt) or a folder (hf)")
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("validate", parents=[common],
                       help="re-validate dataset records offline: replay their calls in a fresh sandbox and run the "
                            "validator's checks")
    p.add_argument("dataset", help="a dataset.jsonl file")
    p.add_argument("--judge", action="store_true", help="also ask the configured judge model about each rubric")
    p.add_argument("--json", action="store_true", help='one line per record: {"id", "accepted", "reasons"}')
    p.set_defaults(func=cmd_validate)
    p = sub.add_parser("trace", parents=[common], help="print a trajectory's trace id and its Jaeger address")
    p.add_argument("trajectory_id")
    p.add_argument("--out", action="append", help="a run's output folder (default: the config's output_dir)")
    p.add_argument("--no-kafka", action="store_true", help="look in the output files only, not on the topics")
    p.set_defaults(func=cmd_trace)
    cluster_cmd = sub.add_parser("cluster", help="TurnForge on Kubernetes").add_subparsers(dest="cluster_command",
                                                                                          required=True)
    release = argparse.ArgumentParser(add_help=False)  # a Helm release's settings, as _release_settings reads them
    release.add_argument("--release", required=True, help="the Helm release")
    release.add_argument("--namespace", default="default")
    release.add_argument("--bootstrap", help="Kafka bootstrap servers reachable from here (default: from the config)")
    p = cluster_cmd.add_parser("status", parents=[common, release],
                               help="ready replicas, model servers and GPUs, consumer lag, the seeds' progress",
                               description="Without --config or $TURNFORGE_CONFIG, the release's own config (its "
                                           "ConfigMap) names the topics and consumer groups.")
    p.add_argument("--json", action="store_true", help="print the status as JSON")
    p.set_defaults(func=cmd_cluster_status)
    p = cluster_cmd.add_parser("collect", parents=[common, release],
                               help="write a release's finished trajectories as dataset.jsonl and rejected.jsonl",
                               description="Reads the release's seeds and outcome topics from their start, as "
                                           "`turnforge run` does; the release's config names them unless --config.")
    p.add_argument("--out", help="output folder (default: out/RELEASE)")
    p.set_defaults(func=cmd_cluster_collect)
    p = cluster_cmd.add_parser("init", parents=[common], help="create the topics (and load the demo domains)")
    p.add_argument("--partitions", type=int, help="partitions per topic (default: kafka.partitions)")
    p.add_argument("--topic-partitions", action="append", default=[], metavar="TOPIC=N",
                   help="one topic's count (default: kafka.topic_partitions)")
    p.add_argument("--replication-factor", type=int, help="default: kafka.replication_factor")
    p.add_argument("--demo-domains", action="store_true", help="register the demo domain databases")
    p.add_argument("--wait-s", type=float, default=300, help="retry while Kafka or PostgreSQL are not up yet")
    p.set_defaults(func=cmd_cluster_init)
    tools_cli.add_parsers(sub, common)  # import-db, tools
    evaluate_cli.add_parsers(sub, common)  # align, tasks import-dysql
    return parser


class Terminated(BaseException):
    """SIGTERM or SIGHUP, raised like Ctrl-C's KeyboardInterrupt so that the command unwinds and stops what it
    started (`timeout`, CI runners, systemd and Kubernetes end a command with SIGTERM; a closed terminal sends SIGHUP).
    Not an Exception: no `except Exception` on the way may swallow it."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _terminate(signum, _frame) -> None:
    for sig in (signal.SIGTERM, signal.SIGHUP):  # once: a second signal must not cut the stack's stop short
        signal.signal(sig, lambda *_: note("turnforge: stopping already"))
    note(f"turnforge: {signal.Signals(signum).name}: stopping what this command started")
    raise Terminated(signum)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # The terminal shows progress and errors; the Kafka client's warnings (reconnects, metadata retries) are for the
    # services' log files, where the same client logs at WARNING.
    logging.getLogger("kafka").setLevel(logging.ERROR)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _terminate)
    try:
        code = args.func(args)
    except KeyboardInterrupt:
        code = 130
    except Terminated as e:
        code = 128 + e.signum
    except Exception as e:  # noqa: BLE001 - a stack or config error is for the user, not a traceback
        if not isinstance(e, (StackError, KafkaError, FileNotFoundError, ValueError)):
            raise
        print(f"turnforge: {e}", file=sys.stderr)
        code = 1
    sys.exit(code)


if __name__ == "__main__":
    main()
