"""A simulated OpenAI-compatible model server whose answers take time the way a batching server's do.

Content comes from the scripted fake (fake_llm.answer): valid for every TurnForge call. Time comes from a model of
continuous batching: one scheduler loop runs decode steps; a step generates one token for every sequence in the
batch and takes `step_ms + step_ms_per_sequence * batch` (the whole batch shares the server's throughput), and a
step that admits new requests also pays their prefill, `prefill_ms_per_token` per prompt token. At most
`max_batch` sequences run at once; the rest wait in a queue, as with vLLM's max_num_seqs.

Token shapes: the prompt is what the services really built (counted at 4 characters a token, messages and the
JSON schema of the answer, as a tokenizer sees both); the answer is the scripted answer, which has the shape the
service's JSON schema asks for, at 4 characters a token, at least `min_answer_tokens`.
"""
from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # e2e-tests, for fake_llm

from fake_llm import _schema_of, answer, kind_of  # noqa: E402

CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class BatchingTimes:
    """The default figures are of the order of an 8B model on one H100-class GPU: about 80 tokens/s for a lone
    sequence, about 3,000 tokens/s at a batch of 64, 5,000 at 256, and prompts read at 20,000 tokens/s."""

    step_ms: float = 12.0
    step_ms_per_sequence: float = 0.15
    prefill_ms_per_token: float = 0.05
    max_batch: int = 256
    min_answer_tokens: int = 8

    def step_s(self, decoding: int, prefill_tokens: int) -> float:
        return (self.step_ms + self.step_ms_per_sequence * decoding + self.prefill_ms_per_token * prefill_tokens) / 1000


def prompt_tokens(body: dict) -> int:
    text = json.dumps(body.get("messages", [])) + json.dumps(_schema_of(body))
    return len(text) // CHARS_PER_TOKEN


@dataclass
class _Sequence:
    prompt_tokens: int
    answer_tokens: int
    generated: int = 0
    done: threading.Event = field(default_factory=threading.Event)


class BatchScheduler:
    """The server's engine: admits waiting sequences up to max_batch and advances every running one per step."""

    def __init__(self, times: BatchingTimes):
        self.times = times
        self._cond = threading.Condition()
        self._waiting: list[_Sequence] = []
        self._running: list[_Sequence] = []
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, daemon=True, name="batch-scheduler")
        self._thread.start()

    def generate(self, prompt_tokens: int, answer_tokens: int) -> None:
        """Block until a sequence of this shape has been prefilled and decoded."""
        sequence = _Sequence(prompt_tokens, answer_tokens)
        with self._cond:
            self._waiting.append(sequence)
            self._cond.notify()
        sequence.done.wait()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not (self._waiting or self._running or self._stopped):
                    self._cond.wait()
                if self._stopped:
                    return
                room = self.times.max_batch - len(self._running)
                admitted, self._waiting = self._waiting[:room], self._waiting[room:]
                decoding = list(self._running)
                self._running.extend(admitted)
            time.sleep(self.times.step_s(len(decoding), sum(s.prompt_tokens for s in admitted)))
            with self._cond:
                for sequence in admitted + decoding:  # prefill yields the first token
                    sequence.generated += 1
                finished = [s for s in self._running if s.generated >= s.answer_tokens]
                self._running = [s for s in self._running if s.generated < s.answer_tokens]
            for sequence in finished:
                sequence.done.set()


@dataclass
class CallShape:
    calls: int = 0
    prompt_tokens: int = 0
    answer_tokens: int = 0


class SimulatedModelServer:
    """`with SimulatedModelServer() as server: server.base_url`. Records each request body (for the direct load
    generator to replay), the token shapes per call kind and the number of requests in flight."""

    def __init__(self, times: BatchingTimes = BatchingTimes(), port: int = 0):
        self.times = times
        self.scheduler = BatchScheduler(times)
        self.bodies: list[dict] = []
        self.shapes: dict[str, CallShape] = defaultdict(CallShape)
        self.served = Counter()  # "requests", "prompt_tokens", "answer_tokens"
        self._lock = threading.Lock()
        self._in_flight = 0
        self._in_flight_since = time.monotonic()
        self.in_flight_area = 0.0  # integral of requests in flight over time, for the mean
        self.in_flight_max = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the OpenAI client expects

            def log_message(self, *args):
                pass

            def _send(self, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._send({"object": "list", "data": [{"id": "sim", "object": "model"}]})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                self._send(server.complete(body))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler, bind_and_activate=False)
        self.httpd.request_queue_size = 1024  # 256 clients connecting at once must not overflow the backlog
        self.httpd.daemon_threads = True
        self.httpd.server_bind()
        self.httpd.server_activate()
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True, name="sim-llm-http")

    def complete(self, body: dict) -> dict:
        kind = kind_of(_schema_of(body))
        content = answer(body, {})
        prompt, generated = prompt_tokens(body), max(len(content) // CHARS_PER_TOKEN, self.times.min_answer_tokens)
        self._count_in_flight(+1, body)
        try:
            self.scheduler.generate(prompt, generated)
        finally:
            self._count_in_flight(-1)
        with self._lock:
            shape = self.shapes[kind]
            shape.calls += 1
            shape.prompt_tokens += prompt
            shape.answer_tokens += generated
            self.served.update(requests=1, prompt_tokens=prompt, answer_tokens=generated)
        return {"id": "chatcmpl-sim", "object": "chat.completion", "model": body.get("model", "sim"),
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
                "usage": {"prompt_tokens": prompt, "completion_tokens": generated, "total_tokens": prompt + generated}}

    def _count_in_flight(self, change: int, body: dict | None = None) -> None:
        with self._lock:
            now = time.monotonic()
            self.in_flight_area += self._in_flight * (now - self._in_flight_since)
            self._in_flight_since = now
            self._in_flight += change
            self.in_flight_max = max(self.in_flight_max, self._in_flight)
            if body is not None:
                self.bodies.append(body)

    def reset_counters(self) -> None:
        """Start a new measurement: counts, shapes and the in-flight figures from zero (bodies are kept)."""
        with self._lock:
            self.shapes.clear()
            self.served.clear()
            self.in_flight_area, self.in_flight_max = 0.0, self._in_flight
            self._in_flight_since = time.monotonic()

    def __enter__(self) -> "SimulatedModelServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.scheduler.stop()
