"""The bus against a real broker and PostgreSQL: retries, dead letters, idempotence, at-least-once commits."""
from __future__ import annotations

import threading
import time
import uuid

import pytest
from kafka import KafkaConsumer, KafkaProducer

from shared.runtime.bus import Outgoing, Service, Stage, consumes, ensure_topics
from shared.runtime.config import Settings
from shared.contracts import DeadLetter, Topics, TrajectoryState
from shared.runtime.errors import PermanentError, TransientError
from shared.env.trajectory import trajectory_info

pytestmark = pytest.mark.integration


def read(settings, topic, expect, timeout_s=20):
    consumer = KafkaConsumer(settings.topic(topic), bootstrap_servers=settings.kafka.bootstrap_servers,
                             auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=500)
    records, deadline = [], time.monotonic() + timeout_s
    while len(records) < expect and time.monotonic() < deadline:
        records += list(consumer)
    time.sleep(1)
    records += list(consumer)  # nothing more may arrive
    consumer.close()
    return records


def test_retries_dead_letters_and_duplicates(kafka_bootstrap, postgres_dsn):
    settings = Settings(kafka={"bootstrap_servers": kafka_bootstrap, "topic_prefix": f"bus{uuid.uuid4().hex[:6]}.",
                               "partitions": 2},
                        postgres={"dsn": postgres_dsn},
                        service={"concurrency": 4, "max_attempts": 3, "backoff_initial_s": 0.01})
    ensure_topics(settings)
    calls: dict[str, int] = {}

    def handler(state: TrajectoryState):
        calls[state.trajectory_id] = calls.get(state.trajectory_id, 0) + 1
        if state.trajectory_id == "flaky" and calls["flaky"] < 3:
            raise TransientError("model server busy")
        if state.trajectory_id == "always-busy":
            raise TransientError("still busy")
        if state.trajectory_id == "bad":
            raise PermanentError("tool spec is not a JSON Schema")
        state.step += 1
        return [Outgoing(Topics.TURNS_AGENT, state.trajectory_id, state)]

    class BusTest(Stage):
        name = "bus-test"
        produces = (Topics.TURNS_AGENT,)

        @consumes(Topics.TURNS_USER, TrajectoryState, trajectory_info)
        def handle(self, state: TrajectoryState):
            return handler(state)

    service = Service(BusTest(settings))
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()

    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    send = lambda key, value: producer.send(settings.topic(Topics.TURNS_USER), key=key.encode(), value=value)
    for tid in ("ok", "flaky", "bad", "always-busy"):
        send(tid, TrajectoryState(trajectory_id=tid, step=1).SerializeToString())
    send("ok", TrajectoryState(trajectory_id="ok", step=1).SerializeToString())  # a redelivered duplicate
    send("junk", b"\xff\x00 not protobuf")
    producer.flush()

    outputs = read(settings, Topics.TURNS_AGENT, expect=2)
    letters = [DeadLetter.FromString(r.value) for r in read(settings, Topics.DEAD_LETTER, expect=3)]
    service.stop()
    thread.join(40)

    assert sorted(r.key.decode() for r in outputs) == ["flaky", "ok"]  # the duplicate produced nothing
    assert calls["ok"] == 1 and calls["flaky"] == 3 and calls["bad"] == 1 and calls["always-busy"] == 3
    by_key = {d.key.decode(): d for d in letters}
    assert set(by_key) == {"bad", "always-busy", "junk"}
    assert "tool spec is not a JSON Schema" in by_key["bad"].reason and by_key["bad"].trajectory_id == "bad"
    assert "gave up after 3 attempts" in by_key["always-busy"].reason
    assert "malformed message" in by_key["junk"].reason and by_key["junk"].payload == b"\xff\x00 not protobuf"

    # Everything was committed: a new instance of the service finds nothing left to do.
    calls.clear()
    again = Service(BusTest(settings))
    thread = threading.Thread(target=again.run, daemon=True)
    thread.start()
    time.sleep(8)
    again.stop()
    thread.join(40)
    assert calls == {}
