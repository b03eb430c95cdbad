"""The fault suite: a few hundred trajectories through the seven services on real Apache Kafka while things break.

Faults, all in one run: kill -9 of a random service every few seconds (restarted after a pause), the broker killed
and restarted mid-run (its data on disk), PostgreSQL connections cut mid-run, the whole stack stopped and started
again (the run resumes with `turnforge run`'s resume path), a scripted model answering 429, 500, timeouts, empty
completions, malformed JSON and context-overflow errors at set rates, a seed whose trajectories cannot move (they
must be dead-lettered at their deadline), and bad inputs produced straight onto the topics.

At the end it prints the figures and exits non-zero unless: accepted + rejected + dead-lettered == seeded (lost 0),
no trajectory has two outcomes or two dataset rows (duplicated 0), every fault kind was injected, no sandbox is left,
transient model errors were retried, context overflows were not, stuck trajectories were dead-lettered for their
deadline, every bad input got a dead letter, and no trajectory finished before the stop paid for a model call after it.

    python e2e-tests/faults/run_faults.py --trajectories 300
"""
from __future__ import annotations

import argparse
import json
import random
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "kafka"))
sys.path.insert(0, str(HERE.parents[1]))

import psycopg  # noqa: E402
from kafka import KafkaConsumer, KafkaProducer  # noqa: E402

from fake_llm import BAD_ANSWER_FAULTS, PERMANENT_FAULTS, TRANSIENT_FAULTS, FakeLLM, FaultPlan  # noqa: E402
from real_kafka import KafkaBroker, fetch  # noqa: E402

from shared.ops import local_postgres, stack
from shared.run import runner
from shared.runtime.config import Settings  # noqa: E402
from shared.contracts import Topics  # noqa: E402
from shared.runtime.ports import free_port  # noqa: E402
from shared.env.sandbox import SandboxManager  # noqa: E402

NORMAL_DOMAINS = ("telecom", "banking", "healthcare", "retail", "logistics")
STALL_DOMAIN = "education"  # its conversations hang in the fake model: they must end at their deadline
TERMINAL = (Topics.ACCEPTED, Topics.REJECTED, Topics.DEAD_LETTER)


def log(msg: str) -> None:
    print(f"[faults {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Stack:
    """PostgreSQL, real Kafka and the seven services, with the faults the suite injects."""

    def __init__(self, work: Path, fake: FakeLLM, args):
        self.work = work
        self.pg_dir = work / "pg"
        self.pg_port = free_port()
        t0 = time.monotonic()
        local_postgres.start(self.pg_dir, self.pg_port, database="postgres")
        self.pg_start_s = time.monotonic() - t0
        self.dsn = local_postgres.create_database(local_postgres.dsn_for(self.pg_port), "faults")
        self.kafka = KafkaBroker(work / "kafka")
        self.kafka.start()
        log(f"Kafka ready on {self.kafka.bootstrap} in {self.kafka.start_s:.1f} s; PostgreSQL in {self.pg_start_s:.1f} s")
        self.settings = Settings(
            kafka={"bootstrap_servers": self.kafka.bootstrap, "topic_prefix": "faults.", "partitions": 4,
                   "transactions": True, "transaction_timeout_ms": 20000},
            postgres={"dsn": self.dsn},
            llm={"default": {"base_url": fake.base_url, "model": "fake", "structured_output": "json_schema",
                             "timeout_s": args.model_timeout_s, "extra_body": {}},
                 "max_attempts": 4, "invalid_json_attempts": 2},
            service={"concurrency": 8, "backoff_initial_s": 0.2, "backoff_max_s": 2.0,
                     "trajectory_deadline_s": args.deadline_s, "sweep_interval_s": 3.0},
            state_dir=work / "state",
        )
        stack.load_demo_domains(self.dsn)
        stack.ensure_topics_ready(self.settings, timeout_s=60)
        self.lock = threading.Lock()  # chaos and whole-stack stops must not interleave
        self.faults: Counter[str] = Counter()
        self.self_exits = 0

    def start_services(self) -> None:
        for name in stack.SERVICES:
            stack.start_service(self.settings, name, check_s=0)

    def stop_services(self, sig=signal.SIGTERM) -> None:
        for name in stack.SERVICES:
            stack.stop_service(self.settings, name, sig=sig, grace_s=20)

    def supervise(self) -> None:
        """Restart services that exited on their own (a fatal broker error makes one exit, as a pod would)."""
        for name in stack.SERVICES:
            if not stack.is_running(stack.pid_path(self.settings, name)):
                self.self_exits += 1
                stack.start_service(self.settings, name, check_s=0)

    def kill_random_service(self, rng: random.Random, pause_s: float) -> str:
        name = rng.choice(stack.SERVICES)
        stack.stop_service(self.settings, name, sig=signal.SIGKILL)
        self.faults["kill -9 service"] += 1
        time.sleep(pause_s)
        stack.start_service(self.settings, name, check_s=0)
        return name

    def restart_broker(self) -> None:
        log("fault: kill -9 the Kafka broker, restart it on the same data")
        self.kafka.restart(signal.SIGKILL, pause_s=2.0)
        self.faults["broker restart"] += 1
        log(f"broker back in {self.kafka.start_s:.1f} s")

    def cut_postgres_connections(self) -> int:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            n = len(conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
                                 " AND pid <> pg_backend_pid() AND backend_type = 'client backend'").fetchall())
        self.faults["postgres connections cut"] += 1
        self.faults["postgres backends terminated"] += n
        log(f"fault: terminated {n} PostgreSQL backends")
        return n

    def stop_whole_stack(self) -> None:
        """Services, broker and PostgreSQL all stop, as at the end of a working day; then everything starts again."""
        log("fault: stopping the whole stack (services, broker, PostgreSQL)")
        self.stop_services()
        self.kafka.stop(signal.SIGTERM)
        local_postgres.stop(self.pg_dir)
        time.sleep(2)
        local_postgres.start(self.pg_dir, self.pg_port, database="postgres")
        self.kafka.start()
        self.start_services()
        self.faults["whole stack stopped and resumed"] += 1
        log("whole stack started again")

    def shutdown(self) -> None:
        try:
            self.stop_services()
        finally:
            self.kafka.stop()
            local_postgres.stop(self.pg_dir)


class Chaos(threading.Thread):
    def __init__(self, s: Stack, every_s: float, pause_s: float, seed: int):
        super().__init__(daemon=True)
        self.s, self.every_s, self.pause_s, self.rng = s, every_s, pause_s, random.Random(seed)
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(self.rng.uniform(0.6, 1.4) * self.every_s):
            with self.s.lock:
                try:
                    self.s.supervise()
                    self.s.kill_random_service(self.rng, self.pause_s)
                except Exception as e:  # noqa: BLE001 - keep injecting; a start failure shows in the figures
                    log(f"chaos: {e}")


def bad_inputs(settings: Settings, tag: str) -> list[tuple[str, str, bytes]]:
    """(logical topic, key, value) of hostile records produced straight onto the topics; each needs a dead letter."""
    from shared.contracts import DatabaseRef, SeedEvent, SeedTools, Tool

    items = []
    for topic in Topics.ALL:
        if topic == Topics.DEAD_LETTER:
            continue
        for i, junk in enumerate([b"\xff\xfe\x00garbage", b"\x0a\xff\xff\xff\xff\x0f", b"{\"not\": \"protobuf\"}"]):
            items.append((topic, f"{tag}-junk-{topic}-{i}", junk))
    seeds = [
        SeedEvent(seed_id=f"{tag}-unknown-db", domain="atlantis", database=DatabaseRef(domain_database="atlantis")),
        SeedEvent(seed_id=f"{tag}-no-source", domain="telecom"),
        SeedEvent(seed_id=f"{tag}-bad-tool-schema", domain="x", seed_tools=SeedTools(tools=[
            Tool(name="t", description="d", parameters_json="{\"type\": \"objekt\"}")])),
        SeedEvent(seed_id=f"{tag}-tool-params-not-json", domain="x", seed_tools=SeedTools(tools=[
            Tool(name="t", description="d", parameters_json="{not json")])),
        SeedEvent(seed_id=f"{tag}-injected-db-name", domain="x",
                  database=DatabaseRef(domain_database="telecom'; DROP SCHEMA domain_telecom CASCADE; --")),
    ]
    for seed in seeds:
        seed.settings.num_trajectories = 1
        items.append((Topics.SEEDS, seed.seed_id, seed.SerializeToString()))
    return items


def read_terminal(settings: Settings, isolation: str = "read_committed") -> list[tuple[str, object]]:
    topics = {settings.topic(t): t for t in TERMINAL}
    consumer = KafkaConsumer(*topics, bootstrap_servers=settings.kafka.bootstrap_servers, auto_offset_reset="earliest",
                             enable_auto_commit=False, isolation_level=isolation, consumer_timeout_ms=3000)
    records = [(topics[r.topic], r) for r in consumer]
    consumer.close()
    return records


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--trajectories", type=int, default=200, help="trajectories in the main run (split over 5 domains)")
    p.add_argument("--stuck", type=int, default=3, help="trajectories of the seed whose conversations hang")
    p.add_argument("--kill-every-s", type=float, default=5.0)
    p.add_argument("--restart-pause-s", type=float, default=2.0)
    p.add_argument("--deadline-s", type=float, default=900.0, help="deadline of a normal trajectory")
    p.add_argument("--stuck-deadline-s", type=float, default=30.0)
    p.add_argument("--model-timeout-s", type=float, default=2.0)
    p.add_argument("--timeout-s", type=float, default=None,
                   help="give up on the whole run after this (default: 900 s and 2.5 s per trajectory)")
    p.add_argument("--seed", type=int, default=20251125)
    args = p.parse_args(argv)
    if args.timeout_s is None:  # 200 trajectories take about 6 minutes here; the bound only ends a hung run
        args.timeout_s = 900.0 + 2.5 * args.trajectories
    started = time.monotonic()

    t0 = time.monotonic()
    fetched = fetch()
    log(f"Kafka jars: {'fetched in %.1f s' % fetched if fetched else 'cached'} ({time.monotonic() - t0:.1f} s)")
    work = Path(tempfile.mkdtemp(prefix="tf-faults-"))
    fake = FakeLLM().__enter__()
    fake.record_requests = False
    fake.delay_s = 0.02
    fake.faults = FaultPlan(http_429=0.04, http_500=0.03, timeout=0.01, empty_completion=0.02, malformed_json=0.02,
                            context_overflow=0.005, timeout_s=args.model_timeout_s + 2, stall_marker=STALL_DOMAIN,
                            stall_s=args.model_timeout_s + 5, seed=args.seed)
    s = Stack(work, fake, args)
    settings = s.settings
    failures: list[str] = []
    try:
        s.start_services()
        run_id = f"faults-{args.seed}"
        per_domain = max(args.trajectories // len(NORMAL_DOMAINS), 1)
        cfg = runner.RunConfig(domains=list(NORMAL_DOMAINS), num_trajectories=per_domain, tasks_per_trajectory=1,
                               write_task_share=0.3, max_user_turns=4, tools_per_trajectory=6, random_seed=args.seed,
                               timeout_s=args.timeout_s, output_dir=str(work / "out"))
        stuck_cfg = runner.RunConfig(domains=[STALL_DOMAIN], num_trajectories=args.stuck, tasks_per_trajectory=1,
                                     trajectory_deadline_s=args.stuck_deadline_s, random_seed=args.seed)
        main_seeds = runner.build_seed_events(cfg, run_id, settings)
        stuck_seeds = runner.build_seed_events(stuck_cfg, f"{run_id}-stuck", settings)
        expected = {x.seed_id: x.settings.num_trajectories for x in main_seeds + stuck_seeds}
        seeded = sum(expected.values())
        runner.produce_seeds(settings, main_seeds + stuck_seeds)
        bad = bad_inputs(settings, f"{run_id}-bad")
        producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers, acks="all")
        for topic, key, value in bad:
            producer.send(settings.topic(topic), key=key.encode(), value=value)
        producer.flush()
        producer.close()
        log(f"seeded {seeded} trajectories ({len(main_seeds)} + {len(stuck_seeds)} seeds), {len(bad)} bad inputs")

        chaos = Chaos(s, args.kill_every_s, args.restart_pause_s, args.seed)
        chaos.start()

        # Phase 1: watch progress; the broker restart, the PostgreSQL cuts and the whole-stack stop come at set shares.
        tracker = runner.RunTracker(expected)
        topics = {settings.topic(t): t for t in TERMINAL}
        watcher = KafkaConsumer(*topics, bootstrap_servers=settings.kafka.bootstrap_servers,
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                isolation_level="read_committed")
        schedule = [(0.15, "pg"), (0.30, "broker"), (0.45, "pg"), (0.60, "stop")]
        resolved_before_stop: set[str] = set()
        calls_before_stop: Counter[str] = Counter()
        while schedule and time.monotonic() - started < args.timeout_s:
            for records in watcher.poll(timeout_ms=500).values():
                for r in records:
                    tracker.on_record(topics[r.topic], r.value)
            c = tracker.counts()
            share = (c["seeded"] - c["missing"]) / seeded
            if share < schedule[0][0]:
                continue
            _, what = schedule.pop(0)
            log(f"{share:.0%} resolved ({c['accepted']} accepted, {c['rejected']} rejected, "
                f"{c['dead-lettered']} dead-lettered)")
            with s.lock:
                if what == "pg":
                    s.cut_postgres_connections()
                elif what == "broker":
                    watcher.close()
                    s.restart_broker()
                    watcher = KafkaConsumer(*topics, bootstrap_servers=settings.kafka.bootstrap_servers,
                                            auto_offset_reset="earliest", enable_auto_commit=False,
                                            isolation_level="read_committed")
                    tracker = runner.RunTracker(expected)  # read again from the start: the broker kept everything
                else:
                    watcher.close()
                    resolved_before_stop = set(tracker.resolved)
                    calls_before_stop = Counter(fake.by_entity)
                    s.stop_whole_stack()
        watcher.close()

        # Phase 2: resume the run as a user would (`turnforge run --resume RUN_ID`): same seeds, nothing redone.
        log("resuming the run")
        result = runner.run(settings, cfg, run_id=run_id, resume=True)
        chaos.halt.set()
        chaos.join()
        with s.lock:
            s.supervise()
        # The stuck seed is not part of the resumed run's config; wait for its trajectories too.
        deadline = time.monotonic() + args.stuck_deadline_s + 60
        final = runner.RunTracker(expected)
        while time.monotonic() < deadline:
            final = runner.RunTracker(expected)
            records = read_terminal(settings)
            for topic, r in records:
                final.on_record(topic, r.value)
            if final.done:
                break
            time.sleep(2)

        # -- figures -------------------------------------------------------------------------------------------
        c = final.counts()
        verdict_ids: dict[str, set[str]] = {}
        copies = Counter()
        for topic, r in records:
            if topic == Topics.DEAD_LETTER:
                continue
            tid = (r.key or b"").decode()
            verdict_ids.setdefault(tid, set()).add(topic)
            copies[tid] += 1
        # A dead letter about cleaning up after a verdict (its source is a verdict topic) is not a second outcome.
        verdict_topics = {settings.topic(Topics.ACCEPTED), settings.topic(Topics.REJECTED)}
        dead_ids = {d.trajectory_id for d in final.dead_letters
                    if d.trajectory_id and d.source_topic not in verdict_topics}
        reasons = Counter(d.reason.split(":")[0] if "deadline" not in d.reason else "deadline passed"
                          for d in final.dead_letters)
        two_outcomes = [t for t, kinds in verdict_ids.items() if len(kinds) > 1 or t in dead_ids]
        dataset_ids = [json.loads(line)["id"] for line in result.dataset_path.read_text().splitlines()]
        duplicated = len(two_outcomes) + (len(dataset_ids) - len(set(dataset_ids)))
        redelivered = sum(n - 1 for n in copies.values() if n > 1)
        lost = c["missing"]

        letters_by_key = {}
        for topic, r in records:
            if topic == Topics.DEAD_LETTER:
                from shared.contracts import DeadLetter
                d = DeadLetter.FromString(r.value)
                letters_by_key.setdefault(d.key.decode(errors="replace"), d)
        bad_without_letter = [k for _, k, _ in bad if k not in letters_by_key]

        stuck_ids = [f"{x.seed_id}-t{i:04d}" for x in stuck_seeds for i in range(x.settings.num_trajectories)]
        stuck_resolutions = [final.resolved.get(t) for t in stuck_ids]
        stuck_not_by_deadline = [t for t, r in zip(stuck_ids, stuck_resolutions)
                                 if r is None or r.dead_letter is None or "deadline" not in r.dead_letter.reason]

        transient_fps = [fp for fp, hits in fake.faulted.items() if any(k in TRANSIENT_FAULTS for k, _ in hits)]
        transient_retried = sum(1 for fp in transient_fps
                                if fake.by_fingerprint[fp] > max(n for k, n in fake.faulted[fp] if k in TRANSIENT_FAULTS))
        overflow_fps = [fp for fp, hits in fake.faulted.items() if any(k in PERMANENT_FAULTS for k, _ in hits)]
        # A permanent error must not be retried: the same process never sends it again. A process that died before
        # its dead letter committed leaves the message to its successor, which asks once more (recovery, counted).
        overflow_resent = sum(1 for (fp, _), n in fake.by_sender.items() if fp in overflow_fps and n > 1)
        senders_of = Counter(fp for fp, _ in fake.by_sender if fp in overflow_fps)
        overflow_recovered = sum(1 for n in senders_of.values() if n > 1)
        overflow_letters = sum(1 for d in final.dead_letters if "context overflow" in d.reason)
        bad_answer_fps = [fp for fp, hits in fake.faulted.items() if any(k in BAD_ANSWER_FAULTS for k, _ in hits)]
        reasked = sum(1 for fp in bad_answer_fps if fake.by_fingerprint[fp] > 1)

        repaid = {t: fake.by_entity[t] - calls_before_stop[t] for t in resolved_before_stop
                  if fake.by_entity[t] - calls_before_stop[t] > 0}
        time.sleep(0)
        leftover_deadline = time.monotonic() + 60
        manager = SandboxManager(settings.postgres.dsn)
        while manager.live_sandboxes() and time.monotonic() < leftover_deadline:
            time.sleep(2)
        left = manager.live_sandboxes()

        injected = Counter(fake.injected)
        injected.update({"stalled model calls": fake.stalled})
        injected.update(s.faults)
        wall = time.monotonic() - started
        print()
        print("== TurnForge fault suite (real Apache Kafka %s, %d services) ==" % (s.kafka.__class__.__module__ and
                                                                                  __import__("real_kafka").KAFKA_VERSION,
                                                                                  len(stack.SERVICES)))
        print(f"seeded={c['seeded']} accepted={c['accepted']} rejected={c['rejected']} "
              f"dead-lettered={c['dead-lettered']} lost={lost} duplicated={duplicated}")
        print(f"redelivered copies on terminal topics (absorbed by trajectory id): {redelivered}")
        print("dead-letter reasons: " + ", ".join(f"{k}={v}" for k, v in reasons.most_common()))
        print("faults injected: " + ", ".join(f"{k}={v}" for k, v in sorted(injected.items())))
        print(f"service self-exits restarted by the supervisor: {s.self_exits}")
        print(f"bad inputs tried={len(bad)} dead-lettered={len(bad) - len(bad_without_letter)}")
        print(f"transient model errors: {len(transient_fps)} requests, retried {transient_retried}")
        print(f"bad answers (empty/malformed): {len(bad_answer_fps)} requests, asked again {reasked}")
        print(f"context overflows: {len(overflow_fps)} requests, sent again by the same process {overflow_resent}, "
              f"by a restarted one {overflow_recovered}, dead letters citing it {overflow_letters}")
        print(f"stuck trajectories: {len(stuck_ids)}, dead-lettered for their deadline "
              f"{len(stuck_ids) - len(stuck_not_by_deadline)}")
        print(f"resume: {len(resolved_before_stop)} trajectories resolved before the stop, "
              f"model calls for them after it: {sum(repaid.values())}")
        print(f"sandboxes left behind: {len(left)}")
        print(f"model requests: {sum(fake.by_fingerprint.values())}; wall time {wall:.0f} s")

        checks = {
            "lost == 0": lost == 0,
            "duplicated == 0": duplicated == 0,
            "every fault kind injected": all(injected[k] > 0 for k in TRANSIENT_FAULTS + BAD_ANSWER_FAULTS
                                             + PERMANENT_FAULTS) and all(
                s.faults[k] > 0 for k in ("kill -9 service", "broker restart", "postgres connections cut",
                                          "whole stack stopped and resumed")),
            "every bad input dead-lettered": not bad_without_letter,
            "transient errors retried": transient_retried == len(transient_fps),
            "context overflows not retried": overflow_resent == 0,
            "stuck trajectories dead-lettered for their deadline": not stuck_not_by_deadline,
            "resume repaid no finished trajectory": not repaid,
            "no sandbox left behind": not left,
            "resumed run complete": result.complete,
        }
        for name, ok in checks.items():
            print(f"  [{'ok' if ok else 'FAIL'}] {name}")
            if not ok:
                failures.append(name)
        if bad_without_letter:
            print("  bad inputs without a dead letter:", bad_without_letter[:10])
        if stuck_not_by_deadline:
            print("  stuck ones:", [(t, r and r.outcome, r and r.dead_letter and r.dead_letter.reason)
                                    for t, r in zip(stuck_ids, stuck_resolutions)])
        if repaid:
            print("  repaid:", dict(list(repaid.items())[:10]))
        if two_outcomes:
            print("  two outcomes:", two_outcomes[:10])
    finally:
        try:
            s.shutdown()
        finally:
            fake.__exit__()
    print("fault suite:", "PASSED" if not failures else f"FAILED ({', '.join(failures)})")
    return 0 if not failures else 1


if __name__ == "__main__":
    # A CI timeout or Ctrl-C sends SIGTERM/SIGINT: unwind through `finally`, so services, broker and database stop.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
