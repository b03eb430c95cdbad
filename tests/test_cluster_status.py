"""`turnforge cluster status` aggregation and rendering, `cluster init` topic counts, `turnforge trace` look-ups,
and the heartbeat the services' liveness probe reads. Fake Kubernetes objects: no cluster runs here."""
from __future__ import annotations

import json
import os
import time
from types import SimpleNamespace as NS

import pytest
from rich.console import Console

from shared.ops import cluster, trace_lookup
from shared.runtime.bus import Service
from shared.runtime.config import Settings
from shared.contracts import DeadLetter, GenerationSettings, SeedEvent, Topics, TrajectoryState, Verdict


def deployment(labels, replicas, ready, annotations=None, gpu=None):
    resources = NS(limits={"nvidia.com/gpu": gpu, "memory": "64Gi"} if gpu else {"memory": "1Gi"}, requests=None)
    return NS(metadata=NS(labels=labels, annotations=annotations or {}),
              spec=NS(replicas=replicas, template=NS(spec=NS(containers=[NS(resources=resources)]))),
              status=NS(ready_replicas=ready))


def release_deployments():
    return [
        deployment({"turnforge.io/service": "validator"}, 1, 1),
        deployment({"turnforge.io/service": "agent"}, 3, 2),
        deployment({"turnforge.io/service": "tool-synth"}, 1, None),  # no pod ready yet: the API says None
        deployment({"turnforge.io/model-server": "judge"}, 1, 1,
                   {"turnforge.io/model": "Qwen/Qwen3-32B", "turnforge.io/roles": "judge"}, gpu="2"),
        deployment({"turnforge.io/model-server": "main"}, 1, 0, {"turnforge.io/model": "Qwen/Qwen3-8B"}, gpu=1),
        deployment({"app.kubernetes.io/component": "jaeger"}, 1, 1),  # neither: not listed
    ]


def test_deployments_become_service_and_model_server_rows():
    services, models = cluster.summarize_deployments(release_deployments())
    assert [(r.name, r.ready, r.desired, r.healthy) for r in services] == [
        ("tool-synth", 0, 1, False), ("agent", 2, 3, False), ("validator", 1, 1, True)]  # pipeline order
    assert [(r.name, r.model, r.gpus_per_replica, r.healthy) for r in models] == [
        ("judge", "Qwen/Qwen3-32B", 2, True), ("main", "Qwen/Qwen3-8B", 1, False)]


def test_consumer_lag_sums_partitions_and_tells_never_consumed_from_caught_up():
    ends = {("tf.turns.user", 0): 10, ("tf.turns.user", 1): 5, ("tf.seeds", 0): 0, ("tf.tool.calls", 0): 7,
            ("tf.deadletter", 0): 4}
    committed = {("tf.turns.user", 0): 7, ("tf.turns.user", 1): 5, ("tf.tool.calls", 0): 7}
    lag = cluster.consumer_lag(committed, ends)
    assert lag == {"tf.turns.user": 3, "tf.seeds": None, "tf.tool.calls": 0, "tf.deadletter": 4}


def test_status_renders_every_service_even_without_a_deployment():
    status = cluster.ClusterStatus("tf", "prod")
    status.services, status.model_servers = cluster.summarize_deployments(release_deployments())
    status.lag = [cluster.LagRow("agent", "tf.turns.agent", 42, 8), cluster.LagRow("tool-synth", "tf.seeds", None, 8)]
    console = Console(record=True, width=160)
    for part in cluster.render(status):
        console.print(part)
    text = console.export_text()
    assert "release tf in prod" in text
    assert "2/3" in text and "not ready" in text
    assert "schema-predictor" in text and "no deployment" in text  # missing services show up as missing
    assert "Qwen/Qwen3-32B" in text and "tf.turns.agent" in text and "42" in text

    status.lag, status.lag_error = [], "NoBrokersAvailable: NoBrokersAvailable"
    console = Console(record=True, width=160)
    for part in cluster.render(status):
        console.print(part)
    assert "consumer lag and seeds unavailable: NoBrokersAvailable" in console.export_text()


def verdict(seed_id: str, trajectory_id: str, accepted: bool) -> bytes:
    v = Verdict(trajectory_id=trajectory_id, accepted=accepted)
    v.trajectory.seed_id, v.trajectory.trajectory_id = seed_id, trajectory_id
    return v.SerializeToString()


def seed(seed_id: str, domain: str, trajectories: int) -> SeedEvent:
    return SeedEvent(seed_id=seed_id, domain=domain, settings=GenerationSettings(num_trajectories=trajectories))


def test_seed_progress_counts_each_trajectory_once_and_a_failed_seed_closes_its_slots():
    seeds = [seed("r1-telecom", "telecom", 3), seed("r1-banking", "banking", 2), seed("r2-retail", "retail", 1)]
    outcomes = [
        (Topics.ACCEPTED, verdict("r1-telecom", "t0", True)),
        (Topics.ACCEPTED, verdict("r1-telecom", "t0", True)),  # redelivered: counted once
        (Topics.DEAD_LETTER, DeadLetter(seed_id="r1-telecom", trajectory_id="t1", service="agent",
                                        reason="stuck").SerializeToString()),
        (Topics.REJECTED, verdict("r1-telecom", "t1", False)),  # a verdict outranks the earlier dead letter
        (Topics.DEAD_LETTER, DeadLetter(seed_id="r1-banking", service="tool-synth",
                                        reason="no such domain").SerializeToString()),  # the whole seed failed
        (Topics.ACCEPTED, verdict("other-seed", "x", True)),  # a seed no longer on the topic: not listed
    ]
    rows = {r.seed_id: r for r in cluster.seed_progress(*cluster.track_seeds(seeds, outcomes))}
    assert set(rows) == {"r1-telecom", "r1-banking", "r2-retail"}
    t, b, r = rows["r1-telecom"], rows["r1-banking"], rows["r2-retail"]
    assert (t.domain, t.trajectories, t.accepted, t.rejected, t.dead_lettered, t.in_flight) == ("telecom", 3, 1, 1, 0, 1)
    assert (b.accepted, b.rejected, b.dead_lettered, b.in_flight) == (0, 0, 2, 0)
    assert (r.trajectories, r.in_flight) == (1, 1)
    status = cluster.ClusterStatus("tf", "prod", seeds=list(rows.values()))
    console = Console(record=True, width=160)
    for part in cluster.render(status):
        console.print(part)
    text = console.export_text()
    assert "r1-telecom" in text and "in flight" in text


def test_topic_partitions_take_overrides_and_reject_unknown_topics():
    counts = cluster.topic_partitions(4, {"turns.user": 16})
    assert counts["turns.user"] == 16 and counts["seeds"] == 4 and len(counts) == len(Topics.ALL) == 11
    with pytest.raises(ValueError, match="no such topic: turns.usr"):
        cluster.topic_partitions(4, {"turns.usr": 16})


def test_retry_until_gives_up_after_the_deadline():
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("not yet")
        return "up"

    assert cluster.retry_until("probe", flaky, wait_s=5, pause_s=0.01) == "up"
    with pytest.raises(RuntimeError, match="probe failed"):
        cluster.retry_until("probe", lambda: 1 / 0, wait_s=0.05, pause_s=0.01)


def test_trace_found_in_accepted_and_rejected_output_files(tmp_path):
    (tmp_path / "dataset.jsonl").write_text(json.dumps(
        {"id": "run-a-telecom-t0000", "messages": [], "metadata": {"trace_id": "ab" * 16}}) + "\n")
    (tmp_path / "rejected.jsonl").write_text(json.dumps(
        {"trajectory_id": "run-a-telecom-t0001", "trace_id": "cd" * 16, "reasons": ["judge"]}) + "\n")
    accepted = trace_lookup.find_in_files("run-a-telecom-t0000", [tmp_path / "missing", tmp_path])
    rejected = trace_lookup.find_in_files("run-a-telecom-t0001", [tmp_path])
    assert accepted.trace_id == "ab" * 16 and accepted.source.endswith("dataset.jsonl")
    assert rejected.trace_id == "cd" * 16
    assert rejected.jaeger_url("http://jaeger:16686/") == f"http://jaeger:16686/trace/{'cd' * 16}"
    assert trace_lookup.find_in_files("run-a-telecom-t0002", [tmp_path]) is None
    url = trace_lookup.search_url("http://jaeger:16686", "run-a-telecom-t0002")
    assert url.startswith("http://jaeger:16686/search?service=turnforge-task-generator&tags=")
    assert "run-a-telecom-t0002" in url


def test_trace_id_of_terminal_topic_records():
    state = TrajectoryState(trajectory_id="t1", trace_id="ef" * 16)
    verdict = Verdict(trajectory_id="t1", trajectory=state).SerializeToString()
    assert trace_lookup.trace_id_of_record("tf.trajectories.rejected", verdict, "tf.") == ("t1", "ef" * 16)
    letter = DeadLetter(trajectory_id="t1", payload=state.SerializeToString()).SerializeToString()
    assert trace_lookup.trace_id_of_record("tf.deadletter", letter, "tf.") == ("t1", "ef" * 16)
    assert trace_lookup.trace_id_of_record("tf.turns.user", state.SerializeToString(), "tf.") is None


def test_the_consume_loop_heartbeat_is_touched_at_most_every_few_seconds(tmp_path):
    beat = tmp_path / "hb" / "heartbeat"
    loop = NS(settings=Settings(service={"heartbeat_file": str(beat)}))
    Service._heartbeat(loop)
    assert beat.is_file()
    os.utime(beat, (time.time() - 600, time.time() - 600))
    Service._heartbeat(loop)  # within 5 s of the last beat: not touched again
    assert time.time() - beat.stat().st_mtime > 500
    loop._last_beat -= 6
    Service._heartbeat(loop)
    assert time.time() - beat.stat().st_mtime < 5
    Service._heartbeat(NS(settings=Settings()))  # no file configured: nothing to do


@pytest.mark.integration
def test_init_creates_the_topics_with_their_counts_and_lag_is_read_from_the_broker(kafka_bootstrap, postgres_dsn,
                                                                                    tmp_path):
    import uuid

    from kafka import KafkaConsumer, KafkaProducer
    from kafka.structs import OffsetAndMetadata, TopicPartition

    from shared.env.sandbox import SandboxManager

    prefix = "init_" + uuid.uuid4().hex[:6] + "."
    settings = Settings(kafka={"bootstrap_servers": kafka_bootstrap, "topic_prefix": prefix, "partitions": 2,
                               "topic_partitions": {"turns.user": 3}}, postgres={"dsn": postgres_dsn})
    cluster.init(settings, demo_domains=True, wait_s=30)
    cluster.init(settings, demo_domains=True, wait_s=30)  # a second run (helm upgrade) finds everything there
    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap)
    try:
        assert len(consumer.partitions_for_topic(prefix + "turns.user")) == 3
        assert len(consumer.partitions_for_topic(prefix + "seeds")) == 2
    finally:
        consumer.close()
    assert "telecom" in SandboxManager(postgres_dsn).domains()

    # Lag of user-sim on turns.user: 3 records in partition 0, the group committed offset 1.
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for i in range(3):  # one at a time: the embedded broker gives a whole batch a single offset
        producer.send(prefix + "turns.user", value=b"x", partition=0).get(timeout=10)
    producer.close()
    group = KafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=settings.consumer_group("user-sim"),
                          enable_auto_commit=False)
    try:
        group.assign([TopicPartition(prefix + "turns.user", 0)])
        group.commit({TopicPartition(prefix + "turns.user", 0): OffsetAndMetadata(1, "", -1)})
    finally:
        group.close()
    rows = {(r.service, r.topic): r for r in cluster.lag_rows(settings)}
    assert (rows["user-sim", prefix + "turns.user"].lag, rows["user-sim", prefix + "turns.user"].partitions) == (2, 3)
    assert rows["tool-synth", prefix + "seeds"].lag is None  # nothing produced, nothing committed
    assert cluster.seed_rows(settings) == []

    # The seeds' progress, read from the topics' start: one seed of two trajectories, one accepted so far.
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    producer.send(prefix + "seeds", value=seed("s1", "telecom", 2).SerializeToString()).get(timeout=10)
    producer.send(prefix + "seeds", value=b"not a seed").get(timeout=10)
    producer.send(prefix + "trajectories.accepted", value=verdict("s1", "s1-t0", True)).get(timeout=10)
    producer.close()
    assert [(r.seed_id, r.trajectories, r.accepted, r.in_flight) for r in cluster.seed_rows(settings)] == [
        ("s1", 2, 1, 1)]
    # Collecting the release's dataset so far: the accepted trajectory's record, nothing rejected yet.
    rows, paths = cluster.collect(settings, tmp_path / "collected")
    [record] = [json.loads(line) for line in paths["dataset_path"].read_text().splitlines()]
    assert record["id"] == "s1-t0" and record["metadata"]["seed_id"] == "s1"
    assert paths["rejected_path"].read_text() == "" and rows[0].in_flight == 1
    assert '"s1-t0"' in paths["page_path"].read_text()  # the review page lists it
    # `turnforge trace` reads the same topics: the trajectory's trace id, or None for one that is not there.
    traced = Verdict(trajectory_id="s1-t1", accepted=False)
    traced.trajectory.seed_id, traced.trajectory.trajectory_id, traced.trajectory.trace_id = "s1", "s1-t1", "ab" * 16
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    producer.send(prefix + "trajectories.rejected", key=b"s1-t1", value=traced.SerializeToString()).get(timeout=10)
    producer.close()
    ref = trace_lookup.find_on_kafka(settings, "s1-t1", timeout_s=20)
    assert (ref.trace_id, ref.source) == ("ab" * 16, f"topic {prefix}trajectories.rejected")
    assert trace_lookup.find_on_kafka(settings, "s1-t9", timeout_s=20) is None
