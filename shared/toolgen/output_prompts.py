"""Prompt and answer schema for predicting a simulated tool's output schema."""
from __future__ import annotations

import json
import re

from shared.env.tool_spec import tool_parameters

PREDICT_SYSTEM = (
    "You design the JSON returned by tools of a {domain} application. For each tool you are shown, list the fields "
    "its result has. A tool that searches or lists returns many records; a tool that fetches, creates, changes or "
    "deletes one thing returns one record. Reuse the exact name and type of any field you already used for an "
    "earlier tool or that appears in the tool's parameters (an id that was an integer stays an integer). "
    "Use snake_case names."
)

FIELD_TYPES = ["string", "integer", "number", "boolean"]

# Bounded so a small model cannot loop (at most 12 fields); names are normalised afterwards rather than
# constrained by a pattern, which makes a constrained decoder slow.
PREDICTION_SCHEMA = {
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


def predict_request(tool) -> str:
    return (f"Tool: {tool.name}\nDescription: {tool.description}\n"
            f"Parameters: {json.dumps(tool_parameters(tool))}\nWhat does it return?")


def field_name(raw: str) -> str:
    """snake_case, as the answer schema asks: 'Customer ID' -> 'customer_id'."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", raw.strip())
    name = re.sub(r"[^a-z0-9]+", "_", spaced.lower()).strip("_")[:40]
    return name if name and name[0].isalpha() else ""


def prediction_to_schema(tool_name: str, prediction: dict) -> dict:
    properties = {}
    for field in prediction["fields"]:
        name = field_name(field["name"])
        if name:
            properties.setdefault(name, {"type": field["type"]})
    record = {"type": "object", "properties": properties}
    if prediction["returns"] == "list_of_records":
        return {"type": "array", "items": record}
    return record
