"""One client for any OpenAI-compatible endpoint: vLLM, llama.cpp's server, OpenAI.

- Structured output: a JSON Schema is sent the way the server understands it ("json_schema" for vLLM and OpenAI,
  llama.cpp's {"type": "json_object", "schema": ...}), and the answer is parsed and validated against it; an answer
  that is not valid JSON is asked again a bounded number of times, then fails permanently.
- Errors are classified: 429, 5xx, timeouts and connection errors are transient (retried here with backoff);
  a bad request or a context overflow is permanent.
- Every call reports its token usage, so trajectories can count what they cost.
"""
from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import socket
import threading
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

import jsonschema
import openai
from opentelemetry import trace
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from shared.runtime.config import LLMConfig, ModelEndpoint
from shared.runtime.errors import PermanentError, TransientError
from shared.runtime.tracing import tracer

log = logging.getLogger("turnforge.llm")
# The HTTP client under the openai package logs one INFO line per request; openai 3 uses httpx2, older ones httpx.
HTTP_CLIENT_LOGGERS = ("httpx", "httpx2")


def quiet_http_client_logs() -> None:
    """One line per model request drowns a service's log and a command's summary: keep the client's warnings only."""
    for name in HTTP_CLIENT_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


# The trajectory (or seed) whose message is being handled: sent as a header, so a proxy or a test double can
# attribute every model call, and its cost, to the work it served.
current_entity: contextvars.ContextVar[str] = contextvars.ContextVar("turnforge_entity", default="")
ENTITY_HEADER = "X-TurnForge-Entity"
# Which process sent it: a call repeated by the same process is a retry, one repeated after a restart is recovery.
SENDER_HEADER = "X-TurnForge-Sender"


class LLMTransientError(TransientError):
    pass


class LLMPermanentError(PermanentError):
    pass


class InvalidModelOutput(LLMPermanentError):
    """The model's answer did not parse as JSON or did not match the requested schema."""


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, other: "Usage") -> None:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens


@dataclass
class ChatResult:
    content: str
    data: Any = None  # the parsed JSON when a schema was requested
    tool_calls: list[dict] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    calls: int = 1
    finish_reason: str = ""


# Qwen2.5 (and other Hermes-style chat templates) write a call as <tool_call>{"name": ..., "arguments": {...}}
# </tool_call> in the text. vLLM's `hermes` tool-call parser turns that into tool_calls on the server; llama.cpp's
# servers hand it back as text, so the client parses it the same way.
TEXT_TOOL_CALL = re.compile(r"<tool_call>\s*(\{.*?\})\s*</tool_call>", re.DOTALL)


def text_tool_calls(content: str) -> tuple[list[dict], str]:
    """The tool calls a server left in the text, in OpenAI's form, and the text around them; ([], content) when the
    text holds none: <tool_call> blocks, or the whole text one {"name", "arguments"} object."""
    blocks = TEXT_TOOL_CALL.findall(content)
    rest = TEXT_TOOL_CALL.sub("", content).strip()
    if not blocks and content.strip().startswith("{"):
        blocks, rest = [content.strip()], ""
    calls = []
    for i, block in enumerate(blocks):
        try:
            call = json.loads(block)
        except json.JSONDecodeError:
            return [], content
        if not isinstance(call, dict) or not isinstance(call.get("name"), str) or \
                not isinstance(call.get("arguments", {}), dict):
            return [], content
        calls.append({"id": f"call_{i}", "type": "function",
                      "function": {"name": call["name"], "arguments": json.dumps(call.get("arguments", {}))}})
    return calls, rest


def response_format(endpoint: ModelEndpoint, name: str, schema: dict) -> dict:
    if endpoint.structured_output == "json_object_schema":
        return {"type": "json_object", "schema": schema}
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}


def classify(error: Exception) -> Exception:
    """Map an openai-client exception to a transient or permanent error with a clear reason."""
    if isinstance(error, (openai.APITimeoutError, openai.APIConnectionError)):
        return LLMTransientError(f"model server unreachable or slow: {error}")
    if isinstance(error, openai.RateLimitError):
        return LLMTransientError("model server is rate limiting (HTTP 429)")
    if isinstance(error, openai.APIStatusError):
        status = error.status_code
        body = str(error)[:500]
        if status >= 500 or status in (408, 409):
            return LLMTransientError(f"model server error HTTP {status}: {body}")
        if "context" in body.lower() and ("length" in body.lower() or "window" in body.lower()):
            return LLMPermanentError(f"context overflow: the conversation no longer fits the model ({body})")
        return LLMPermanentError(f"model server rejected the request HTTP {status}: {body}")
    return LLMPermanentError(f"unexpected model client error: {error}")


class LLMClient:
    def __init__(self, config: LLMConfig, role: str, model_override: str = ""):
        self.config = config
        self.role = role
        self.endpoint = config.for_role(role)
        self.model = model_override or self.endpoint.model
        self._client = openai.OpenAI(base_url=self.endpoint.base_url, api_key=self.endpoint.api_key,
                                     timeout=self.endpoint.timeout_s, max_retries=0)

    def close(self) -> None:
        self._client.close()

    def chat(
        self,
        messages: list[dict],
        *,
        schema: dict | None = None,
        schema_name: str = "output",
        tools: list[dict] | None = None,
        tool_choice: Any = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> ChatResult:
        """One chat completion; with `schema`, the parsed and validated JSON is in `.data`."""
        request: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens or self.endpoint.max_tokens,
            "temperature": self.endpoint.temperature if temperature is None else temperature,
        }
        if self.endpoint.extra_body:
            request["extra_body"] = self.endpoint.extra_body
        if schema is not None:
            request["response_format"] = response_format(self.endpoint, schema_name, schema)
        if tools:
            request["tools"] = tools
            if tool_choice is not None:
                request["tool_choice"] = tool_choice
        usage = Usage()
        attempts = max(1, self.config.invalid_json_attempts)
        last_error: Exception | None = None
        for attempt in range(attempts):
            result = self._complete(request, schema_name)
            usage.add(result.usage)
            result.usage = usage
            result.calls = attempt + 1
            if schema is None:
                return result
            try:
                result.data = parse_json_answer(result.content, schema)
                return result
            except InvalidModelOutput as e:
                last_error = e
                log.info("%s: invalid JSON answer (attempt %d/%d): %s", self.role, attempt + 1, attempts, e)
        raise InvalidModelOutput(f"{self.role}: no valid '{schema_name}' JSON after {attempts} answers: {last_error}")

    def _complete(self, request: dict, purpose: str) -> ChatResult:
        retrying = Retrying(
            retry=retry_if_exception_type(LLMTransientError),
            stop=stop_after_attempt(self.config.max_attempts),
            wait=wait_exponential_jitter(initial=0.5, max=8),
            reraise=True,
        )
        with tracer().start_as_current_span(f"llm {self.role} {purpose}", kind=trace.SpanKind.CLIENT) as span:
            span.set_attribute("gen_ai.request.model", self.model)
            span.set_attribute("gen_ai.operation.name", purpose)
            for attempt in retrying:
                with attempt:
                    try:
                        headers = {SENDER_HEADER: f"{socket.gethostname()}/{os.getpid()}"}
                        if entity := current_entity.get():
                            headers[ENTITY_HEADER] = entity
                        response = self._client.chat.completions.create(**request, extra_headers=headers)
                    except openai.OpenAIError as e:
                        raise classify(e) from e
            choice = response.choices[0] if response.choices else None
            if choice is None:
                raise LLMTransientError("model server returned no choices")
            message = choice.message
            usage = Usage(getattr(response.usage, "prompt_tokens", 0) or 0,
                          getattr(response.usage, "completion_tokens", 0) or 0)
            span.set_attribute("gen_ai.usage.input_tokens", usage.prompt_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", usage.completion_tokens)
            tool_calls = [
                {"id": c.id, "type": "function", "function": {"name": c.function.name, "arguments": c.function.arguments}}
                for c in (message.tool_calls or [])
            ]
            content = message.content or ""
            if request.get("tools") and not tool_calls:
                tool_calls, content = text_tool_calls(content)
            return ChatResult(content=content, tool_calls=tool_calls, usage=usage,
                              finish_reason=choice.finish_reason or "")


Parsed = TypeVar("Parsed")


@dataclass
class Answer(Generic[Parsed]):
    """A model call's parsed result, with the raw result kept for its usage (tokens, calls)."""

    value: Parsed
    chat: ChatResult


class ModelCall(Generic[Parsed]):
    """One kind of model call, its prompt, JSON schema and parser in one place (as distilabel's tasks keep them).

    A subclass is built with its inputs and says what to send (`messages`), what shape the answer must have
    (`schema`) and what the answer means (`parse`); `ask` sends it through a client.
    """

    name: ClassVar[str] = "output"  # the schema's name, and the model span's
    temperature: ClassVar[float | None] = None  # None: the endpoint's default
    max_tokens: int | None = None  # None: the endpoint's default; a call may size it to what it asks for

    def messages(self) -> list[dict]:
        raise NotImplementedError

    def schema(self) -> dict:
        raise NotImplementedError

    def parse(self, data: Any) -> Parsed:
        return data

    def ask(self, llm: "LLMClient") -> Answer[Parsed]:
        chat = llm.chat(self.messages(), schema=self.schema(), schema_name=self.name, temperature=self.temperature,
                        max_tokens=self.max_tokens)
        return Answer(self.parse(chat.data), chat)


class LLMClients:
    """One client per (role, model) for a service's lifetime, so each keeps its HTTP connection pool."""

    def __init__(self, config: LLMConfig):
        self.config = config
        self._clients: dict[tuple[str, str], LLMClient] = {}
        self._lock = threading.Lock()

    def for_role(self, role: str, models) -> LLMClient:
        """The client for `role`, with the model the seed's settings name for it (else the endpoint's)."""
        key = (role, models.get(role, ""))
        with self._lock:
            if key not in self._clients:
                self._clients[key] = LLMClient(self.config, *key)
            return self._clients[key]

    def close(self) -> None:
        """Close every client's HTTP connection pool."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()


def parse_json_answer(content: str, schema: dict) -> Any:
    """Parse a model's JSON answer and check it against the schema that constrained it."""
    text = (content or "").strip()
    if not text:
        raise InvalidModelOutput("empty answer")
    if text.startswith("```"):  # some models fence JSON even when told not to
        text = text.strip("`").removeprefix("json").strip()
    try:
        data = json.loads(text, strict=False)  # small models put raw newlines inside strings
    except json.JSONDecodeError as e:
        raise InvalidModelOutput(f"not valid JSON ({e.msg} at position {e.pos}): {text[:200]!r}") from e
    try:
        jsonschema.validate(data, schema)
    except jsonschema.ValidationError as e:
        raise InvalidModelOutput(f"JSON does not match the schema: {e.message}") from e
    return data
