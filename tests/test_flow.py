"""The flow table (shared/contracts/flow.py) is the one the README shows, the chart creates and the services are."""
from __future__ import annotations

import json
import re
from pathlib import Path

from shared.contracts import Topics, flow
from shared.ops import cluster, stack
from tests.test_chart import CHART, containers, of_kind, render

ROOT = Path(__file__).resolve().parents[1]
EVERY_SERVICE = "every service"  # how the README's table says flow.SERVICES


def readme_topic_rows() -> list[list[str]]:
    """The cells of the README's "### Topics" table, header and separator left out."""
    section = (ROOT / "README.md").read_text().split("### Topics", 1)[1].split("\n###", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[2:]]


def plain(cell: str) -> str:
    """A cell without its notes in parentheses and without code quotes."""
    return re.sub(r"\s*\([^)]*\)", "", cell).replace("`", "").strip()


def actors(cell: str) -> set[str]:
    names = {plain(name) for name in plain(cell).split(",")}
    return set(flow.SERVICES) if names == {EVERY_SERVICE} else names


def test_the_readme_topics_table_is_the_flow_table():
    readme = [(plain(name), key, plain(message), actors(producers), actors(consumers))
              for name, key, message, producers, consumers in readme_topic_rows()]
    declared = [(t.name, t.key, t.message.DESCRIPTOR.name, set(t.producers), set(t.consumers)) for t in flow.FLOW]
    assert readme == declared


def test_topics_all_is_every_topic_name_once():
    names = {value for name, value in vars(Topics).items() if name.isupper() and name != "ALL"}
    assert len(Topics.ALL) == len(set(Topics.ALL)) == len(names)
    assert set(Topics.ALL) == names


def test_every_producer_and_consumer_is_a_service_or_a_command():
    services = {name.replace("_", "-") for name in stack.SERVICES}
    for topic in flow.FLOW:
        assert set(topic.producers) <= services | set(flow.COMMANDS), topic.name
        assert set(topic.consumers) <= services | set(flow.COMMANDS), topic.name
    # Each service is a package under services/, and takes part: it consumes a topic and produces one.
    assert {p.parent.name for p in (ROOT / "services").glob("*/service.py")} == set(stack.SERVICES)
    for service in flow.SERVICES:
        assert flow.consumed_by(service) and flow.produced_by(service), service
    assert flow.consumed_by(flow.RUN) == (Topics.ACCEPTED, Topics.REJECTED, Topics.DEAD_LETTER)
    assert flow.produced_by(flow.PRODUCE_SEED) == (Topics.SEEDS,)


def test_the_charts_topic_job_creates_the_flow_topics_and_services_consume_theirs():
    docs = render()
    [topic_job] = [d for d in of_kind(docs, "Job") if d["metadata"]["labels"]["app.kubernetes.io/component"] == "init"]
    assert containers(topic_job)[0]["args"][:2] == ["cluster", "init"]  # creates cluster.topic_partitions' topics
    assert list(cluster.topic_partitions(1, {})) == [t.name for t in flow.FLOW]
    # Per-topic partition overrides are accepted for exactly those topics.
    values_schema = json.loads((CHART / "values.schema.json").read_text())
    overrides = values_schema["properties"]["kafka"]["properties"]["topicPartitions"]["propertyNames"]["enum"]
    assert overrides == [t.name for t in flow.FLOW]
    consumed = {d["metadata"]["labels"]["turnforge.io/service"]: d["metadata"]["annotations"]["turnforge.io/topics"]
                for d in of_kind(docs, "Deployment") if "turnforge.io/service" in d["metadata"]["labels"]}
    assert consumed == {service: ",".join(flow.consumed_by(service)) for service in flow.SERVICES}


def test_every_stage_consumes_what_the_flow_table_says_and_produces_from_it():
    """The services' handlers (`@consumes`) against the one table; what a stage may produce is read from it."""
    from tests.test_chart import STAGES

    assert sorted(stage.name for stage in STAGES) == sorted(flow.SERVICES)
    for stage in STAGES:
        consumed = tuple(topic for topic, *_ in stage.consumed())
        assert consumed == flow.consumed_by(stage.name), stage.name
        messages = {topic: message for topic, message, *_ in stage.consumed()}
        assert all(messages[t.name] is t.message for t in flow.FLOW if t.name in messages), stage.name
        assert stage.produces == flow.produced_by(stage.name), stage.name
