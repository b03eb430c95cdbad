"""What a tool declares, read one way everywhere: its parameters and its effect.

A tool's effect (Tool.effect) is set where the tool is made. Tool-synth's SQL tools know it from their statement and
its verification; seed tools have no SQL, and effect_of_seed_tool reads theirs from the verb their name starts with:
the one place an effect is inferred instead of known.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from shared.contracts import EFFECT_KIND_OF_NAME, EffectKind, SqlBinding, Tool, ToolEffect


@dataclass(frozen=True)
class VerbGroup:
    """Verbs that mean the same operation (the first is the canonical one) and what a tool named with them does."""

    verbs: tuple[str, ...]
    kind: str  # an EFFECT_KIND_OF_NAME key
    single_row: bool


# find/query sit with search: seed tools named so (findRestaurants, queryOrders) answer lists.
VERB_GROUPS = [
    VerbGroup(("get", "fetch", "retrieve", "lookup", "read", "show", "view", "check"), "read", True),
    VerbGroup(("search", "list", "find", "query", "browse", "filter"), "read", False),
    VerbGroup(("create", "add", "new", "make", "register", "book", "schedule", "insert", "submit", "place"),
              "insert", True),
    VerbGroup(("update", "modify", "change", "edit", "set", "reschedule", "adjust"), "update", True),
    VerbGroup(("delete", "remove", "cancel", "drop"), "delete", True),
]


def tool_parameters(tool: Tool) -> dict:
    """The JSON Schema of the tool's arguments (an empty schema when it declares none)."""
    return json.loads(tool.parameters_json or "{}")


def mutates(tool: Tool) -> bool:
    """Whether calling the tool may change data: anything but a declared read."""
    return tool.effect.kind != EffectKind.EFFECT_KIND_READ


def name_words(name: str) -> list[str]:
    """getPlanUsage / get_plan_usage -> ['get', 'plan', 'usage']."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


def verb_group(verb: str) -> VerbGroup | None:
    return next((g for g in VERB_GROUPS if verb in g.verbs), None)


def effect_of_seed_tool(name: str) -> ToolEffect:
    """The effect of a tool without SQL, from the verb its name starts with (get_bill, createOrder, cancel_plan).

    A seed spec says nothing else about what its tool does. A verb of no VERB_GROUPS leaves the kind unspecified,
    which readers treat as a tool that may change data (see mutates)."""
    words = name_words(name)
    group = verb_group(words[0]) if words else None
    if group is None:
        return ToolEffect()
    return ToolEffect(kind=EFFECT_KIND_OF_NAME[group.kind], single_row=group.single_row)


RAW_SQL_TOOL = "execute_sql"
RAW_SQL_ARGUMENT = "query"
# A read's rows (no column is known before the query is), or how many rows a write touched.
RAW_SQL_OUTPUT_SCHEMA = {"anyOf": [{"type": "array", "items": {"type": "object"}},
                                   {"type": "object", "properties": {"rows_affected": {"type": "integer"}},
                                    "required": ["rows_affected"]}]}


def raw_sql_tool() -> Tool:
    """DySQL-Bench's one tool: any single statement on the domain's tables, as the agent writes it.

    Its effect kind is unspecified (a statement may read or write), so every reader treats it as possibly writing."""
    parameters = {"type": "object", "properties": {RAW_SQL_ARGUMENT: {
        "type": "string", "description": "one PostgreSQL statement (SELECT, INSERT, UPDATE or DELETE)"}},
        "required": [RAW_SQL_ARGUMENT], "additionalProperties": False}
    return Tool(name=RAW_SQL_TOOL, description="Run one SQL statement on the database and return its rows.",
                parameters_json=json.dumps(parameters), output_schema_json=json.dumps(RAW_SQL_OUTPUT_SCHEMA),
                sql=SqlBinding(raw_query=True), effect=ToolEffect())
