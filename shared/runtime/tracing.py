"""OpenTelemetry: one trace per trajectory, carried across services in Kafka message headers (W3C traceparent)."""
from __future__ import annotations

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

_initialised = False


def init_tracing(service_name: str, otlp_endpoint: str = "") -> None:
    """Install a tracer provider; spans are exported by OTLP/HTTP only when an endpoint is configured."""
    global _initialised
    if _initialised:
        return
    provider = TracerProvider(resource=Resource.create({"service.name": f"turnforge-{service_name}"}))
    if otlp_endpoint:
        # Only a process that exports spans pays for the exporter's import (protobuf and HTTP client code).
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
    trace.set_tracer_provider(provider)
    _initialised = True


def shutdown() -> None:
    provider = trace.get_tracer_provider()
    if hasattr(provider, "shutdown"):
        provider.shutdown()


def tracer() -> trace.Tracer:
    return trace.get_tracer("turnforge")


def carrier_from_context(ctx: otel_context.Context | None = None) -> dict[str, str]:
    """The trace context as W3C fields (traceparent, ...), to store or send."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=ctx)
    return carrier


def context_from_carrier(carrier: dict[str, str]) -> otel_context.Context:
    return propagate.extract(carrier)


def headers_from_context(ctx: otel_context.Context | None = None) -> list[tuple[str, bytes]]:
    return [(k, v.encode()) for k, v in carrier_from_context(ctx).items()]


def context_from_headers(headers: list[tuple[str, bytes]] | None) -> otel_context.Context:
    return context_from_carrier({k: v.decode(errors="replace") for k, v in (headers or []) if v is not None})


def new_trajectory_trace(trajectory_id: str, link_from: otel_context.Context | None = None):
    """Start a fresh trace for one trajectory; returns (context to propagate, trace id hex).

    The root span is ended at once: it only anchors the trace, every later span hangs below it.
    """
    links = []
    if link_from is not None:
        parent = trace.get_current_span(link_from).get_span_context()
        if parent.is_valid:
            links.append(trace.Link(parent))
    span = tracer().start_span("trajectory", context=otel_context.Context(), links=links,
                               attributes={"turnforge.trajectory_id": trajectory_id})
    span.end()
    ctx = trace.set_span_in_context(span, otel_context.Context())
    return ctx, format(span.get_span_context().trace_id, "032x")
