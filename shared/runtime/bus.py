"""The Kafka bus every service runs on: a thin, concurrent, at-least-once consume-handle-produce loop.

Guarantees, per message:
- at-least-once: an offset is committed only after the handler's outputs (or its dead letter) are acknowledged
  by the broker, and only up to the lowest offset still in flight in that partition;
- idempotent handling: a ledger in PostgreSQL remembers (service, topic, entity, step) once outputs are produced,
  so a redelivered message is skipped instead of producing its outputs twice;
- bounded retries with backoff for TransientError; anything else goes to the dead-letter topic with its reason;
- concurrency: up to `concurrency` messages in flight per process (LLM calls are slow and I/O bound), but never two
  with the same key at once, so one trajectory's events stay ordered;
- trace context rides in the message headers, so a trajectory is one trace across services;
- with `kafka.transactions` on (real Kafka), a handler's outputs and the consumed offsets are committed in one Kafka
  transaction: consumers read committed data only, so a crash mid-produce leaves nothing half-visible and a finished
  message is not handed out again;
- deadlines: a message of a trajectory past its deadline is dead-lettered, and retries stop at the deadline.
"""
from __future__ import annotations

import logging
import os
import random
import signal
import socket
import threading
import time
import traceback
from collections import defaultdict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar, Iterable, Iterator

import psycopg
from psycopg_pool import ConnectionPool
from google.protobuf.message import DecodeError, Message
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError
from kafka.structs import OffsetAndMetadata, TopicPartition
from opentelemetry import trace

from shared.runtime import lifeline, llm, tracing
from shared.runtime.config import Settings, get_settings
from shared.contracts import flow
from shared.contracts import DeadLetter, Topics, TrajectoryState
from shared.runtime.errors import PermanentError, TransientError
from shared.runtime.toolsets import ToolsetStore

log = logging.getLogger("turnforge.bus")


@dataclass
class Outgoing:
    topic: str  # logical name, e.g. Topics.TURNS_USER
    key: str
    message: Message
    # Trace context to send instead of the current span's (a new trajectory starts its own trace).
    trace_context: object | None = None


@dataclass
class MessageInfo:
    """What the bus needs to know about a decoded message: its identity for idempotency and for dead letters."""

    entity: str
    step: int = 0
    seed_id: str = ""
    trajectory_id: str = ""
    deadline: float = 0.0


@dataclass
class Route:
    """One input of a running stage: `topic`'s messages, decoded as `message_type`, go to `handler`."""

    topic: str
    message_type: type[Message]
    handler: Callable[[Message], list[Outgoing]]
    describe: Callable[[Message], MessageInfo]


# A reason is cut here so one dead letter stays a small message, whatever the error text.
MAX_REASON_CHARS = 4000
# Unix time (seconds, as text) at which a service handed the record to its producer: the start of a hop.
PRODUCED_AT_HEADER = "tf-produced-at"


def record_headers(out: Outgoing) -> list[tuple[str, bytes]]:
    """Trace context and the produce time; the record's own timestamp is whole milliseconds and may be the broker's."""
    return tracing.headers_from_context(out.trace_context) + [(PRODUCED_AT_HEADER, repr(time.time()).encode())]


def produced_at(headers) -> float | None:
    for name, value in headers or ():
        if name == PRODUCED_AT_HEADER and value:
            try:
                return float(value)
            except ValueError:
                return None
    return None


class HopLog:
    """Per consumed record, the time from its producer's send to this handler's start, appended to a file the
    benchmark reads (one line per record, written at once so a killed service leaves complete lines)."""

    def __init__(self, path: str):
        self._file = None
        self._lock = threading.Lock()
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "a", buffering=1)

    def record(self, topic: str, headers) -> None:
        sent = produced_at(headers) if self._file else None
        if sent is None:
            return
        now = time.time()
        with self._lock:
            self._file.write(f"{now:.6f} {topic} {(now - sent) * 1000:.3f}\n")

    def close(self) -> None:
        if self._file:
            self._file.close()


def dead_letter(*, service: str, source_topic: str, key: bytes, error_type: str, reason: str, seed_id: str = "",
                trajectory_id: str = "", attempts: int = 0, partition: int = 0, offset: int = 0,
                payload: bytes = b"") -> Outgoing:
    """The dead letter for work that failed for good, addressed to the dead-letter topic under the work's key."""
    letter = DeadLetter(service=service, source_topic=source_topic, partition=partition, offset=offset, key=key,
                        payload=payload, error_type=error_type, reason=reason[:MAX_REASON_CHARS], seed_id=seed_id,
                        trajectory_id=trajectory_id, attempts=attempts, failed_at=time.time())
    return Outgoing(Topics.DEAD_LETTER, key.decode(errors="replace"), letter)


class ProcessedLedger:
    """Which (service, topic, entity, step) a service has already turned into outputs.

    Every message is checked and marked, by whichever of the service's handler threads has it. A connection per
    thread held one PostgreSQL backend per handler: at 256 handlers in four services that alone passed
    max_connections ("too many clients"; 42 of the bench's 1,024 trajectories ended accepted). The checks take a
    millisecond, so a few pooled connections serve all handlers."""

    def __init__(self, dsn: str, size: int = 4):
        self._pool = ConnectionPool(dsn, min_size=1, max_size=size, open=True, timeout=30, name="tf-ledger",
                                    kwargs={"autocommit": True, "connect_timeout": 10})
        with self._pool.connection() as conn, conn.transaction():
            # Services start together: serialise the CREATE, IF NOT EXISTS alone races.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('tf_processed'))")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS tf_processed (service text, topic text, entity text, step bigint,"
                " processed_at timestamptz DEFAULT now(), PRIMARY KEY (service, topic, entity, step))"
            )

    def seen(self, service: str, topic: str, info: MessageInfo) -> bool:
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT 1 FROM tf_processed WHERE service=%s AND topic=%s AND entity=%s AND step=%s",
                (service, topic, info.entity, info.step),
            ).fetchone()
        return row is not None

    def mark(self, service: str, topic: str, info: MessageInfo) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                "INSERT INTO tf_processed (service, topic, entity, step) VALUES (%s,%s,%s,%s) ON CONFLICT DO NOTHING",
                (service, topic, info.entity, info.step),
            )

    def close(self) -> None:
        self._pool.close()


class OffsetTracker:
    """Per partition: offsets handed out and finished; the commit point is the lowest unfinished offset."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[TopicPartition, set[int]] = defaultdict(set)
        self._highest_done: dict[TopicPartition, int] = {}

    def started(self, tp: TopicPartition, offset: int) -> None:
        with self._lock:
            self._pending[tp].add(offset)

    def finished(self, tp: TopicPartition, offset: int) -> None:
        with self._lock:
            pending = self._pending.get(tp)
            if pending is None or offset not in pending:
                # Handed out before its partition was revoked (and forgotten): whoever owns the partition now
                # reads it again from the committed offset, so this finish must not move the commit point.
                return
            pending.discard(offset)
            self._highest_done[tp] = max(self._highest_done.get(tp, -1), offset)

    def in_flight(self) -> int:
        with self._lock:
            return sum(len(s) for s in self._pending.values())

    def commit_points(self) -> dict[TopicPartition, int]:
        """Next offset to consume per partition, for every partition with progress to commit."""
        with self._lock:
            points = {}
            for tp, done in self._highest_done.items():
                pending = self._pending.get(tp)
                points[tp] = min(pending) if pending else done + 1
            return points

    def forget(self, partitions) -> None:
        with self._lock:
            for tp in partitions:
                self._pending.pop(tp, None)
                self._highest_done.pop(tp, None)


class FatalBusError(Exception):
    """The broker would not take our outputs: stop without committing, so nothing is lost."""


def read_to_end(settings: Settings, topics: Iterable[str], *, client_id: str, timeout_s: float = 10.0
                ) -> Iterator[tuple[str, ConsumerRecord]]:
    """(logical topic, record) of every record on the topics from their start up to the end they had when reading
    began; no consumer group, nothing committed. TimeoutError if that takes longer than timeout_s."""
    names = {settings.topic(t): t for t in topics}
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers, client_id=client_id,
                             enable_auto_commit=False, request_timeout_ms=int(timeout_s * 1000) + 1000,
                             fetch_max_wait_ms=settings.kafka.fetch_max_wait_ms,
                             isolation_level="read_committed" if settings.kafka.transactions else "read_uncommitted")
    try:
        partitions = [TopicPartition(name, p) for name in names for p in sorted(consumer.partitions_for_topic(name)
                                                                                 or ())]
        if not partitions:
            return
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < end for tp, end in ends.items()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {', '.join(names)} took over {timeout_s:.0f} s")
            for tp, records in consumer.poll(timeout_ms=500).items():
                for record in records:
                    yield names[tp.topic], record
    finally:
        consumer.close()


def ensure_topics(settings: Settings, names=Topics.ALL) -> None:
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers, client_id="turnforge-admin")
    try:
        existing = set(admin.list_topics())
        kafka = settings.kafka
        wanted = [NewTopic(settings.topic(n), num_partitions=kafka.topic_partitions.get(n, kafka.partitions),
                           replication_factor=kafka.replication_factor)
                  for n in names if settings.topic(n) not in existing]
        if wanted:
            try:
                admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()


def make_producer(settings: Settings, transactional_id: str | None = None) -> KafkaProducer:
    extra = {}
    if transactional_id:
        extra = {"transactional_id": transactional_id,
                 "transaction_timeout_ms": settings.kafka.transaction_timeout_ms}
    return KafkaProducer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        acks="all",
        linger_ms=settings.kafka.linger_ms,
        retries=5,
        max_request_size=8 * 1024 * 1024,
        client_id="turnforge-producer",
        **extra,
    )


def transactional_id(settings: Settings, service: str) -> str:
    """Stable across restarts of the same instance, so a restarted service fences its killed predecessor and
    aborts its open transaction at once (instead of consumers waiting out the transaction timeout)."""
    instance = os.environ.get("TURNFORGE_INSTANCE") or socket.gethostname()
    return f"{settings.kafka.topic_prefix}{service}.{instance}"


@dataclass
class Periodic:
    """Work a stage does on a timer besides its inputs (e.g. dead-lettering trajectories past their deadline)."""

    name: str
    interval_s: float
    run: Callable[[], list[Outgoing]]
    after: Callable[[list[Outgoing]], None] | None = None  # called once the outputs are acknowledged


def consumes(topic: str, message_type: type[Message], describe: Callable[[Message], MessageInfo]):
    """Declare a Stage method the handler of `topic`'s messages; stacked, one handler takes several topics."""

    def declare(handler):
        handler.consumed_topics = ((topic, message_type, describe),) + getattr(handler, "consumed_topics", ())
        return handler

    return declare


class Stage:
    """One service's part of the pipeline: the topics it consumes (its `@consumes` handlers), the topics it may
    produce, the clients it holds (opened from the settings, closed by `close`) and its timers."""

    name: ClassVar[str]
    # Topics it may produce: the flow table's for its name, unless a stage outside the table (a test's) says.
    produces: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "produces" not in vars(cls) and cls.__dict__.get("name"):
            cls.produces = flow.produced_by(cls.name)

    def __init__(self, settings: Settings):
        self.settings = settings

    @classmethod
    def consumed(cls) -> list[tuple[str, type[Message], Callable[[Message], MessageInfo], str]]:
        """(topic, message type, describe, handler's name) in the order the handlers are declared."""
        declared = {}
        for klass in reversed(cls.__mro__):
            declared.update(vars(klass))
        return [(topic, message_type, describe, attr) for attr, member in declared.items()
                for topic, message_type, describe in getattr(member, "consumed_topics", ())]

    def inputs(self) -> list[Route]:
        return [Route(topic, message_type, getattr(self, attr), describe)
                for topic, message_type, describe, attr in self.consumed()]

    def timers(self) -> list[Periodic]:
        return []

    def close(self) -> None:
        """Release what the stage opened (database connections, model clients)."""


class Service:
    """Runs one stage (its handlers and timers) on the bus until stopped."""

    def __init__(self, stage: Stage):
        name, settings = stage.name, stage.settings
        self.stage = stage
        self.name = name
        self.periodic = stage.timers()
        self.settings = settings
        self.routes = {settings.topic(r.topic): r for r in stage.inputs()}
        self.concurrency = settings.service.concurrency
        self._stop = threading.Event()
        self._fatal: Exception | None = None
        self._tracker = OffsetTracker()
        self._key_lock = threading.Lock()
        self._key_queues: dict[bytes, deque] = {}
        self.ledger = ProcessedLedger(settings.postgres.dsn, size=min(self.concurrency, 8))
        self.toolsets = ToolsetStore(settings.postgres.dsn)
        self.transactional = settings.kafka.transactions
        self.group_id = settings.consumer_group(name)
        self.producer = make_producer(settings, transactional_id(settings, name) if self.transactional else None)
        if self.transactional:
            self.producer.init_transactions()
        self._txn_lock = threading.Lock()
        self._group_metadata = None  # refreshed by the polling thread, read inside transactions
        self._assigned: set[TopicPartition] = set()
        self._last_committed: dict[TopicPartition, int] = {}
        self.dead_letters = 0
        self.hops = HopLog(settings.service.hop_log)

    # -- lifecycle -------------------------------------------------------------------------------------------
    def stop(self, *_args) -> None:
        self._stop.set()

    def _heartbeat(self) -> None:
        """Touch service.heartbeat_file every few seconds while the consume loop turns (Kubernetes' liveness probe)."""
        path, now = self.settings.service.heartbeat_file, time.monotonic()
        if path and now - getattr(self, "_last_beat", float("-inf")) >= 5:
            self._last_beat = now
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).touch()

    def _fail(self, error: Exception) -> None:
        """Stop the service for `error`; the first failure is the one reported."""
        if self._fatal is None:
            self._fatal = error

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

    def run(self) -> None:
        ensure_topics(self.settings)
        consumer = KafkaConsumer(
            bootstrap_servers=self.settings.kafka.bootstrap_servers,
            group_id=self.group_id,
            isolation_level="read_committed" if self.transactional else "read_uncommitted",
            client_id=f"turnforge-{self.name}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=self.settings.kafka.session_timeout_ms,
            heartbeat_interval_ms=self.settings.kafka.heartbeat_interval_ms,
            max_poll_interval_ms=self.settings.kafka.max_poll_interval_ms,
            max_poll_records=self.concurrency * 2,
            fetch_max_wait_ms=self.settings.kafka.fetch_max_wait_ms,
        )
        consumer.subscribe(list(self.routes), listener=_RevocationListener(self, consumer))
        pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix=self.name)
        self._pool = pool
        log.info("%s consuming %s with %d concurrent handlers%s", self.name, list(self.routes), self.concurrency,
                 ", transactional" if self.transactional else "")
        timers = [threading.Thread(target=self._run_periodic, args=(p,), daemon=True, name=p.name)
                  for p in self.periodic]
        for t in timers:
            t.start()
        try:
            while not self._stop.is_set() and self._fatal is None:
                saturated = self._tracker.in_flight() >= self.concurrency * 2
                assignment = consumer.assignment()
                self._assigned = set(assignment)
                if self.transactional and assignment:
                    self._group_metadata = consumer.group_metadata()
                if saturated and assignment:
                    consumer.pause(*assignment)
                elif assignment:
                    consumer.resume(*assignment)
                batches = consumer.poll(timeout_ms=200)
                for tp, records in batches.items():
                    for record in records:
                        self._tracker.started(tp, record.offset)
                        self._submit(record)
                self._commit(consumer)
                self._heartbeat()
        finally:
            self._drain(timeout_s=30)
            if self._fatal is None:
                self._commit(consumer)
            pool.shutdown(wait=False, cancel_futures=True)
            consumer.close(autocommit=False)
            self.producer.flush(10)
            self.producer.close(10)
            self.hops.close()
            self.toolsets.close()
            self.ledger.close()
            tracing.shutdown()
        if self._fatal is not None:
            raise self._fatal

    def assignment(self) -> frozenset[TopicPartition]:
        """The partitions this member of the consumer group owns, as of its last poll."""
        return frozenset(self._assigned)

    def forget(self, partitions) -> None:
        """Partitions that moved to another member: their next owner commits them from now on."""
        self._tracker.forget(partitions)
        for tp in partitions:
            self._last_committed.pop(tp, None)

    def _drain(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while self._tracker.in_flight() and time.monotonic() < deadline and self._fatal is None:
            time.sleep(0.05)

    def _run_periodic(self, task: Periodic) -> None:
        while not self._stop.wait(task.interval_s) and self._fatal is None:
            try:
                outputs = task.run()
                self._check_produces(outputs)
                if outputs:
                    self._produce(outputs)
                    if task.after:
                        task.after(outputs)
            except FatalBusError as e:
                self._fail(e)
            except Exception as e:  # noqa: BLE001 - a timer must survive a database blip; it runs again soon
                log.warning("%s: %s failed: %s", self.name, task.name, e)

    def _offsets(self, assigned) -> dict[TopicPartition, OffsetAndMetadata]:
        points = self._tracker.commit_points()
        return {tp: OffsetAndMetadata(off, "", -1) for tp, off in points.items() if tp in assigned}

    def _commit(self, consumer: KafkaConsumer) -> None:
        if self.transactional:  # offsets travel in transactions; commit here only what no output carried along
            offsets = {tp: o for tp, o in self._offsets(consumer.assignment()).items()
                       if self._last_committed.get(tp) != o.offset}
            if offsets and self._group_metadata is not None:
                try:
                    self._produce([])
                except FatalBusError as e:
                    self._fail(e)
            return
        # A synchronous commit is a broker round trip on the polling thread: only for partitions that moved on.
        offsets = {tp: o for tp, o in self._offsets(consumer.assignment()).items()
                   if self._last_committed.get(tp) != o.offset}
        if offsets:
            try:
                consumer.commit(offsets)
                self._last_committed.update({tp: o.offset for tp, o in offsets.items()})
            except KafkaError as e:  # a rebalance in progress: the next commit catches up
                log.warning("%s commit failed: %s", self.name, e)

    # -- per-key ordering ------------------------------------------------------------------------------------
    def _submit(self, record) -> None:
        key = record.key or f"{record.topic}/{record.partition}/{record.offset}".encode()
        with self._key_lock:
            queue = self._key_queues.get(key)
            if queue is not None:
                queue.append(record)
                return
            self._key_queues[key] = deque()
        self._pool.submit(self._run_key, key, record)

    def _run_key(self, key: bytes, record) -> None:
        while record is not None:
            self._process(record)
            with self._key_lock:
                queue = self._key_queues[key]
                if queue:
                    record = queue.popleft()
                else:
                    del self._key_queues[key]
                    record = None

    # -- one message -----------------------------------------------------------------------------------------
    def _process(self, record) -> None:
        self.hops.record(record.topic, record.headers)
        tp = TopicPartition(record.topic, record.partition)
        route = self.routes[record.topic]
        parent = tracing.context_from_headers(record.headers)
        info = MessageInfo(entity=f"{record.topic}/{record.partition}/{record.offset}")
        attempts = 0
        with tracing.tracer().start_as_current_span(
            f"{self.name} {route.topic}", context=parent, kind=trace.SpanKind.CONSUMER,
            attributes={"messaging.destination": record.topic, "messaging.kafka.offset": record.offset},
        ) as span:
            try:
                message = route.message_type.FromString(record.value)
                info = route.describe(message)
                span.set_attribute("turnforge.entity", info.entity)
                span.set_attribute("turnforge.step", info.step)
                if info.trajectory_id:
                    span.set_attribute("turnforge.trajectory_id", info.trajectory_id)
                llm.current_entity.set(info.trajectory_id or info.seed_id or info.entity)
                if self.ledger_seen(record.topic, info):
                    span.set_attribute("turnforge.duplicate", True)
                    log.info("%s skips duplicate %s step %d", self.name, info.entity, info.step)
                else:
                    if info.deadline and time.time() > info.deadline:
                        raise PermanentError(f"deadline passed {time.time() - info.deadline:.0f}s ago: trajectory stuck")
                    outputs, attempts = self._handle_with_retries(route, message, info)
                    self._check_produces(outputs)
                    self._produce(outputs, done=(tp, record.offset))
                    self._ledger_mark(record.topic, info)
            except FatalBusError as e:
                self._fail(e)
                return
            except Exception as e:  # noqa: BLE001 - everything else is this message's fault: dead-letter it
                span.record_exception(e)
                span.set_status(trace.Status(trace.StatusCode.ERROR, str(e)))
                try:
                    self._dead_letter(record, info, e, attempts, done=(tp, record.offset))
                except FatalBusError as fatal:
                    self._fail(fatal)
                    return
                if info.entity != f"{record.topic}/{record.partition}/{record.offset}":
                    # Dead-lettered is handled: a redelivery must not ask the model again.
                    self._ledger_mark(record.topic, info)
        self._tracker.finished(tp, record.offset)

    def ledger_seen(self, topic: str, info: MessageInfo) -> bool:
        try:
            return self.ledger.seen(self.name, topic, info)
        except (TransientError, psycopg.OperationalError, psycopg.InterfaceError):
            return False  # handling twice is safe; the next service's ledger catches the duplicate

    def _check_produces(self, outputs: list[Outgoing]) -> None:
        undeclared = sorted({o.topic for o in outputs} - set(self.stage.produces))
        if undeclared:
            raise PermanentError(f"{self.name} does not produce {', '.join(undeclared)}")

    def _ledger_mark(self, topic: str, info: MessageInfo) -> None:
        try:
            self.ledger.mark(self.name, topic, info)
        except (TransientError, psycopg.OperationalError, psycopg.InterfaceError) as e:  # outputs are out; a redelivery would only make a duplicate the next hop skips
            log.warning("%s could not record %s step %d: %s", self.name, info.entity, info.step, e)

    def _handle_with_retries(self, route: Route, message: Message,
                             info: MessageInfo | None = None) -> tuple[list[Outgoing], int]:
        """Transient errors are retried with exponential backoff and jitter; anything else propagates at once."""
        cfg = self.settings.service
        deadline = info.deadline if info else 0.0
        for attempt in range(1, cfg.max_attempts + 1):
            copy = type(message)()
            copy.CopyFrom(message)  # a failed attempt must not leave half-applied changes behind
            try:
                try:
                    if route.topic in flow.TOOLSET_BY_REFERENCE:
                        self.toolsets.restore(copy)
                    return route.handler(copy), attempt
                except (psycopg.OperationalError, psycopg.InterfaceError) as e:
                    if isinstance(e, psycopg.errors.QueryCanceled):  # a statement timeout repeats: not transient
                        raise PermanentError(f"statement cancelled: {e}") from e
                    # A dropped or terminated database connection: the next attempt opens a new one.
                    raise TransientError(f"database connection lost: {e}") from e
            except TransientError as e:
                if attempt == cfg.max_attempts:
                    raise PermanentError(f"gave up after {attempt} attempts: {e}") from e
                delay = min(cfg.backoff_initial_s * 2 ** (attempt - 1), cfg.backoff_max_s)
                if deadline and time.time() + delay > deadline:
                    raise PermanentError(f"deadline passed while retrying (attempt {attempt}): trajectory stuck: {e}") from e
                log.info("%s: transient error (attempt %d), retrying in %.1fs: %s", self.name, attempt, delay, e)
                time.sleep(delay * random.uniform(0.5, 1.0))
        raise AssertionError("unreachable")

    def _encode(self, out: Outgoing) -> bytes:
        if out.topic in flow.TOOLSET_BY_REFERENCE and isinstance(out.message, TrajectoryState):
            return self.toolsets.encode(out.message)
        return out.message.SerializeToString()

    def _produce(self, outputs: list[Outgoing], done: tuple[TopicPartition, int] | None = None) -> None:
        """Send outputs and wait for the broker's acknowledgement. Transactional: outputs and the offsets finished so
        far (including `done`, the message they answer) commit together or not at all."""
        if self.transactional:
            self._produce_in_transaction(outputs, done)
            return
        try:
            futures = []
            for out in outputs:
                futures.append(self.producer.send(self.settings.topic(out.topic), key=out.key.encode(),
                                                  value=self._encode(out), headers=record_headers(out)))
            for f in futures:
                f.get(timeout=60)
        except KafkaError as e:
            raise FatalBusError(f"{self.name} could not produce its outputs: {e}") from e

    def _produce_in_transaction(self, outputs: list[Outgoing], done: tuple[TopicPartition, int] | None) -> None:
        with self._txn_lock:
            if self._fatal is not None:
                # A transaction of this process failed after its message was counted as finished; committing
                # offsets now would carry that message's offset along without its outputs (a lost trajectory).
                raise FatalBusError(f"{self.name} is stopping after a failed transaction")
            try:
                self.producer.begin_transaction()
                for out in outputs:
                    self.producer.send(self.settings.topic(out.topic), key=out.key.encode(),
                                       value=self._encode(out), headers=record_headers(out))
                if done is not None:
                    self._tracker.finished(*done)  # its offset commits with its outputs
                offsets = self._offsets(self._assigned)
                if offsets and self._group_metadata is not None:
                    self.producer.send_offsets_to_transaction(offsets, self._group_metadata)
                self.producer.commit_transaction()
                self._last_committed.update({tp: o.offset for tp, o in offsets.items()})
            except KafkaError as e:
                try:
                    self.producer.abort_transaction()
                except Exception:  # noqa: BLE001 - fenced or broker gone: exiting without committing is safe
                    pass
                error = FatalBusError(f"{self.name} could not commit its transaction: {e}")
                self._fail(error)
                raise error from e

    def _dead_letter(self, record, info: MessageInfo, error: Exception, attempts: int,
                     done: tuple[TopicPartition, int] | None = None) -> None:
        reason = f"{type(error).__name__}: {error}"
        if isinstance(error, DecodeError):
            reason = f"malformed message: not a valid {self.routes[record.topic].message_type.__name__} ({error})"
        elif not isinstance(error, (PermanentError, TransientError)):
            log.error("%s: unexpected error\n%s", self.name, traceback.format_exc())
        log.warning("%s dead-letters %s: %s", self.name, info.entity, reason)
        letter = dead_letter(service=self.name, source_topic=record.topic, key=record.key or b"",
                             error_type=type(error).__name__, reason=reason, seed_id=info.seed_id,
                             trajectory_id=info.trajectory_id, attempts=attempts, partition=record.partition,
                             offset=record.offset, payload=record.value or b"")
        self._produce([letter], done=done)
        self.dead_letters += 1


class _RevocationListener(ConsumerRebalanceListener):
    """On a rebalance, finish what is in flight and commit it before the partitions move elsewhere."""

    def __init__(self, service: Service, consumer: KafkaConsumer):
        self.service = service
        self.consumer = consumer

    def on_partitions_revoked(self, revoked) -> None:
        # The listener blocks the client's event loop, heartbeats included: wait well inside the session timeout,
        # or the group drops this member mid-wait. What is still in flight is read again by the next owner.
        self.service._drain(timeout_s=self.service.settings.kafka.session_timeout_ms / 2000)
        try:
            self.service._commit(self.consumer)
        except Exception as e:  # noqa: BLE001 - on close the group may be gone; uncommitted work is redelivered
            log.info("%s: commit on revocation skipped: %s", self.service.name, e)
        self.service.forget(revoked)

    def on_partitions_lost(self, lost) -> None:
        """Dropped from the group (session expired, e.g. across a broker restart): a commit would be refused, so
        only forget the partitions; the next owner reads them again from the committed offsets."""
        log.info("%s lost partitions %s; rejoining", self.service.name, sorted(f"{tp.topic}/{tp.partition}" for tp in lost))
        self.service.forget(lost)

    def on_partitions_assigned(self, assigned) -> None:
        pass


def run_stage(stage_class: type[Stage]) -> None:
    """Entry point of every service's __main__: settings from the environment, logging, tracing, then the bus."""
    settings = get_settings()
    name = stage_class.name
    # force: under `turnforge service NAME` (the image's entry point) the CLI has configured logging already, and a
    # service's log lines must still carry its name and time, without one line per model request.
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {name} %(levelname)s %(message)s", force=True)
    logging.getLogger("kafka").setLevel(logging.WARNING)
    llm.quiet_http_client_logs()
    lifeline.tie_to_parent()  # a service of a command's own stack ends with that command, even after a SIGKILL
    tracing.init_tracing(name, settings.tracing.otlp_endpoint)
    stage = stage_class(settings)
    try:
        service = Service(stage)
        service.install_signal_handlers()
        service.run()
    finally:
        stage.close()
