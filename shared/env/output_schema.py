"""A SQL tool's output JSON Schema, derived from its executed statement's result columns and PostgreSQL types."""
from __future__ import annotations

from typing import Iterable

JSON_OF_PG_TYPE = {
    "int2": ("integer", None), "int4": ("integer", None), "int8": ("integer", None),
    "numeric": ("number", None), "float4": ("number", None), "float8": ("number", None),
    "bool": ("boolean", None),
    "date": ("string", "date"), "timestamp": ("string", "date-time"), "timestamptz": ("string", "date-time"),
    "time": ("string", "time"), "interval": ("string", "duration"), "uuid": ("string", "uuid"),
    "text": ("string", None), "varchar": ("string", None), "bpchar": ("string", None), "name": ("string", None),
}


def json_schema_for_result(
    columns: list[tuple[str, str]],
    *,
    single_row: bool = False,
    nullable: Iterable[str] | None = None,
) -> dict:
    """The tool's output JSON Schema from its result columns.

    A tool whose effect is single_row (a lookup by key, a write) answers one record; any other an array of them.
    `nullable` names the columns that may be NULL; None means any column may (a result description
    alone cannot tell).
    """
    may_be_null = None if nullable is None else set(nullable)
    properties = {}
    for name, pg_type in columns:
        json_type, fmt = JSON_OF_PG_TYPE.get(pg_type.lower(), ("string", None))
        prop: dict = {"type": [json_type, "null"] if may_be_null is None or name in may_be_null else json_type}
        if fmt:
            prop["format"] = fmt
        properties[name] = prop
    if single_row:
        # A lookup or write that finds nothing answers {"found": false}: that answer stays schema-valid.
        properties["found"] = {"type": "boolean"}
        return {"type": "object", "properties": properties}
    return {"type": "array", "items": {"type": "object", "properties": properties,
                                       "required": [name for name, _ in columns]}}
