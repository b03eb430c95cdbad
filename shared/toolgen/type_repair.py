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


def field_entity(tool: str, where: str, field: str) -> str:
    """Simulated tools: a field name is one entity across the toolset."""
    return field


def sql_field_entity(columns_of: dict[str, tuple[dict, dict]]):
    """SQL tools: a field is the table column it is bound to or read from ("orders.customer_id"); a computed field
    (a count, a label) is its tool's own. Two tables may use one name for different things (car_1's
    `countries.continent` is an id, `continents.continent` a name): the database, not the name, says the type."""
    def entity(tool: str, where: str, field: str) -> str:
        inputs, outputs = columns_of.get(tool, ({}, {}))
        column = (inputs if where == "input" else outputs).get(field)
        return column or f"{tool}:{where}:{field}"
    return entity


def enforce_type_consistency(tools: list[tuple[str, dict, dict]], entity_of=field_entity
                             ) -> tuple[list[tuple[str, dict, dict]], list[Conflict]]:
    """tools: (name, parameters schema, output schema). Returns repaired copies and the conflicts found.

    `entity_of(tool, "input"|"output", field)` names what a field stands for; every occurrence of one entity must
    have one type. The first type seen (inputs first, in tool order) is canonical; later ones are repaired to it."""
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
                key = entity_of(entry[0], where, field)
                if key not in canonical:
                    canonical[key] = t
                elif canonical[key] != t and not _compatible(canonical[key], t):
                    conflicts.append(Conflict(entry[0], field, where, t, canonical[key]))
                    _set_type(prop, canonical[key])
    return repaired, conflicts


def name_clashes(tools: list[tuple[str, dict, dict]]) -> dict[str, list[str]]:
    """Field names used with incompatible types across a toolset (for SQL tools: different columns, one name)."""
    seen: dict[str, set[str]] = {}
    for _, params, output in tools:
        for schema in (params, output):
            for field, prop in _walk_fields(schema):
                t = _type_of(prop)
                if t is not None:
                    seen.setdefault(field, set()).add("number" if t == "integer" else t)
    return {f: sorted(ts) for f, ts in seen.items() if len(ts) > 1}


def _compatible(a: str, b: str) -> bool:
    # An integer is a number: a count and an amount may share a name without being one entity.
    return {a, b} == {"integer", "number"}
