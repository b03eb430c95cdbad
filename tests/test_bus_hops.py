"""The produce time each record carries, and the hop latency a consuming service logs from it."""
from __future__ import annotations

import time

from shared.contracts import SeedEvent, Topics
from shared.runtime.bus import PRODUCED_AT_HEADER, HopLog, Outgoing, produced_at, record_headers


def test_every_record_carries_its_produce_time():
    before = time.time()
    headers = record_headers(Outgoing(Topics.SEEDS, "s1", SeedEvent(seed_id="s1")))
    sent = produced_at(headers)
    assert PRODUCED_AT_HEADER in dict(headers)
    assert before <= sent <= time.time()


def test_a_record_without_a_readable_produce_time_has_none():
    assert produced_at([]) is None
    assert produced_at([(PRODUCED_AT_HEADER, b"not a time")]) is None


def test_hop_log_writes_topic_and_milliseconds_since_produce(tmp_path):
    path = tmp_path / "hops.log"
    hops = HopLog(str(path))
    hops.record("tf.turns.user", [(PRODUCED_AT_HEADER, repr(time.time() - 0.25).encode())])
    hops.record("tf.turns.agent", [])  # produced by something else than a service: no hop
    hops.close()
    [line] = path.read_text().splitlines()
    _, topic, ms = line.split()
    assert topic == "tf.turns.user" and 250 <= float(ms) < 1000


def test_without_a_path_nothing_is_written(tmp_path):
    hops = HopLog("")
    hops.record("tf.turns.user", [(PRODUCED_AT_HEADER, repr(time.time()).encode())])
    hops.close()
    assert list(tmp_path.iterdir()) == []
