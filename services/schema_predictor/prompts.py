"""Prompt and answer schema for predicting a simulated tool's output schema."""
from __future__ import annotations

import json

PREDICT_SYSTEM = (
    "You design the JSON returned by tools of a {domain} application. For each tool you are shown, list the fields "
    "its result has. A tool that searches or lists returns many records; a tool that fetches, creates, changes or "
    "deletes one thing returns one record. Reuse the exact name and type of any field you already used for an "
    "earlier tool or that appears in the tool's parameters (an id that was an integer stays an integer). "
    "Use snake_case names."
)

FIELD_TYPES = ["string", "integer", "number", "boolean"]

# Bounded so a small model cannot loop: at most 12 fields, short names.
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
                    "name": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,39}$"},
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
            f"Parameters: {json.dumps(json.loads(tool.parameters_json or '{}'))}\nWhat does it return?")


def prediction_to_schema(tool_name: str, prediction: dict) -> dict:
    properties = {}
    for field in prediction["fields"]:
        properties.setdefault(field["name"], {"type": field["type"]})
    record = {"type": "object", "properties": properties}
    if prediction["returns"] == "list_of_records":
        return {"type": "array", "items": record}
    return record
