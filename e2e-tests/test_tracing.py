"""One trace per trajectory across the services, stored by a real Jaeger (v2 all-in-one) and read back over its
query API, the way a user debugging a trajectory finds it with `turnforge trace`.

Jaeger is built from source once by scripts/go-tool.sh (about 5 minutes on 2 cores) and cached after that.
"""
from __future__ import annotations

import json
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml

from harness import live_sandboxes, service_logs
from shared.cli import main as cli
from shared.ops import stack
from shared.run import runner
from shared.runtime.config import Settings
from shared.ops.local_postgres import create_database
from shared.runtime.ports import free_port

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[1]
TRAJECTORY_SERVICES = {"turnforge-task-generator", "turnforge-user-sim", "turnforge-agent", "turnforge-sql-executor",
                       "turnforge-validator"}
SEED_SERVICES = {"turnforge-tool-synth", "turnforge-schema-predictor", "turnforge-task-generator"}


class Jaeger:
    """Jaeger all-in-one with in-memory storage: OTLP/HTTP in, the query API (what the UI reads) out."""

    def __init__(self, binary: str, folder: Path):
        self.otlp_port, self.query_port, grpc_port = free_port(), free_port(), free_port()
        config = {
            "service": {"extensions": ["jaeger_storage", "jaeger_query"],
                        "pipelines": {"traces": {"receivers": ["otlp"], "processors": ["batch"],
                                                 "exporters": ["jaeger_storage_exporter"]}},
                        "telemetry": {"metrics": {"level": "none"}, "logs": {"level": "warn"}}},
            "extensions": {
                "jaeger_query": {"storage": {"traces": "memory"},
                                 "http": {"endpoint": f"127.0.0.1:{self.query_port}"},
                                 "grpc": {"endpoint": f"127.0.0.1:{grpc_port}"}},
                "jaeger_storage": {"backends": {"memory": {"memory": {"max_traces": 10000}}}}},
            "receivers": {"otlp": {"protocols": {"http": {"endpoint": f"127.0.0.1:{self.otlp_port}"}}}},
            "processors": {"batch": {"timeout": "200ms"}},
            "exporters": {"jaeger_storage_exporter": {"trace_storage": "memory"}},
        }
        (folder / "jaeger.yaml").write_text(yaml.safe_dump(config))
        self.log = folder / "jaeger.log"
        with open(self.log, "w") as log:
            self.process = subprocess.Popen([binary, "--config", str(folder / "jaeger.yaml")], stdout=log,
                                            stderr=subprocess.STDOUT)
        self.otlp_endpoint = f"http://127.0.0.1:{self.otlp_port}/v1/traces"
        self.ui_url = f"http://127.0.0.1:{self.query_port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                self.get("/api/services")
                break
            except OSError:
                assert self.process.poll() is None and time.monotonic() < deadline, self.log.read_text()
                time.sleep(0.2)

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(self.ui_url + path, timeout=10) as response:
            return json.load(response)

    def trace(self, trace_id: str) -> list[dict]:
        """The trace's spans, each with its service name; [] while Jaeger does not have it."""
        try:
            data = self.get(f"/api/traces/{trace_id}")["data"]
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return []
            raise
        if not data:
            return []
        processes = data[0]["processes"]
        spans = data[0]["spans"]
        for span in spans:
            span["service"] = processes[span["processID"]]["serviceName"]
            span["tagmap"] = {t["key"]: t["value"] for t in span["tags"]}
        return spans

    def settled_trace(self, trace_id: str, timeout_s: float = 20) -> list[dict]:
        """The trace once Jaeger has stored all of it: it batches what it receives, so wait until the span count
        holds still for a second."""
        deadline = time.monotonic() + timeout_s
        spans, previous = self.trace(trace_id), None
        while (not spans or len(spans) != previous) and time.monotonic() < deadline:
            previous = len(spans)
            time.sleep(1.0)
            spans = self.trace(trace_id)
        return spans

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # its graceful shutdown can linger; the spans are in memory anyway
            self.process.kill()
            self.process.wait(timeout=5)


@pytest.fixture(scope="module")
def jaeger(tmp_path_factory):
    build = subprocess.run([str(ROOT / "scripts" / "go-tool.sh"), "jaeger"], capture_output=True, text=True,
                           timeout=1800)
    if build.returncode == 3:
        pytest.skip("Jaeger is not built and there is no Go toolchain to build it")
    assert build.returncode == 0, build.stderr
    server = Jaeger(build.stdout.strip(), tmp_path_factory.mktemp("jaeger"))
    yield server
    server.stop()


def parent_of(span: dict) -> str | None:
    return next((r["spanID"] for r in span["references"] if r["refType"] == "CHILD_OF"), None)


def test_every_trajectory_is_one_trace_across_services(postgres_server, kafka_bootstrap, fake_llm, jaeger, tmp_path,
                                                        capsys):
    name = "trace_" + uuid.uuid4().hex[:8]
    settings = Settings(
        kafka={"bootstrap_servers": kafka_bootstrap, "topic_prefix": f"{name}.", "partitions": 1},
        postgres={"dsn": create_database(postgres_server, name)},
        llm={"default": {"base_url": fake_llm.base_url, "model": "fake", "structured_output": "json_schema",
                         "extra_body": {}}},
        tracing={"otlp_endpoint": jaeger.otlp_endpoint, "jaeger_ui_url": jaeger.ui_url}, state_dir=tmp_path / "state",
    )
    stack.load_demo_domains(settings.postgres.dsn)
    for service in stack.SERVICES:
        stack.start_service(settings, service, check_s=0)
    try:
        config = runner.RunConfig(domains=["telecom"], num_trajectories=2, write_task_share=0.5, timeout_s=120,
                                  output_dir=str(tmp_path / "out"))
        result = runner.run(settings, config)
        assert result.accepted == 2, service_logs(settings)
        deadline = time.monotonic() + 30  # sql-executor drops each sandbox once it sees the verdict
        while live_sandboxes(settings) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not live_sandboxes(settings), service_logs(settings)
    finally:
        for service in stack.SERVICES:
            stack.stop_service(settings, service)  # SIGTERM: each flushes its spans on the way out

    # `turnforge trace` finds each trajectory's trace id in the run's output and prints its Jaeger address.
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(settings.model_dump(mode="json")))
    records = [json.loads(line) for line in Path(result.dataset_path).read_text().splitlines()]
    for record in records:
        with pytest.raises(SystemExit) as exit_code:
            cli.main(["trace", record["id"], "--config", str(config_file), "--out", str(tmp_path / "out"),
                      "--no-kafka"])
        assert exit_code.value.code == 0
        printed = capsys.readouterr().out
        trace_id = record["metadata"]["trace_id"]
        assert f"trace id   {trace_id}" in printed
        assert f"jaeger     {jaeger.ui_url}/trace/{trace_id}" in printed

        # Without the output files (a cluster's case) it reads the trajectory from the terminal topics instead.
        with pytest.raises(SystemExit) as exit_code:
            cli.main(["trace", record["id"], "--config", str(config_file), "--out", str(tmp_path / "elsewhere")])
        assert exit_code.value.code == 0
        printed = capsys.readouterr().out
        assert f"trace id   {trace_id}" in printed and f"found in   topic {settings.topic('trajectories.accepted')}" \
            in printed

        check_trajectory_trace(jaeger.settled_trace(trace_id), record["id"], jaeger)


def check_trajectory_trace(spans: list[dict], trajectory_id: str, jaeger: Jaeger) -> None:
    by_id = {s["spanID"]: s for s in spans}
    assert TRAJECTORY_SERVICES <= {s["service"] for s in spans}

    # Parented correctly: one root (the trajectory's anchor), every other span hangs from a span of this trace,
    # and each message handled hangs from the span of the service that produced it.
    roots = [s for s in spans if parent_of(s) is None]
    assert [r["operationName"] for r in roots] == ["trajectory"]
    root = roots[0]
    assert root["tagmap"]["turnforge.trajectory_id"] == trajectory_id
    assert all(parent_of(s) in by_id for s in spans if s is not root)
    consumed = [s for s in spans if s["tagmap"].get("span.kind") == "consumer"]
    assert {s["service"] for s in consumed} >= TRAJECTORY_SERVICES - {"turnforge-task-generator"}
    for span in consumed:  # the trajectory's first message hangs from its root, the others from their producer
        parent = by_id[parent_of(span)]
        assert parent is root or (parent["tagmap"].get("span.kind") == "consumer"
                                  and parent["service"] != span["service"]), (span["operationName"], parent["operationName"])

    # What a debugging user looks for: model calls, tool executions, the sandbox's life, the verdict.
    llm = [s for s in spans if s["operationName"].startswith("llm ")]
    assert {s["service"] for s in llm} >= {"turnforge-task-generator", "turnforge-user-sim", "turnforge-agent"}
    assert all(s["tagmap"]["gen_ai.request.model"] == "fake" and "gen_ai.usage.input_tokens" in s["tagmap"]
               for s in llm)
    tools = [s for s in spans if s["operationName"].startswith("tool ")]
    assert tools and all(s["service"] == "turnforge-sql-executor" for s in tools)
    assert any("db.statement" in s["tagmap"] and "turnforge.tool.rows" in s["tagmap"] for s in tools)
    sandbox = {s["operationName"] for s in spans if s["operationName"].startswith("sandbox ")
               and s["service"] == "turnforge-sql-executor"}
    assert sandbox == {"sandbox create", "sandbox drop"}
    assert any(s["tagmap"].get("turnforge.verdict.accepted") is True for s in spans
               if s["service"] == "turnforge-validator")
    planning = [s for s in spans if s["operationName"] == "plan trajectory"]
    assert len(planning) == 1 and by_id[parent_of(planning[0])] is root

    # The seed's work (tool synthesis, schema prediction, task planning) serves every trajectory of the seed, so it
    # is the seed's own trace; the trajectory's root links to it, and Jaeger shows the link.
    links = [r for r in root["references"] if r["refType"] == "FOLLOWS_FROM"]
    assert len(links) == 1 and links[0]["traceID"] != root["traceID"]
    seed_spans = jaeger.settled_trace(links[0]["traceID"])
    assert links[0]["spanID"] in {s["spanID"] for s in seed_spans}
    assert SEED_SERVICES <= {s["service"] for s in seed_spans}
    seed_ids = {s["spanID"] for s in seed_spans}
    assert sum(1 for s in seed_spans if parent_of(s) is None) == 1
    assert all(parent_of(s) in seed_ids for s in seed_spans if parent_of(s) is not None)
    assert TRAJECTORY_SERVICES | SEED_SERVICES == {s["service"] for s in spans} | {s["service"] for s in seed_spans}
