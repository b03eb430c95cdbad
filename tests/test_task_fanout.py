"""A seed's trajectories are planned by every task-generator of the consumer group, not by the one that got the seed:
two members of one group, a real broker and PostgreSQL, one seed."""
from __future__ import annotations

import threading
import time
import uuid

import psycopg
import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.partitioner.default import murmur2

from services.task_generator.service import TaskGenerator
from shared.contracts import SeedEvent, SeededTrajectory, SeedToolset, Topics, TrajectoryState
from shared.runtime.bus import Outgoing, Service, ensure_topics
from shared.runtime.config import Settings
from tests.factories import toolset

pytestmark = pytest.mark.integration

PARTITIONS = 4
TRAJECTORIES = 16


class RecordingTaskGenerator(TaskGenerator):
    """The real stage (fan-out, saved plans, registry) with planning itself replaced by a stub that notes which
    member planned which trajectory: what is under test is who plans, not how."""

    def __init__(self, settings: Settings):
        super().__init__(settings)
        self.planned_here: list[str] = []

    def new_trajectory(self, prepared, db_schema, seeded: SeededTrajectory, llm) -> Outgoing:
        self.planned_here.append(seeded.trajectory_id)
        state = TrajectoryState(trajectory_id=seeded.trajectory_id, seed_id=seeded.seed_id, index=seeded.index, step=1,
                                deadline=seeded.deadline)
        return Outgoing(Topics.TURNS_USER, seeded.trajectory_id, state)


def seeded_partitions(service: Service) -> set[int]:
    return {tp.partition for tp in service.assignment() if tp.topic == service.settings.topic(Topics.TRAJECTORIES_SEEDED)}


def wait_for(condition, timeout_s: float, what: str) -> None:
    """Waits for a state of the group, not for a time: the bound only ends a hung test."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_two_task_generators_of_one_group_each_plan_the_trajectories_of_their_partitions(kafka_bootstrap,
                                                                                        postgres_dsn):
    settings = Settings(kafka={"bootstrap_servers": kafka_bootstrap, "topic_prefix": f"fan{uuid.uuid4().hex[:6]}.",
                               "partitions": PARTITIONS},
                        postgres={"dsn": postgres_dsn}, service={"concurrency": 2})
    ensure_topics(settings)
    stages = [RecordingTaskGenerator(settings), RecordingTaskGenerator(settings)]
    members = [Service(stage) for stage in stages]
    threads = [threading.Thread(target=member.run, daemon=True) for member in members]
    for thread in threads:
        thread.start()
    try:
        # Both members joined and the group settled: trajectories.seeded's partitions are split between them.
        wait_for(lambda: all(seeded_partitions(m) for m in members)
                 and seeded_partitions(members[0]).isdisjoint(seeded_partitions(members[1]))
                 and seeded_partitions(members[0]) | seeded_partitions(members[1]) == set(range(PARTITIONS)),
                 timeout_s=60, what="the two task generators never shared trajectories.seeded's partitions")
        owned = [seeded_partitions(m) for m in members]

        # One seed of 16 trajectories, without a database (planning needs none with the stub).
        ready = SeedToolset(seed=SeedEvent(seed_id="fan-seed", domain="telecom"), toolset=toolset())
        ready.toolset.ClearField("domain_database")
        ready.seed.settings.num_trajectories = TRAJECTORIES
        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
        producer.send(settings.topic(Topics.TOOLSETS_READY), key=b"fan-seed", value=ready.SerializeToString())
        producer.flush()
        producer.close()

        consumer = KafkaConsumer(settings.topic(Topics.TURNS_USER), bootstrap_servers=kafka_bootstrap,
                                 auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=500)
        first_events: list = []
        wait_for(lambda: first_events.extend(consumer) or len(first_events) >= TRAJECTORIES, timeout_s=120,
                 what=f"not every trajectory was planned: {len(first_events)} of {TRAJECTORIES}")
        consumer.close()
    finally:
        for member in members:
            member.stop()
        for thread in threads:
            thread.join(60)

    tids = [f"fan-seed-t{i:04d}" for i in range(TRAJECTORIES)]
    # Each trajectory's first event went out once, keyed by its id.
    assert sorted(r.key.decode() for r in first_events) == tids
    # Each member planned exactly the trajectories whose messages landed in its partitions (the producer's
    # partitioner is deterministic), and both had some: the seed's planning was shared.
    partition_of = {tid: (murmur2(tid.encode()) & 0x7FFFFFFF) % PARTITIONS for tid in tids}  # Kafka's default
    expected = [sorted(t for t in tids if partition_of[t] in mine) for mine in owned]
    assert all(expected), f"the ids all hash into one member's partitions: {partition_of}"
    assert [sorted(stage.planned_here) for stage in stages] == expected
    # The fan-out registered every trajectory with the deadline its event carries.
    with psycopg.connect(postgres_dsn) as conn:
        registered = dict(conn.execute("SELECT trajectory_id, deadline FROM tf_trajectories").fetchall())
    assert registered == {r.key.decode(): TrajectoryState.FromString(r.value).deadline for r in first_events}


def test_the_dead_letters_of_two_plans_that_failed_are_not_one_message_to_sql_executor():
    """A plan that fails for good is dead-lettered by the handler, not for a consumed record, so its letter has
    partition and offset 0; sql-executor's ledger must still tell two trajectories' letters apart, or it skips the
    second one and that trajectory stays unresolved (and its sandboxes kept) until the deadline sweep."""
    from services.sql_executor.service import dead_letter_info
    from shared.runtime.bus import dead_letter

    letters = [dead_letter(service="task-generator", source_topic=Topics.TRAJECTORIES_SEEDED, key=tid.encode(),
                           error_type="PermanentError", reason="no task's wording matched", seed_id="s",
                           trajectory_id=tid).message for tid in ("s-t0000", "s-t0001")]
    assert dead_letter_info(letters[0]).entity != dead_letter_info(letters[1]).entity
