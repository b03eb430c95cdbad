"""Seed tool specs from files: OpenAI function specs, or Seal-Tools lines (api_name, api_description, parameters)."""
from __future__ import annotations

import json
from pathlib import Path

from shared.contracts import Tool
from shared.env.tool_spec import effect_of_seed_tool

SEAL_TYPES = {"str": "string", "string": "string", "int": "integer", "integer": "integer", "float": "number",
              "number": "number", "bool": "boolean", "boolean": "boolean", "list": "array", "array": "array",
              "dict": "object", "object": "object"}


def _read_entries(path: Path) -> list[dict]:
    text = path.read_text()
    stripped = text.lstrip()
    if stripped.startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _from_seal(entry: dict) -> Tool:
    properties = {}
    for name, spec in (entry.get("parameters") or {}).items():
        prop = {"type": SEAL_TYPES.get(str(spec.get("type", "str")).lower(), "string")}
        if spec.get("description"):
            prop["description"] = spec["description"]
        if prop["type"] == "array":
            prop["items"] = {"type": "string"}
        properties[name] = prop
    parameters = {"type": "object", "properties": properties,
                  "required": [r for r in entry.get("required", []) if r in properties]}
    return Tool(name=entry["api_name"], description=entry.get("api_description", ""),
                parameters_json=json.dumps(parameters), effect=effect_of_seed_tool(entry["api_name"]))


def _from_openai(entry: dict) -> Tool:
    fn = entry.get("function", entry)
    return Tool(name=fn["name"], description=fn.get("description", ""),
                parameters_json=json.dumps(fn.get("parameters") or {"type": "object", "properties": {}}),
                effect=effect_of_seed_tool(fn["name"]))


def load_seed_tools(path: str | Path, *, field: str = "", limit: int = 0) -> list[Tool]:
    """Tools from a JSON list or JSONL file; `field` keeps Seal-Tools entries whose field starts with it."""
    tools = []
    for entry in _read_entries(Path(path)):
        if "api_name" in entry:
            if field and not str(entry.get("field", "")).startswith(field):
                continue
            tools.append(_from_seal(entry))
        else:
            tools.append(_from_openai(entry))
        if limit and len(tools) >= limit:
            break
    return tools


def load_seed_responses(path: str | Path, *, field: str = "", limit: int = 0) -> dict[str, dict[str, str]]:
    """Seal-Tools' real output fields (`responses`) per tool, as JSON types: the ground truth for output schemas.

    Takes the same `field` and `limit` as load_seed_tools, so it covers the same tools; tools without
    `responses` (OpenAI specs) are absent."""
    responses: dict[str, dict[str, str]] = {}
    taken = 0
    for entry in _read_entries(Path(path)):
        if "api_name" not in entry:
            taken += 1
        else:
            if field and not str(entry.get("field", "")).startswith(field):
                continue
            taken += 1
            if entry.get("responses"):
                responses[entry["api_name"]] = {
                    name: SEAL_TYPES.get(str(spec.get("type", "str")).lower(), "string")
                    for name, spec in entry["responses"].items()}
        if limit and taken >= limit:
            break
    return responses
