"""One trace per trajectory across the services, received by a real OTLP/HTTP endpoint."""
from __future__ import annotations

import threading
import uuid
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from harness import service_logs
from shared import runner, stack
from shared.config import Settings
from shared.local_postgres import create_database

pytestmark = pytest.mark.e2e


class OTLPReceiver:
    """Accepts OTLP/HTTP protobuf trace exports and keeps the spans: (service, trace id, span id, parent, name)."""

    def __init__(self):
        self.spans: list[tuple[str, str, str, str, str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                request = ExportTraceServiceRequest.FromString(body)
                for rs in request.resource_spans:
                    service = next(a.value.string_value for a in rs.resource.attributes if a.key == "service.name")
                    for ss in rs.scope_spans:
                        for span in ss.spans:
                            receiver.spans.append((service, span.trace_id.hex(), span.span_id.hex(),
                                                   span.parent_span_id.hex(), span.name))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_every_trajectory_is_one_trace_across_services(postgres_server, kafka_bootstrap, fake_llm, tmp_path):
    receiver = OTLPReceiver()
    name = "trace_" + uuid.uuid4().hex[:8]
    settings = Settings(
        kafka={"bootstrap_servers": kafka_bootstrap, "topic_prefix": f"{name}.", "partitions": 1},
        postgres={"dsn": create_database(postgres_server, name)},
        llm={"default": {"base_url": fake_llm.base_url, "model": "fake", "structured_output": "json_schema",
                         "extra_body": {}}},
        tracing={"otlp_endpoint": receiver.endpoint}, state_dir=tmp_path / "state",
    )
    stack.load_demo_domains(settings.postgres.dsn)
    for service in stack.SERVICES:
        stack.start_service(settings, service, check_s=0)
    try:
        config = runner.RunConfig(domains=["telecom"], num_trajectories=2, write_task_share=0.5, timeout_s=120,
                                  output_dir=str(tmp_path / "out"))
        result = runner.run(settings, config)
        assert result.accepted == 2, service_logs(settings)
    finally:
        for service in stack.SERVICES:
            stack.stop_service(settings, service)  # SIGTERM: each flushes its spans on the way out

    by_trace = defaultdict(list)
    for span in receiver.spans:
        by_trace[span[1]].append(span)
    roots = [s for s in receiver.spans if s[4] == "trajectory"]
    assert len(roots) == 2
    for root in roots:
        spans = by_trace[root[1]]
        services = {s[0] for s in spans}
        assert {"turnforge-task-generator", "turnforge-user-sim", "turnforge-agent", "turnforge-sql-executor",
                "turnforge-validator"} <= services
        ids = {s[2] for s in spans}
        assert all(s[3] in ids for s in spans if s is not root)  # every span hangs from a span of the same trace
        assert any(s[4].startswith("llm agent") for s in spans) and any(s[4].startswith("tool ") for s in spans)
    seed_traces = {s[1] for s in receiver.spans if s[0] == "turnforge-tool-synth"}
    assert seed_traces and not seed_traces & {r[1] for r in roots}  # the seed's work is its own trace
