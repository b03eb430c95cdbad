"""A scripted OpenAI-compatible server: the deterministic test double for the model.

It answers /v1/chat/completions by recognising which TurnForge step is asking (from the requested JSON schema) and
playing a competent, predictable part: the user asks for what its plan lists (naming each by the first words of its
tool's description, with the values) and closes when told to, the agent calls the tools the user's words name with
the values the user gave and then reports the results, and the judge finds everything fine.
Faults can be scripted per step (`overrides`) to test dead-lettering and retries.

Run standalone: python e2e-tests/fake_llm.py PORT
"""
from __future__ import annotations

import hashlib
import json
import random
import re
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

PAIR = re.compile(r"(\w[\w ]*?) = ([^,()]+?)(?=,|\)|$)")  # "last name = Ruiz": a parameter in words, its value
MAX_CALLS_PER_TURN = 6
STEP = re.compile(r"^\d+\. (.*)$")
STEP_NOTES = (" The person means ", " Found by the assistant", " The person wants to know: ")
MAX_LOOKUP_DEPTH = 3


def kind_of(schema: dict) -> str:
    props = set((schema or {}).get("properties", {}))
    if {"user_message", "is_task_complete"} <= props:
        return "user_turn"
    if props == {"reply"} or any("tool_calls" in branch.get("properties", {}) for branch in schema.get("anyOf", [])):
        return "agent_step"  # calls or a reply; past the step bound, a reply only
    if {"items", "judgment"} <= props:
        return "judge_verdict"
    if {"description", "success_criteria"} <= props:
        return "task_spec"
    if {"agrees", "problems"} <= props:
        return "wording_check"
    if {"returns", "fields"} <= props:
        return "output_schema"
    return "tool_output"


def instance_of(schema: dict):
    """A small valid instance of a JSON Schema (enough for the shapes TurnForge asks for)."""
    t = schema.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), "null")
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    if "anyOf" in schema:
        return instance_of(schema["anyOf"][0])
    if t == "object":
        return {k: instance_of(v) for k, v in schema.get("properties", {}).items()}
    if t == "array":
        return [instance_of(schema.get("items", {}))] * max(schema.get("minItems", 1), 1)
    if t == "integer":
        return 1
    if t == "number":
        return 1.5
    if t == "boolean":
        return True
    if t == "null":
        return None
    return "example"


def _cast(value: str, spec: dict):
    t = spec.get("type")
    t = next((x for x in t if x != "null"), "string") if isinstance(t, list) else t
    value = value.strip()
    try:
        if t == "integer":
            return int(float(value))
        if t == "number":
            return float(value)
    except ValueError:
        return value
    if t == "boolean":
        return value.lower() == "true"
    return value


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def phrase_of(description: str) -> str:
    """How the fake user names what it wants, and how the fake agent recognises the tool: the first ten words of the
    tool's description in runs of five with a word between them, shorter than what the user message check calls
    pasted text, long enough to tell "change the status of a customer" from "... of a subscription"."""
    described = words(description)
    return " so ".join(" ".join(described[i:i + 5]) for i in range(0, min(len(described), 10), 5))


def play_user(messages: list[dict], schema: dict) -> dict:
    """Words the plan in the last message's stage direction as a person might: each request names what to do and gives its values,
    which the fake agent reads back. Field names come spoken ("customer id 7"), as the plan gives them."""
    if "Your instruction:" in messages[0]["content"]:
        return play_instructed_user(messages)
    if schema.get("properties", {}).get("is_task_complete", {}).get("const") is True:
        return {"user_message": "That's everything sorted, thank you so much!", "is_task_complete": True}
    last = messages[-1]["content"]  # the plan comes as a stage direction after the agent's last words
    plan = last[last.find("(You are the customer."):] if "(You are the customer." in last else ""
    requests = []
    for line in plan.splitlines():
        if line.startswith("- "):
            description, _, values = line[2:].rpartition(" (") if " (" in line else (line[2:], "", "")
            given = f" ({values.rstrip(')')})" if values else ""
            requests.append(f"could you {phrase_of(description)} please{given}")
    opening = "Hi there! " if "first message" in plan else "Thanks! " if "Start by thanking" in plan else ""
    if "has not done" in plan:
        opening = "That isn't done yet. "
    return {"user_message": (opening + "; ".join(requests)) or "Hello, I need some help.", "is_task_complete": False}


def play_instructed_user(messages: list[dict]) -> dict:
    """The evaluation user: states its whole instruction first, and stops (###STOP###) after the agent's answer."""
    if not any(m["role"] == "assistant" for m in messages[1:]):
        system = messages[0]["content"]
        instruction = system.split("Your instruction:\n", 1)[1].split("\n\nHow you behave:", 1)[0]
        return {"user_message": instruction, "is_task_complete": False}
    return {"user_message": "Thanks, that's all. ###STOP###", "is_task_complete": True}


def tool_options(schema: dict) -> list[dict]:
    for branch in schema.get("anyOf", []):
        if "tool_calls" in branch.get("properties", {}):
            return branch["properties"]["tool_calls"]["items"]["anyOf"]
    return []


def spoken_values(request: str, parameters: dict) -> dict:
    """The values a request gives for the tool's parameters: "(customer id 7, status suspended)"."""
    inside = request[request.rfind("(") + 1:].rstrip(")")
    found = {}
    for piece in inside.split(", "):
        for name, spec in parameters.items():
            spoken = name.replace("_", " ") + " "
            if piece.startswith(spoken):
                found[name] = _cast(piece[len(spoken):], spec)
    return found


def _result_value(messages: list[dict], param: str, this_turn: bool = False):
    """A value the tools returned earlier (the latest first): how the agent learns a key the user does not know.
    `this_turn`: only since the user's last message (the user named a record anew, by what they know)."""
    start = max(i for i, m in enumerate(messages) if m["role"] == "user") if this_turn else 0
    for m in reversed(messages[start:]):
        if m["role"] != "tool":
            continue
        try:
            data = json.loads(m["content"])
        except (json.JSONDecodeError, TypeError):
            continue
        rows = data if isinstance(data, list) else [data]
        if rows and isinstance(rows[0], dict) and param in rows[0]:
            return rows[0][param]
    return None


def _names_a_record(request: str, props: dict) -> bool:
    """The request gives a value that is none of the tool's parameters: it names the record to act on by something
    else ("... (phone number +1-555-0101, status active)" for a change of the customer's status)."""
    if "(" not in request:
        return False
    pieces = request[request.rfind("(") + 1:].rstrip(")").split(", ")
    spoken = [name.replace("_", " ") for name in props]
    return any(not any(piece.startswith(name + " ") for name in spoken) for piece in pieces if piece.strip())


def _given_values(request: str, props: dict) -> dict:
    given = {k.strip().replace(" ", "_"): v for k, v in PAIR.findall(request)}
    arguments = {p: _cast(given[p], spec) for p, spec in props.items() if p in given}
    return arguments | {p: v for p, v in spoken_values(request, props).items() if p not in arguments}


def _wanted_calls(messages: list[dict], options: list[dict]) -> list[tuple[dict, list[str], str, bool]]:
    """Each request of the user's last message names one tool (by the start of its description) and carries the
    values the user gives; a value the user does not give is taken from what the tools returned so far. Of the tools
    a request could name, the one whose parameters it fills best. With each call: the parameters it still lacks
    (keys nothing has returned yet), the request's words, and whether its keys must come from this turn."""
    catalogue = {}
    for line in messages[0]["content"].splitlines():
        m = re.match(r"- (\w+)\(.*?\): (.*)$", line)
        if m:
            catalogue[m.group(1)] = phrase_of(m.group(2))
    user = next(m for m in reversed(messages) if m["role"] == "user")
    calls = []
    for request in user["content"].split("; "):
        said = " ".join(words(request))
        best = None
        for option in options:
            name = option["properties"]["name"].get("const")
            if name not in catalogue or catalogue[name] not in said:
                continue
            arguments_schema = option["properties"]["arguments"]
            arguments = _given_values(request, arguments_schema.get("properties", {}))
            # Values the request gives that are not this tool's name a record to find first ("the plan of the line
            # with phone number ..."): its keys come from this turn's lookups, not from earlier records.
            names_a_record = _names_a_record(request, arguments_schema.get("properties", {}))
            looked_up = {p: _result_value(messages, p, this_turn=names_a_record)
                         for p in arguments_schema.get("required", []) if p not in arguments}
            missing = [p for p, v in looked_up.items() if v is None]
            call = {"name": name, "arguments": arguments | {p: v for p, v in looked_up.items() if v is not None}}
            score = (not missing, len(arguments))
            if best is None or score > best[0]:
                best = (score, (call, missing, request, names_a_record))
        if best:
            calls.append(best[1])
    return calls


def _fillable(option: dict, messages: list[dict], request: str, this_turn: bool) -> dict | None:
    """The option's arguments from what the user said in `request` and what the tools returned, if all are there."""
    schema = option["properties"]["arguments"]
    arguments = _given_values(request, schema.get("properties", {}))
    for p in schema.get("required", []):
        if p not in arguments:
            value = _result_value(messages, p, this_turn)
            if value is None:
                return None
            arguments[p] = value
    return arguments


def _is_lookup(name: str) -> bool:
    return name.split("_", 1)[0] in ("get", "list", "search", "find")


def _lookup_for(missing: list[str], options: list[dict], messages: list[dict], request: str, made: list[dict],
                this_turn: bool, depth: int = 0) -> dict | None:
    """A read that brings a missing key closer: a lookup named after what the key identifies (invoice_id: a tool
    about invoices) that can run now, else one whose own missing keys such a lookup can find. How a scripted agent
    discovers keys the user never says: search by what the user gave, then follow the references."""
    if depth >= MAX_LOOKUP_DEPTH:
        return None
    lookups = [o for o in options if _is_lookup(o["properties"]["name"].get("const", ""))]
    for param in missing:
        stem = param[:-3] if param.endswith("_id") else param
        about = [o for o in lookups if stem in o["properties"]["name"]["const"]]
        for option in about:
            arguments = _fillable(option, messages, request, this_turn)
            call = {"name": option["properties"]["name"]["const"], "arguments": arguments}
            if arguments is not None and call not in made:
                return call
        for option in about:
            needs = [p for p in option["properties"]["arguments"].get("required", [])
                     if p not in _given_values(request, option["properties"]["arguments"].get("properties", {}))
                     and _result_value(messages, p, this_turn) is None and p != param]
            found = _lookup_for(needs, options, messages, request, made, this_turn, depth + 1) if needs else None
            if found:
                return found
    if depth:
        return None
    # Nothing is named after the key: start from what the user gave (a search by it), then single records, then lists.
    ranked = sorted(lookups, key=lambda o: ("get_", "search_", "find_", "list_").index(
        o["properties"]["name"]["const"].split("_", 1)[0] + "_"))
    for option in ranked:
        arguments = _fillable(option, messages, request, this_turn)
        call = {"name": option["properties"]["name"]["const"], "arguments": arguments}
        if arguments is not None and call not in made:
            return call
    return None


def _calls_since_user(messages: list[dict]) -> list[dict]:
    last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
    return [{"name": c["function"]["name"], "arguments": json.loads(c["function"]["arguments"] or "{}")}
            for m in messages[last_user:] for c in m.get("tool_calls") or []]


def play_agent(messages: list[dict], schema: dict) -> dict:
    """Tool calls for what the user's last message asks (each request names its tool by the first words of the
    tool's description); a key the user does not know is found first by a lookup and taken from its result; a reply
    once every wanted call ran."""
    options = tool_options(schema)
    wanted = _wanted_calls(messages, options) if options else []
    made = _calls_since_user(messages)
    calls = []
    if len(made) < MAX_CALLS_PER_TURN:
        calls = [c for c, missing, _, _ in wanted if not missing and c not in made]
        blocked = [w for w in wanted if w[1]]
        if not calls and blocked:
            _, missing, request, this_turn = blocked[0]
            lookup = _lookup_for(missing, options, messages, request, made, this_turn)
            calls = [lookup] if lookup else []
    if not calls:
        if messages[-1]["role"] == "user":
            return {"reply": "Could you tell me a bit more about what you need?"}
        results = [m["content"] for m in messages if m["role"] == "tool"][-3:]
        limit = (schema.get("properties") or schema["anyOf"][1]["properties"])["reply"].get("maxLength", 800)
        reply = "Here is what I found: " + " | ".join(results)
        if len(reply) > limit:  # cut between fields, never inside a value
            reply = reply[:reply.rfind(", ", 0, limit)]
        return {"reply": reply}
    options_schema = next(b for b in schema["anyOf"] if "tool_calls" in b.get("properties", {}))
    return {"tool_calls": calls[:options_schema["properties"]["tool_calls"].get("maxItems", len(calls))]}


def _request_text(line: str) -> str:
    """A request's line in the prompt without the notes after its values."""
    cut = min([line.find(note) for note in STEP_NOTES if note in line] or [len(line)])
    return line[:cut]


def phrase_task(messages: list[dict]) -> dict:
    """The steps as subtasks, each in the words the request gave it, without the looked-up keys."""
    steps = [_request_text(m.group(1)) for line in messages[-1]["content"].splitlines() if (m := STEP.match(line))]
    return {"description": "The person wants the assistant to look up the records named and make the change asked.",
            "subtasks": steps, "success_criteria": ["The named records are looked up with the right ids."],
            "checkpoints": ["The lookup tool is called."]}


def play_judge(schema: dict) -> dict:
    n = schema["properties"]["items"]["minItems"]
    return {"items": [{"category": "Critical", "satisfied": True}] * n, "judgment": "valid",
            "reasoning": "The agent called the required tools and reported their results."}


def _schema_of(body: dict) -> dict:
    fmt = body.get("response_format") or {}
    return fmt.get("schema") or (fmt.get("json_schema") or {}).get("schema") or {}


def answer(body: dict, overrides: dict[str, Callable[[dict], str]]) -> str:
    schema = _schema_of(body)
    kind = kind_of(schema)
    if kind in overrides:
        return overrides[kind](body)
    messages = body["messages"]
    if kind == "user_turn":
        data = play_user(messages, schema)
    elif kind == "agent_step":
        data = play_agent(messages, schema)
    elif kind == "judge_verdict":
        data = play_judge(schema)
    elif kind == "task_spec":
        data = phrase_task(messages)
    elif kind == "wording_check":
        data = {"agrees": True, "problems": []}
    elif kind == "output_schema":
        data = {"returns": "one_record", "fields": [{"name": "id", "type": "integer"}]}
    else:
        data = instance_of(schema)
    return json.dumps(data)


TRANSIENT_FAULTS = ("http_429", "http_500", "timeout")
BAD_ANSWER_FAULTS = ("empty_completion", "malformed_json")
PERMANENT_FAULTS = ("context_overflow",)


@dataclass
class FaultPlan:
    """Rates (0..1) at which the fake misbehaves like a real model server, decided per request.

    Context overflow is decided by the request's content (the same request always overflows, as a real one would);
    the others are drawn at random per request. `stall_marker`: requests of the given kinds whose messages contain
    it hang for `stall_s` (a trajectory that cannot move, to test deadlines)."""

    http_429: float = 0.0
    http_500: float = 0.0
    timeout: float = 0.0
    empty_completion: float = 0.0
    malformed_json: float = 0.0
    context_overflow: float = 0.0
    timeout_s: float = 5.0  # how long a "timeout" answer takes: longer than the client waits
    stall_marker: str = ""
    stall_kinds: tuple[str, ...] = ("user_turn", "agent_step")
    stall_s: float = 60.0
    seed: int = 1
    rng: random.Random = field(init=False)

    def __post_init__(self):
        self.rng = random.Random(self.seed)

    def draw(self, fingerprint: str) -> str:
        if self.context_overflow and int(fingerprint[:8], 16) / 0xFFFFFFFF < self.context_overflow:
            return "context_overflow"
        roll = self.rng.random()
        for kind in TRANSIENT_FAULTS + BAD_ANSWER_FAULTS:
            rate = getattr(self, kind)
            if roll < rate:
                return kind
            roll -= rate
        return ""


def fingerprint(body: dict) -> str:
    """Identity of a request's content: a retry or re-ask of the same request has the same fingerprint."""
    return hashlib.sha1(json.dumps([body.get("messages"), body.get("response_format")], sort_keys=True,
                                   default=str).encode()).hexdigest()


class FakeLLM:
    """Start with `with FakeLLM() as fake: fake.base_url`. `overrides[kind] = fn(body) -> content` scripts faults."""

    def __init__(self, port: int = 0):
        self.overrides: dict[str, Callable[[dict], str]] = {}
        self.delay_s = 0.0  # latency per completion, to keep work in flight while a test injects faults
        self.fail_next: list[tuple[int, str]] = []  # (HTTP status, error message) answered before any content
        self.requests: list[dict] = []
        self.faults = FaultPlan()
        self.record_requests = True  # off for long fault runs: the per-request log below is enough
        self._lock = threading.Lock()
        # Accounting, for the fault suite: requests per fingerprint and per entity (trajectory or seed), faults
        # answered by kind, and for each faulted fingerprint whether the same request came again later.
        self.by_fingerprint: Counter[str] = Counter()
        self.by_entity: Counter[str] = Counter()
        self.by_sender: Counter[tuple[str, str]] = Counter()  # (fingerprint, sending process) -> requests
        self.injected: Counter[str] = Counter()
        self.faulted: dict[str, list[tuple[str, int]]] = defaultdict(list)  # fingerprint -> [(kind, request no.)]
        self.stalled = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._send(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                entity = self.headers.get("X-TurnForge-Entity", "")
                # Two trajectories can send the very same prompt (same tasks, same data): counted apart, so that
                # "sent again" means the same trajectory asked again. The fault drawn depends on content alone.
                content = fingerprint(body)
                fp = f"{entity}|{content}"
                plan = fake.faults
                if plan.stall_marker and plan.stall_marker in json.dumps(body.get("messages")) and \
                        kind_of(_schema_of(body)) in plan.stall_kinds:
                    with fake._lock:
                        fake.stalled += 1
                    time.sleep(plan.stall_s)  # and then answers nothing: the client has given up long ago
                    return
                with fake._lock:
                    if fake.record_requests:
                        fake.requests.append(body)
                    fake.by_fingerprint[fp] += 1
                    fake.by_entity[entity] += 1
                    fake.by_sender[(fp, self.headers.get("X-TurnForge-Sender", ""))] += 1
                    fault = fake.faults.draw(content)
                    if fault:
                        fake.injected[fault] += 1
                        fake.faulted[fp].append((fault, fake.by_fingerprint[fp]))
                if fake.delay_s:
                    time.sleep(fake.delay_s)
                if fake.fail_next:
                    status, message = fake.fail_next.pop(0)
                    self._send(status, {"error": {"message": message}})
                    return
                if fault == "http_429":
                    self._send(429, {"error": {"message": "Rate limit reached; retry later", "type": "rate_limit"}})
                    return
                if fault == "http_500":
                    self._send(500, {"error": {"message": "internal server error"}})
                    return
                if fault == "timeout":
                    time.sleep(plan.timeout_s)
                    return
                if fault == "context_overflow":
                    self._send(400, {"error": {"message": "This model's maximum context length is 8192 tokens. However,"
                                                          " your messages resulted in 9000 tokens.",
                                               "type": "invalid_request_error", "code": "context_length_exceeded"}})
                    return
                try:
                    content = answer(body, fake.overrides)
                    if fault == "empty_completion":
                        content = ""
                    elif fault == "malformed_json":
                        content = content[: max(len(content) // 2, 1)] + ' ,"oops'  # cut off mid-value, as a truncated answer
                except Exception as e:  # noqa: BLE001 - a script bug shows up as a 500 in the client's logs
                    self._send(500, {"error": {"message": f"fake LLM script error: {e}"}})
                    return
                prompt_tokens = sum(len(str(m.get("content", ""))) for m in body.get("messages", [])) // 4
                self._send(200, {
                    "id": "chatcmpl-fake", "object": "chat.completion", "model": body.get("model", "fake"),
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": content}}],
                    "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(content) // 4,
                              "total_tokens": prompt_tokens + len(content) // 4},
                })

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FakeLLM":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 18081
    with FakeLLM(port) as fake:
        print(f"fake LLM on {fake.base_url}", flush=True)
        threading.Event().wait()
