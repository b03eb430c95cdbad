"""The bus's offset bookkeeping without a broker: what a failed transaction or a lost partition may not commit."""
from __future__ import annotations

import pytest
from kafka import TopicPartition
from kafka.errors import KafkaConnectionError

from shared.runtime import bus
from shared.runtime.bus import FatalBusError, OffsetTracker, Outgoing, Service, Stage
from shared.runtime.config import Settings
from shared.contracts import Topics, TrajectoryState
from shared.runtime.errors import PermanentError

TP = TopicPartition("tf.turns.user", 3)


class NothingConsumed(Stage):
    """Only the bookkeeping is under test: no handler runs."""

    name = "user-sim"
    produces = (Topics.TURNS_AGENT,)


class FlakyTransactionalProducer:
    """Records what each committed transaction carried; the first commit fails as when the broker dies mid-commit."""

    def __init__(self, *_args, **_kwargs):
        self.failures_left = 1
        self.committed_offsets: list[dict] = []
        self._offsets: dict = {}

    def init_transactions(self):
        pass

    def begin_transaction(self):
        self._offsets = {}

    def send(self, *_args, **_kwargs):
        pass

    def send_offsets_to_transaction(self, offsets, _group_metadata):
        self._offsets = {tp: o.offset for tp, o in offsets.items()}

    def commit_transaction(self):
        if self.failures_left:
            self.failures_left -= 1
            raise KafkaConnectionError("broker went away during EndTxn")
        self.committed_offsets.append(self._offsets)

    def abort_transaction(self):
        pass


@pytest.fixture
def service(monkeypatch):
    monkeypatch.setattr(bus, "make_producer", FlakyTransactionalProducer)
    monkeypatch.setattr(bus, "ProcessedLedger", lambda *_args, **_kwargs: None)
    settings = Settings()
    settings.kafka.transactions = True
    s = Service(NothingConsumed(settings))
    s._assigned = {TP}
    s._group_metadata = object()
    return s


def out(tid: str) -> list[Outgoing]:
    return [Outgoing(Topics.TURNS_AGENT, tid, TrajectoryState(trajectory_id=tid))]


def test_after_a_failed_transaction_no_later_one_commits_past_its_message(service):
    # Two messages of one partition in flight on two handler threads.
    service._tracker.started(TP, 146)
    service._tracker.started(TP, 150)
    with pytest.raises(FatalBusError):
        service._produce_in_transaction(out("t-146"), done=(TP, 146))  # outputs lost with the broker
    # The other handler finishes a moment later, the broker back: its commit would carry offset 151 and skip 146
    # for good. It must not commit at all; the restarted process reads 146 again.
    with pytest.raises(FatalBusError):
        service._produce_in_transaction(out("t-150"), done=(TP, 150))
    assert service.producer.committed_offsets == []
    assert service._fatal is not None


def test_a_successful_transaction_commits_up_to_the_lowest_message_in_flight(service):
    service.producer.failures_left = 0
    service._tracker.started(TP, 146)
    service._tracker.started(TP, 150)
    service._produce_in_transaction(out("t-150"), done=(TP, 150))
    assert service.producer.committed_offsets == [{TP: 146}]  # 146 is still being handled
    service._produce_in_transaction(out("t-146"), done=(TP, 146))
    assert service.producer.committed_offsets[-1] == {TP: 151}


def test_a_finish_from_before_a_lost_partition_does_not_move_its_commit_point():
    tracker = OffsetTracker()
    tracker.started(TP, 146)
    tracker.forget([TP])  # the partition was lost; the group hands it out again
    tracker.finished(TP, 146)  # the old handler completes afterwards
    assert tracker.commit_points() == {}
    tracker.started(TP, 140)  # read again from the committed offset
    tracker.finished(TP, 140)
    assert tracker.commit_points() == {TP: 141}


def test_a_lost_partition_is_forgotten_without_a_commit(service):
    service._tracker.started(TP, 146)
    listener = bus._RevocationListener(service, consumer=None)
    listener.on_partitions_lost({TP})
    assert service._tracker.in_flight() == 0 and service.producer.committed_offsets == []


def test_a_stage_produces_only_the_topics_it_declares(service):
    service._check_produces(out("t-1"))  # turns.agent is declared
    with pytest.raises(PermanentError, match="does not produce"):
        service._check_produces([Outgoing(Topics.ACCEPTED, "t-1", TrajectoryState(trajectory_id="t-1"))])
