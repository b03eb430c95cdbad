"""schema-predictor's pure logic: type consistency across a toolset.

A field name is one entity across the whole toolset: `customer_id` that is an integer in one tool's input stays an
integer in every other tool's input and output. The first type seen (inputs first, in tool order) is canonical;
later conflicting types are repaired to it and recorded.
"""
from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass
class Conflict:
    tool: str
    field: str
    where: str  # "input" or "output"
    found: str
    canonical: str

    def describe(self) -> str:
        return f"{self.tool} {self.where} field '{self.field}': {self.found} -> {self.canonical}"


def _walk_fields(schema: dict):
    """Yield (name, property schema) for every named field, at any depth."""
    if not isinstance(schema, dict):
        return
    for name, prop in (schema.get("properties") or {}).items():
        if isinstance(prop, dict):
            yield name, prop
            yield from _walk_fields(prop)
    if isinstance(schema.get("items"), dict):
        yield from _walk_fields(schema["items"])


def _type_of(prop: dict) -> str | None:
    t = prop.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), None)
    return t if isinstance(t, str) and t not in ("object", "array") else None


def _set_type(prop: dict, new: str) -> None:
    if isinstance(prop.get("type"), list):
        prop["type"] = [new if x != "null" else x for x in prop["type"]]
    else:
        prop["type"] = new


def enforce_type_consistency(tools: list[tuple[str, dict, dict]]) -> tuple[list[tuple[str, dict, dict]], list[Conflict]]:
    """tools: (name, parameters schema, output schema). Returns repaired copies and the conflicts found."""
    canonical: dict[str, str] = {}
    repaired = [(n, json.loads(json.dumps(p)), json.loads(json.dumps(o))) for n, p, o in tools]
    conflicts: list[Conflict] = []
    passes = [("input", 1), ("output", 2)]  # all inputs first: the argument types users pass are the anchor
    for where, index in passes:
        for entry in repaired:
            for field, prop in _walk_fields(entry[index]):
                t = _type_of(prop)
                if t is None:
                    continue
                if field not in canonical:
                    canonical[field] = t
                elif canonical[field] != t and not _compatible(canonical[field], t):
                    conflicts.append(Conflict(entry[0], field, where, t, canonical[field]))
                    _set_type(prop, canonical[field])
    return repaired, conflicts


def _compatible(a: str, b: str) -> bool:
    # An integer is a number: a count and an amount may share a name without being one entity.
    return {a, b} == {"integer", "number"}
