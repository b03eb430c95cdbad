"""Output schemas of tools without a database, predicted by the model one tool after another in one conversation.

The conversation keeps the last few exchanges, and every request lists the fields decided so far with their types,
so a field seen before keeps its type even after older turns drop out of a small model's context. The shape is
mechanical where the tool's declared effect says it (single_row -> one record, else a list); the model decides only
when the effect's kind is unknown. What the model still gets wrong is left to enforce_type_consistency.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from shared.contracts import EffectKind, Tool
from shared.env.tool_spec import tool_parameters
from shared.runtime.errors import PermanentError, TransientError
from shared.runtime.llm import ModelCall

HISTORY_EXCHANGES = 3  # request/answer pairs kept in the conversation
MAX_KNOWN_FIELDS = 40

FIELD_TYPES = ["string", "integer", "number", "boolean"]


@dataclass
class PredictionLog:
    shape_repaired: list[str] = field(default_factory=list)  # tools whose returned shape was set by their effect
    failed: list[str] = field(default_factory=list)  # tools the model gave no usable answer for
    calls: int = 0


class OutputSchemaPrediction(ModelCall[dict]):
    """What one tool returns ({"returns": one_record | list_of_records, "fields": [{name, type}]}), asked as the
    next turn of the conversation about the tools before it."""

    name = "output_schema"
    temperature = 0.2
    max_tokens = 300

    SYSTEM = (
        "You design the JSON returned by tools of a {domain} application. For each tool you are shown, list the "
        "fields its result has. A tool that searches or lists returns many records; a tool that fetches, creates, "
        "changes or deletes one thing returns one record. Reuse the exact name and type of any field you already "
        "used for an earlier tool or that appears in the tool's parameters (an id that was an integer stays an "
        "integer). Use snake_case names."
    )
    # Bounded so a small model cannot loop (at most 12 fields); names are normalised afterwards rather than
    # constrained by a pattern, which makes a constrained decoder slow.
    SCHEMA = {
        "type": "object",
        "properties": {
            "returns": {"type": "string", "enum": ["one_record", "list_of_records"]},
            "fields": {
                "type": "array",
                "minItems": 1,
                "maxItems": 12,
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "type": {"type": "string", "enum": FIELD_TYPES},
                    },
                    "required": ["name", "type"],
                },
            },
        },
        "required": ["returns", "fields"],
    }

    def __init__(self, domain: str, tool, known: dict[str, str], history: list[dict]):
        self.domain = domain
        self.tool = tool
        self.known = dict(known)  # as it was when asked: the request is kept in the history
        self.history = history

    def request(self) -> str:
        """The fields decided so far, then the tool: the user turn, kept in the history for later tools."""
        tool = self.tool
        request = (f"Tool: {tool.name}\nDescription: {tool.description}\n"
                   f"Parameters: {json.dumps(tool_parameters(tool))}\nWhat does it return?")
        if not self.known:
            return request
        items = list(self.known.items())[-MAX_KNOWN_FIELDS:]
        return ("Fields already defined (reuse these names and types): " + ", ".join(f"{n}: {t}" for n, t in items)
                + "\n" + request)

    def messages(self) -> list[dict]:
        return ([{"role": "system", "content": self.SYSTEM.format(domain=self.domain)}] + self.history
                + [{"role": "user", "content": self.request()}])

    def schema(self) -> dict:
        return self.SCHEMA

    def parse(self, data: dict) -> dict:
        return data


def declared_shape(tool: Tool) -> str | None:
    """'one_record' or 'list_of_records' as the tool's effect declares it; None when its kind is not known."""
    if tool.effect.kind == EffectKind.EFFECT_KIND_UNSPECIFIED:
        return None
    return "one_record" if tool.effect.single_row else "list_of_records"


def field_name(raw: str) -> str:
    """snake_case, as the prompt asks: 'Customer ID' -> 'customer_id'."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", raw.strip())
    name = re.sub(r"[^a-z0-9]+", "_", spaced.lower()).strip("_")[:40]
    return name if name and name[0].isalpha() else ""


def prediction_to_schema(prediction: dict) -> dict:
    properties = {}
    for predicted in prediction["fields"]:
        name = field_name(predicted["name"])
        if name:
            properties.setdefault(name, {"type": predicted["type"]})
    record = {"type": "object", "properties": properties}
    if prediction["returns"] == "list_of_records":
        return {"type": "array", "items": record}
    return record


def predict_output_schemas(llm, domain: str, tools, log: PredictionLog | None = None) -> list[dict]:
    """One output JSON Schema per tool (Tool protos), in order."""
    log = log or PredictionLog()
    known: dict[str, str] = {}
    exchanges: list[list[dict]] = []
    schemas = []
    for tool in tools:
        params = tool_parameters(tool).get("properties", {})
        for name, prop in params.items():
            if isinstance(prop, dict) and isinstance(prop.get("type"), str):
                known.setdefault(name, prop["type"])
        call = OutputSchemaPrediction(domain, tool, known, [m for ex in exchanges[-HISTORY_EXCHANGES:] for m in ex])
        log.calls += 1
        try:
            prediction = call.ask(llm).value
        except (PermanentError, TransientError):
            log.failed.append(tool.name)
            prediction = {"returns": declared_shape(tool) or "one_record", "fields": []}
        shape = declared_shape(tool)
        if shape and prediction["returns"] != shape:
            log.shape_repaired.append(tool.name)
            prediction = dict(prediction, returns=shape)
        exchanges.append([{"role": "user", "content": call.request()},
                          {"role": "assistant", "content": json.dumps(prediction)}])
        for f in prediction["fields"]:
            if field_name(f["name"]):
                known.setdefault(field_name(f["name"]), f["type"])
        schemas.append(prediction_to_schema(prediction))
    return schemas


def output_fields(schema: dict) -> dict[str, str]:
    """Field name -> JSON type of a record (the object itself, or an array's items)."""
    record = schema.get("items", schema) if schema.get("type") == "array" else schema
    out = {}
    for name, prop in (record.get("properties") or {}).items():
        t = prop.get("type") if isinstance(prop, dict) else None
        if isinstance(t, list):
            t = next((x for x in t if x != "null"), None)
        if isinstance(t, str):
            out[name] = t
    return out


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def agreement_with_truth(predicted: dict[str, dict], truth: dict[str, dict[str, str]]) -> dict:
    """Field-name recall and type agreement of predicted output schemas against known output fields.

    predicted: tool -> output schema; truth: tool -> {field: JSON type}. A field counts as recalled when a
    predicted field has the same name up to case and separators; type agreement is over recalled fields
    (integer and number count as agreeing)."""
    total = recalled = same_type = 0
    tools = 0
    for tool, fields in truth.items():
        if tool not in predicted:
            continue
        tools += 1
        got = {_norm(n): t for n, t in output_fields(predicted[tool]).items()}
        for name, t in fields.items():
            total += 1
            if _norm(name) in got:
                recalled += 1
                p = got[_norm(name)]
                same_type += p == t or {p, t} == {"integer", "number"}
    return {"tools_with_known_outputs": tools, "known_fields": total, "recalled_fields": recalled,
            "field_name_recall": round(recalled / total, 3) if total else None,
            "type_agreement": round(same_type / recalled, 3) if recalled else None}
