"""Benchmark: the whole pipeline against the model server it drives (run with `make bench`).

One process tree: the embedded broker (tansu) and PostgreSQL, a simulated batching model server (sim_llm.py) in
this process, and the seven services as processes, started as the end-to-end harness starts them. For each
concurrency C the model server runs at most C sequences at once, and its generated tokens/s is measured twice:
(a) driven directly by C client threads replaying the requests the pipeline sent, and (b) driven by the pipeline
with 2·C trajectories (enough that C calls wait on the server while others are between services). Besides, per
topic the hop latency (a service's send to the next handler's start), memory and CPU per service, bytes per event,
and create+drop of sandboxes under concurrency. Prints tables, then one JSON object on the last line.

    python e2e-tests/benchmarks/bench_pipeline.py --concurrency 8,64
"""
from __future__ import annotations

import argparse
import http.client
import io
import json
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import yaml
from kafka import KafkaConsumer
from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))  # the repository root, for `shared`

from bench_sandbox import concurrent_create_drop  # noqa: E402
from sim_llm import BatchingTimes, SimulatedModelServer  # noqa: E402

from shared.contracts import Topics, TrajectoryState, Verdict  # noqa: E402
from shared.contracts.flow import FLOW  # noqa: E402
from shared.ops import local_postgres, stack  # noqa: E402
from shared.run import runner  # noqa: E402
from shared.runtime.config import Settings  # noqa: E402
from shared.runtime.ports import free_port  # noqa: E402

console = Console(width=150)
MODEL_CALLING = ("task_generator", "user_sim", "agent", "validator")  # their handlers wait on the model most of the time
STATE_TOPICS = tuple(t.name for t in FLOW if t.message is TrajectoryState)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def p50_p99(samples: list[float]) -> dict[str, float]:
    return {"p50": round(percentile(samples, 0.5), 2), "p99": round(percentile(samples, 0.99), 2), "n": len(samples)}


# -- the stack -----------------------------------------------------------------------------------------------------
def start_stack(work: Path, model_url: str, handlers: int) -> Settings:
    settings = Settings(
        kafka={"bootstrap_servers": f"127.0.0.1:{free_port()}", "topic_prefix": "bench.", "partitions": 4},
        postgres={"dsn": local_postgres.dsn_for(free_port(), "bench")},
        llm={"default": {"base_url": model_url, "model": "sim", "structured_output": "json_schema", "timeout_s": 600,
                         "extra_body": {}}},
        service={"concurrency": 8, "hop_log": str(work / "hops.log")},
        state_dir=work / "state",
    )
    stack.start_broker(settings)
    port = int(settings.postgres.dsn.split(":")[-1].split("/")[0])
    # Every handler thread of a service holds its own connections (ledger, registry, sandboxes).
    local_postgres.start(work / "pgdata", port, database="bench", max_connections=4 * handlers + 200)
    stack.load_demo_domains(settings.postgres.dsn)
    stack.ensure_topics_ready(settings)
    for name in stack.SERVICES:
        stack.start_service(settings, name, config_path=service_config(settings, work, name, handlers), check_s=0)
    return settings


def service_config(settings: Settings, work: Path, name: str, handlers: int) -> Path:
    """The services that wait on the model get `handlers` concurrent handlers; the others keep the default."""
    data = settings.model_dump(mode="json")
    data["state_dir"] = str(Path(settings.state_dir).resolve())
    if name in MODEL_CALLING:
        data["service"]["concurrency"] = handlers
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def stop_stack(settings: Settings, work: Path) -> None:
    for name in stack.SERVICES:
        stack.stop_service(settings, name)
    stack._stop(stack.pid_path(settings, "broker"))
    local_postgres.stop(work / "pgdata")


# -- per-service resources -----------------------------------------------------------------------------------------
class ResourceSampler(threading.Thread):
    """CPU seconds between `mark`s and the largest resident memory seen, per service process."""

    def __init__(self, settings: Settings):
        super().__init__(daemon=True)
        self.processes = {name: psutil.Process(stack._read_pid(stack.pid_path(settings, name)))
                          for name in stack.SERVICES}
        self.rss_max_mb: Counter[str] = Counter()
        self.halt = threading.Event()

    def cpu_s(self) -> dict[str, float]:
        times = {}
        for name, process in self.processes.items():
            t = process.cpu_times()
            times[name] = t.user + t.system
        return times

    def run(self) -> None:
        while not self.halt.wait(1.0):
            for name, process in self.processes.items():
                try:
                    self.rss_max_mb[name] = max(self.rss_max_mb[name], process.memory_info().rss / 2**20)
                except psutil.Error:
                    pass


# -- one pipeline run ----------------------------------------------------------------------------------------------
@dataclass
class PipelineRun:
    label: str
    concurrency: int
    trajectories: int
    wall_s: float = 0.0
    tokens_per_s: float = 0.0
    in_flight_mean: float = 0.0
    in_flight_max: int = 0
    lost: int = 0
    accepted: int = 0
    cpu_s: dict[str, float] = field(default_factory=dict)
    window: tuple[float, float] = (0.0, 0.0)


def run_pipeline(settings: Settings, sim: SimulatedModelServer, sampler: ResourceSampler, work: Path, label: str,
                 concurrency: int, trajectories: int) -> PipelineRun:
    sim.scheduler.times = BatchingTimes(max_batch=concurrency)
    config = runner.RunConfig(domains=["telecom"], num_trajectories=trajectories, tasks_per_trajectory=1,
                              write_task_share=0.5, max_user_turns=4, timeout_s=900,
                              output_dir=str(work / "out" / label))
    cpu_before = sampler.cpu_s()
    sim.reset_counters()
    started, wall_started = time.monotonic(), time.time()
    result = runner.run(settings, config, run_id=f"bench-{label}", console=Console(file=io.StringIO()))
    wall = time.monotonic() - started
    cpu_after = sampler.cpu_s()
    run = PipelineRun(label, concurrency, trajectories, wall_s=wall, lost=result.missing, accepted=result.accepted,
                      window=(wall_started, time.time()))
    run.tokens_per_s = sim.served["answer_tokens"] / wall
    run.in_flight_mean = sim.in_flight_area / wall
    run.in_flight_max = sim.in_flight_max
    run.cpu_s = {name: cpu_after[name] - cpu_before[name] for name in cpu_after}
    console.print(f"pipeline {label}: {trajectories} trajectories in {wall:.1f} s, {run.tokens_per_s:.0f} tokens/s, "
                  f"{run.accepted} accepted, {run.lost} lost, in flight mean {run.in_flight_mean:.1f} "
                  f"max {run.in_flight_max}", markup=False)
    return run


# -- the server alone ----------------------------------------------------------------------------------------------
def run_direct(sim: SimulatedModelServer, concurrency: int, bodies: list[dict], requests: int) -> float:
    """Generated tokens/s with `concurrency` clients each sending its next request as soon as the last returns."""
    sim.scheduler.times = BatchingTimes(max_batch=concurrency)
    work = [json.dumps(bodies[i % len(bodies)]).encode() for i in range(requests)]
    lock = threading.Lock()

    def client(_: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=600)
        while True:
            with lock:
                if not work:
                    break
                body = work.pop()
            connection.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
            connection.getresponse().read()
        connection.close()

    sim.reset_counters()
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(client, range(concurrency)))
    tokens_per_s = sim.served["answer_tokens"] / (time.monotonic() - started)
    console.print(f"direct C={concurrency}: {requests} requests, {tokens_per_s:.0f} tokens/s", markup=False)
    return tokens_per_s


# -- what travelled --------------------------------------------------------------------------------------------------
def read_topics(settings: Settings) -> dict[str, list[bytes]]:
    names = {settings.topic(t.name): t.name for t in FLOW}
    # A short fetch wait: tansu often answers a held fetch only when the wait runs out (see KafkaConfig).
    consumer = KafkaConsumer(*names, bootstrap_servers=settings.kafka.bootstrap_servers, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=3000,
                             fetch_max_wait_ms=settings.kafka.fetch_max_wait_ms)
    values: dict[str, list[bytes]] = defaultdict(list)
    for record in consumer:
        values[names[record.topic]].append(record.value or b"")
    consumer.close()
    return values


def message_bytes(values: dict[str, list[bytes]]) -> dict[str, dict[str, float]]:
    return {topic: {"mean": round(statistics.mean(len(v) for v in vs)), "max": max(len(v) for v in vs), "n": len(vs)}
            for topic, vs in values.items() if vs}


def state_bytes_by_user_turns(values: dict[str, list[bytes]]) -> dict[int, int]:
    """Mean serialized TrajectoryState size by the number of user messages it holds."""
    sizes: dict[int, list[int]] = defaultdict(list)
    for topic in STATE_TOPICS:
        for value in values.get(topic, []):
            state = TrajectoryState.FromString(value)
            sizes[sum(m.role == "user" for m in state.messages)].append(len(value))
    return {turns: round(statistics.mean(s)) for turns, s in sorted(sizes.items())}


def duplicated_outcomes(values: dict[str, list[bytes]]) -> int:
    """Trajectories with more than one verdict record (a redelivery the ledger should have absorbed)."""
    ids = Counter(Verdict.FromString(v).trajectory_id for t in (Topics.ACCEPTED, Topics.REJECTED)
                  for v in values.get(t, []))
    return sum(n - 1 for n in ids.values() if n > 1)


def hop_ms(hop_log: Path, window: tuple[float, float]) -> dict[str, dict[str, float]]:
    samples: dict[str, list[float]] = defaultdict(list)
    for line in hop_log.read_text().splitlines() if hop_log.exists() else []:
        at, topic, ms = line.split()
        if window[0] <= float(at) <= window[1]:
            samples[topic.split(".", 1)[1]].append(float(ms))
    return {topic: p50_p99(ms) for topic, ms in sorted(samples.items())}


# -- report ----------------------------------------------------------------------------------------------------------
def print_tables(figures: dict) -> None:
    throughput = Table(title="generated tokens/s: the server alone vs through the pipeline")
    for header in ("C", "direct", "pipeline", "ratio", "in flight mean", "in flight max", "trajectories", "lost"):
        throughput.add_column(header, justify="right")
    for c, row in figures["throughput"].items():
        throughput.add_row(str(c), f"{row['direct_tokens_per_s']:.0f}", f"{row['pipeline_tokens_per_s']:.0f}",
                           f"{row['ratio']:.2f}", f"{row['in_flight_mean']:.1f}", str(row["in_flight_max"]),
                           str(row["trajectories"]), str(row["lost"]))
    console.print(throughput)
    hops = Table(title="hop latency, ms (send to next handler's start)")
    hops.add_column("topic")
    loads = list(figures["hop_ms"])
    for load in loads:
        hops.add_column(f"{load} p50", justify="right")
        hops.add_column(f"{load} p99", justify="right")
    for topic in sorted({t for load in loads for t in figures["hop_ms"][load]}):
        cells = []
        for load in loads:
            h = figures["hop_ms"][load].get(topic, {})
            cells += [f"{h.get('p50', float('nan')):.1f}", f"{h.get('p99', float('nan')):.1f}"]
        hops.add_row(topic, *cells)
    console.print(hops)
    services = Table(title="per service")
    for header in ("service", "CPU ms / trajectory", "RSS max MB"):
        services.add_column(header, justify="left" if header == "service" else "right")
    for name in stack.SERVICES:
        services.add_row(name, f"{figures['cpu_ms_per_trajectory'][name]:.0f}", f"{figures['rss_max_mb'][name]:.0f}")
    console.print(services)
    sizes = Table(title="bytes per event")
    for header in ("topic", "mean", "max", "events"):
        sizes.add_column(header, justify="left" if header == "topic" else "right")
    for topic, s in figures["message_bytes"].items():
        sizes.add_row(topic, str(s["mean"]), str(s["max"]), str(s["n"]))
    console.print(sizes)
    console.print("TrajectoryState bytes by user turns: " + ", ".join(
        f"{turns}: {size}" for turns, size in figures["state_bytes_by_user_turns"].items()), markup=False)
    console.print("call shapes (tokens, mean per call): " + ", ".join(
        f"{kind} {s['prompt']}/{s['answer']} x{s['calls']}" for kind, s in figures["call_shapes"].items()),
        markup=False)
    console.print(f"sandbox create+drop under {figures['sandbox_workers']} workers: {figures['sandbox_ms']}",
                  markup=False)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--concurrency", default="8,64", help="server batch limits to measure at, comma-separated")
    p.add_argument("--light-trajectories", type=int, default=2, help="trajectories of the light-load hop run")
    p.add_argument("--trajectories-per-slot", type=float, default=2.0, help="trajectories per server slot")
    p.add_argument("--sandbox-workers", type=int, default=8)
    args = p.parse_args(argv)
    levels = [int(c) for c in args.concurrency.split(",")]
    figures: dict = {"machine": f"{psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, no GPU",
                     "model": vars(BatchingTimes()) | {"max_batch": "C"}}
    work = Path(tempfile.mkdtemp(prefix="tf-bench-"))
    with SimulatedModelServer() as sim:
        settings = start_stack(work, sim.base_url, handlers=max(levels))
        sampler = ResourceSampler(settings)
        sampler.start()
        try:
            runs = [run_pipeline(settings, sim, sampler, work, "light", max(levels), args.light_trajectories)]
            for c in levels:
                runs.append(run_pipeline(settings, sim, sampler, work, f"C{c}", c,
                                         round(c * args.trajectories_per_slot)))
            shapes = {kind: {"calls": s.calls, "prompt": s.prompt_tokens // s.calls, "answer": s.answer_tokens // s.calls}
                      for kind, s in sim.shapes.items()}  # of the last (heaviest) run
            values = read_topics(settings)
            sandbox = concurrent_create_drop(settings.postgres.dsn, "telecom", args.sandbox_workers, per_worker=5)
        finally:
            sampler.halt.set()
            stop_stack(settings, work)
        direct = {c: run_direct(sim, c, sim.bodies, requests=max(4 * c, 32)) for c in levels}
    heavy = runs[-1]
    hop_log = work / "hops.log"
    figures |= {
        "throughput": {c: {"direct_tokens_per_s": round(direct[c]), "pipeline_tokens_per_s": round(r.tokens_per_s),
                           "ratio": round(r.tokens_per_s / direct[c], 3), "in_flight_mean": round(r.in_flight_mean, 1),
                           "in_flight_max": r.in_flight_max, "trajectories": r.trajectories, "lost": r.lost,
                           "wall_s": round(r.wall_s, 1)}
                       for c, r in zip(levels, runs[1:])},
        "hop_ms": {"light": hop_ms(hop_log, runs[0].window), f"heavy (C={heavy.concurrency})": hop_ms(hop_log, heavy.window)},
        "cpu_ms_per_trajectory": {name: round(1000 * sum(r.cpu_s[name] for r in runs) / sum(r.trajectories for r in runs))
                                  for name in stack.SERVICES},
        "rss_max_mb": {name: round(sampler.rss_max_mb[name]) for name in stack.SERVICES},
        "message_bytes": message_bytes(values),
        "state_bytes_by_user_turns": state_bytes_by_user_turns(values),
        "call_shapes": shapes,
        "sandbox_ms": p50_p99(sandbox),
        "sandbox_workers": args.sandbox_workers,
        "lost": sum(r.lost for r in runs),
        "duplicated": duplicated_outcomes(values),
        "in_flight_max": max(r.in_flight_max for r in runs),
    }
    top = max(levels)
    figures["ratio_pipeline_to_server"] = figures["throughput"][top]["ratio"]
    print_tables(figures)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
