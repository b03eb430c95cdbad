"""TurnForge on Kubernetes: `turnforge cluster init` (the chart's topic Job), `cluster status` and `cluster collect`.

status shows what an operator checks first: each service's ready replicas, each model server's readiness and GPUs,
the consumer lag per topic, and how far each seed got (its trajectories accepted, rejected, dead-lettered, in
flight). Deployments come from the Kubernetes API (the `kubernetes` client, kubeconfig or in-cluster credentials),
lag from Kafka (committed offsets of each service's group against the topics' end offsets), the seeds' progress from
the seeds and outcome topics, read from their start as `turnforge run` reads them; collect writes those outcomes as
a run's dataset files.
The gathering is thin; the aggregation and rendering below it are pure functions.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from kafka import KafkaAdminClient, KafkaConsumer
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError
from kafka.structs import TopicPartition
from google.protobuf.message import DecodeError
from rich.table import Table

from shared.runtime.config import Settings
from shared.contracts import SeedEvent, Topics
from shared.contracts.flow import RUN, SERVICES, consumed_by
from shared.runtime.bus import read_to_end
from shared.ops.stack import load_demo_domains
from shared.run import review
from shared.run.runner import ACCEPTED, DEAD_LETTERED, REJECTED, RunTracker, write_records

log = logging.getLogger("turnforge.cluster")

# The topics each service consumes; the chart has the same table (its "turnforge.serviceTopics").
SERVICE_TOPICS: dict[str, tuple[str, ...]] = {service: consumed_by(service) for service in SERVICES}
GPU = "nvidia.com/gpu"
SERVICE_LABEL = "turnforge.io/service"
MODEL_SERVER_LABEL = "turnforge.io/model-server"


# -- init: topics and demo domains --------------------------------------------------------------------------------
def topic_partitions(default: int, overrides: dict[str, int]) -> dict[str, int]:
    """Partitions per logical topic name; an override for a topic TurnForge does not have is a mistake."""
    unknown = set(overrides) - set(Topics.ALL)
    if unknown:
        raise ValueError(f"no such topic: {', '.join(sorted(unknown))}; topics are {', '.join(Topics.ALL)}")
    return {name: overrides.get(name, default) for name in Topics.ALL}


def create_topics(settings: Settings) -> list[str]:
    """Create the missing topics as the services would (kafka.partitions, kafka.topic_partitions,
    kafka.replication_factor); returns the names created. Existing topics keep their partitions."""
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers, client_id="turnforge-init")
    try:
        existing = set(admin.list_topics())
        partitions = topic_partitions(settings.kafka.partitions, settings.kafka.topic_partitions)
        wanted = [NewTopic(settings.topic(name), num_partitions=n, replication_factor=settings.kafka.replication_factor)
                  for name, n in partitions.items() if settings.topic(name) not in existing]
        created = []
        for topic in wanted:  # one at a time: a topic another process created meanwhile must not stop the rest
            try:
                admin.create_topics([topic])
                created.append(topic.name)
            except TopicAlreadyExistsError:
                pass
        return created
    finally:
        admin.close()


def retry_until(what: str, action, wait_s: float, pause_s: float = 5.0):
    """Call action() until it succeeds or wait_s has passed (Kafka and PostgreSQL may still be starting)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return action()
        except Exception as e:  # noqa: BLE001 - any failure while the dependency starts is retried until the deadline
            if time.monotonic() >= deadline:
                raise RuntimeError(f"{what} failed for {wait_s:.0f} s: {e}") from e
            log.info("%s: %s; retrying in %.0f s", what, e, pause_s)
            time.sleep(pause_s)


def init(settings: Settings, *, demo_domains: bool, wait_s: float) -> None:
    """The chart's topic Job: the topics (the services would create the same ones, but not all at once with their
    final counts before the first seed arrives), then the demo domain databases."""
    partitions = topic_partitions(settings.kafka.partitions, settings.kafka.topic_partitions)
    created = retry_until("creating topics", lambda: create_topics(settings), wait_s)
    for name in Topics.ALL:
        state = "created" if settings.topic(name) in created else "exists"
        print(f"topic {settings.topic(name)}: {partitions[name]} partitions ({state})")
    if demo_domains:
        loaded = retry_until("loading demo domains", lambda: load_demo_domains(settings.postgres.dsn), wait_s)
        print(f"demo domains loaded: {', '.join(loaded) or 'none (all there already)'}")


# -- status: aggregation ------------------------------------------------------------------------------------------
@dataclass
class ServiceRow:
    name: str
    ready: int
    desired: int

    @property
    def healthy(self) -> bool:
        return self.desired > 0 and self.ready >= self.desired


@dataclass
class ModelServerRow:
    name: str
    model: str
    roles: str
    ready: int
    desired: int
    gpus_per_replica: int

    @property
    def healthy(self) -> bool:
        return self.desired > 0 and self.ready >= self.desired


@dataclass
class LagRow:
    service: str
    topic: str
    lag: int | None  # None: the group has committed nothing on this topic yet
    partitions: int


@dataclass
class SeedRow:
    seed_id: str
    domain: str
    trajectories: int  # asked for
    accepted: int
    rejected: int
    dead_lettered: int
    in_flight: int


@dataclass
class ClusterStatus:
    release: str
    namespace: str
    services: list[ServiceRow] = field(default_factory=list)
    model_servers: list[ModelServerRow] = field(default_factory=list)
    lag: list[LagRow] = field(default_factory=list)
    seeds: list[SeedRow] = field(default_factory=list)
    lag_error: str = ""  # Kafka could not be read: no lag, no seeds


def _gpus(container) -> int:
    resources = getattr(container, "resources", None)
    for amounts in (getattr(resources, "limits", None), getattr(resources, "requests", None)):
        if amounts and GPU in amounts:
            return int(str(amounts[GPU]))
    return 0


def summarize_deployments(deployments: Iterable[Any]) -> tuple[list[ServiceRow], list[ModelServerRow]]:
    """Rows for the release's service and model-server Deployments (V1Deployment objects or look-alikes)."""
    services, models = [], []
    for d in deployments:
        labels = d.metadata.labels or {}
        annotations = d.metadata.annotations or {}
        desired = d.spec.replicas if d.spec.replicas is not None else 1
        ready = (d.status.ready_replicas or 0) if d.status else 0
        if SERVICE_LABEL in labels:
            services.append(ServiceRow(labels[SERVICE_LABEL], ready, desired))
        elif MODEL_SERVER_LABEL in labels:
            gpus = sum(_gpus(c) for c in d.spec.template.spec.containers)
            models.append(ModelServerRow(labels[MODEL_SERVER_LABEL], annotations.get("turnforge.io/model", "?"),
                                         annotations.get("turnforge.io/roles", ""), ready, desired, gpus))
    order = list(SERVICE_TOPICS)
    services.sort(key=lambda r: order.index(r.name) if r.name in order else len(order))
    models.sort(key=lambda r: r.name)
    return services, models


def consumer_lag(committed: dict[tuple[str, int], int | None], ends: dict[tuple[str, int], int]) -> dict[str, int | None]:
    """Lag per topic: end offset minus committed offset, summed over the topic's partitions.

    A partition the group never committed counts its whole backlog (the group starts from the earliest offset);
    a topic with no commit at all and nothing in it is None, so "idle, never consumed" differs from "caught up"."""
    per_topic: dict[str, int | None] = {}
    for (topic, partition), end in sorted(ends.items()):
        offset = committed.get((topic, partition))
        if offset is None and end == 0:
            per_topic.setdefault(topic, None)
            continue
        lag = max(end - (offset or 0), 0)
        per_topic[topic] = (per_topic.get(topic) or 0) + lag
    return per_topic


# -- status: gathering --------------------------------------------------------------------------------------------
class ClusterError(ValueError):
    """A problem for the user (no credentials, no such release), not a bug: printed without a traceback."""


def _kube_client():
    from kubernetes import client, config  # about a second to import, needed only by `cluster status`

    try:
        config.load_kube_config()
    except config.ConfigException:
        try:
            config.load_incluster_config()
        except config.ConfigException as e:
            raise ClusterError(f"no Kubernetes credentials (kubeconfig or in-cluster): {e}") from e
    return client


def _release_selector(release: str) -> str:
    return f"app.kubernetes.io/instance={release},app.kubernetes.io/name=turnforge"


def list_release_deployments(release: str, namespace: str) -> list[Any]:
    client = _kube_client()
    return client.AppsV1Api().list_namespaced_deployment(namespace, label_selector=_release_selector(release)).items


def release_config(release: str, namespace: str) -> str:
    """The services' config file of a release (its `<fullname>-config` ConfigMap): the topic and group prefixes
    are the release's own, so status reads them from there unless given a config."""
    client = _kube_client()
    maps = client.CoreV1Api().list_namespaced_config_map(namespace, label_selector=_release_selector(release)).items
    for config_map in maps:
        if config_map.metadata.name.endswith("-config") and "config.yaml" in (config_map.data or {}):
            return config_map.data["config.yaml"]
    raise ClusterError(f"no config of release {release} in namespace {namespace}")


def committed_offsets(admin, group: str) -> dict:
    """{TopicPartition: OffsetAndMetadata} of a group; kafka-python 3 renamed the call and keys it by group."""
    if hasattr(admin, "list_group_offsets"):
        return admin.list_group_offsets({group: None}).get(group, {})
    return admin.list_consumer_group_offsets(group)


def lag_rows(settings: Settings, timeout_s: float = 10.0) -> list[LagRow]:
    servers = settings.kafka.bootstrap_servers
    admin = KafkaAdminClient(bootstrap_servers=servers, client_id="turnforge-status",
                             request_timeout_ms=int(timeout_s * 1000))
    consumer = KafkaConsumer(bootstrap_servers=servers, client_id="turnforge-status", enable_auto_commit=False,
                             request_timeout_ms=int(timeout_s * 1000) + 1000)
    try:
        rows = []
        for service, topics in SERVICE_TOPICS.items():
            offsets = committed_offsets(admin, settings.consumer_group(service))
            committed = {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
            partitions = [TopicPartition(settings.topic(t), p) for t in topics
                          for p in sorted(consumer.partitions_for_topic(settings.topic(t)) or ())]
            ends = {(tp.topic, tp.partition): off for tp, off in consumer.end_offsets(partitions).items()}
            lag = consumer_lag(committed, ends)
            for t in topics:
                name = settings.topic(t)
                count = sum(1 for tp in partitions if tp.topic == name)
                rows.append(LagRow(service, name, lag.get(name), count))
        return rows
    finally:
        consumer.close()
        admin.close()


def track_seeds(seeds: Iterable[SeedEvent], outcomes: Iterable[tuple[str, bytes | None]]
                ) -> tuple[dict[str, SeedEvent], RunTracker]:
    """The seeds by id, and their outcome records (logical topic, value) counted as a run counts them (once each,
    a verdict over a dead letter). Seeds that do not parse are the dead-letter topic's business."""
    by_id = {s.seed_id: s for s in seeds if s.seed_id}
    tracker = RunTracker({seed_id: max(s.settings.num_trajectories, 1) for seed_id, s in by_id.items()})
    for topic, value in outcomes:
        tracker.on_record(topic, value)
    return by_id, tracker


def seed_progress(seeds: dict[str, SeedEvent], tracker: RunTracker) -> list[SeedRow]:
    """Per seed, how its trajectories ended so far."""
    rows = []
    for seed_id, seed in seeds.items():
        counts = tracker.counts(seed_id)
        rows.append(SeedRow(seed_id, seed.domain, counts["seeded"], counts[ACCEPTED], counts[REJECTED],
                            counts[DEAD_LETTERED], counts["missing"]))
    return rows


def release_outcomes(settings: Settings) -> tuple[dict[str, SeedEvent], RunTracker]:
    """Every seed on the release's seeds topic and how its trajectories ended so far, read from the topics."""
    seeds, outcomes = [], []
    for topic, record in read_to_end(settings, [Topics.SEEDS, *consumed_by(RUN)], client_id="turnforge-status"):
        if topic != Topics.SEEDS:
            outcomes.append((topic, record.value))
            continue
        try:
            seeds.append(SeedEvent.FromString(record.value or b""))
        except DecodeError:
            continue
    return track_seeds(seeds, outcomes)


def seed_rows(settings: Settings) -> list[SeedRow]:
    return seed_progress(*release_outcomes(settings))


def collect(settings: Settings, out: Path) -> tuple[list[SeedRow], dict[str, Path]]:
    """The release's finished trajectories as a run writes them: dataset.jsonl (accepted), rejected.jsonl,
    dead_letters.jsonl and the review page of them. Trajectories still in flight are left out; collecting again later
    adds them."""
    seeds, tracker = release_outcomes(settings)
    paths, _ = write_records(tracker, out)
    paths["page_path"] = review.write_page(out)
    return seed_progress(seeds, tracker), paths


def gather(settings: Settings, release: str, namespace: str) -> ClusterStatus:
    status = ClusterStatus(release, namespace)
    status.services, status.model_servers = summarize_deployments(list_release_deployments(release, namespace))
    try:
        status.lag = lag_rows(settings)
        status.seeds = seed_rows(settings)
    except Exception as e:  # noqa: BLE001 - no route to Kafka must not hide what the Kubernetes API said
        status.lag_error = f"{type(e).__name__}: {e}"
    return status


# -- status: rendering --------------------------------------------------------------------------------------------
def render(status: ClusterStatus):
    """rich renderables: services, model servers, consumer lag."""
    def state(ok: bool) -> str:
        return "[green]ready[/]" if ok else "[red]not ready[/]"

    services = Table("service", "ready/desired", "state", title=f"release {status.release} in {status.namespace}")
    for r in status.services:
        services.add_row(r.name, f"{r.ready}/{r.desired}", state(r.healthy))
    missing = [s for s in SERVICE_TOPICS if s not in {r.name for r in status.services}]
    for name in missing:
        services.add_row(name, "-", "[red]no deployment[/]")
    models = Table("model server", "model", "roles", "ready/desired", "GPUs per replica", "state")
    for r in status.model_servers:
        models.add_row(r.name, r.model, r.roles, f"{r.ready}/{r.desired}", str(r.gpus_per_replica), state(r.healthy))
    lag = Table("service", "topic", "partitions", "lag")
    for r in status.lag:
        lag.add_row(r.service, r.topic, str(r.partitions), "-" if r.lag is None else str(r.lag))
    out = [services, models if status.model_servers else "no model servers in this release (external endpoint)"]
    if status.lag_error:
        return out + [f"[yellow]consumer lag and seeds unavailable: {status.lag_error}[/]"]
    seeds = Table("seed", "domain", "trajectories", "accepted", "rejected", "dead-lettered", "in flight")
    for r in status.seeds:
        seeds.add_row(r.seed_id, r.domain, str(r.trajectories), str(r.accepted), str(r.rejected),
                      str(r.dead_lettered), str(r.in_flight))
    return out + [lag, seeds if status.seeds else "no seeds produced yet"]
