"""Prompts and answer schemas of tool-synth's model calls (written for this project).

Answer schemas stay small and flat (no patterns or length limits): a constrained decoder turns every limit into
grammar states, which makes a small local model slow; names and SQL are checked mechanically afterwards instead.
"""
from __future__ import annotations

import json

# --- SQL tools from a database -------------------------------------------------------------------

SQL_TOOLS_SYSTEM = (
    "You design tools for an assistant that works on a PostgreSQL database. Each tool is one SQL statement with "
    "named parameters written as :parameter_name (never put values into the SQL text). Use only the tables and "
    "columns shown, unqualified. Allowed: one SELECT (lookups, searches with ILIKE, JOINs along the foreign keys, "
    "GROUP BY with COUNT/SUM/AVG, ORDER BY, LIMIT :limit, CASE WHEN), or one INSERT, UPDATE or DELETE with "
    "RETURNING *. Names are snake_case and start with get_, search_, list_, count_, create_, update_ or delete_."
)

SQL_TOOLS_EXAMPLE = {
    "name": "list_top_products_by_price",
    "description": "List the most expensive products of a category, most expensive first.",
    "sql": "SELECT product_id, title, price FROM products WHERE category = :category ORDER BY price DESC LIMIT :limit",
}

SQL_TOOLS_SCHEMA = {
    "type": "object",
    "properties": {
        "tools": {
            "type": "array",
            "minItems": 1,
            "maxItems": 3,
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "description": {"type": "string"},
                               "sql": {"type": "string"}},
                "required": ["name", "description", "sql"],
            },
        }
    },
    "required": ["tools"],
}


def sql_tools_request(tables_text: str, asks: list[str], *, with_example: bool = False) -> str:
    """The request; the answer format is enforced by the schema, so the example is optional: a small model
    tends to copy it (table and all) instead of writing SQL for the tables shown."""
    text = (f"Tables:\n{tables_text}\n\nPropose {len(asks)} tools that use only these tables: "
            + "; ".join(asks) + ".")
    if with_example:
        text += f"\nAnswer format example (another database): {json.dumps({'tools': [SQL_TOOLS_EXAMPLE]})}"
    return text


# --- tools from seed tools (simulated path) -------------------------------------------------------

QUESTIONS_SYSTEM = (
    "You write realistic requests that users of a {domain} service send to an assistant with tools. Each request "
    "names concrete things: people, places, dates, amounts, ids. Mix short single-step requests with requests that "
    "need several steps, and write as different kinds of users (customers, staff, managers)."
)

QUESTIONS_SCHEMA = {
    "type": "object",
    "properties": {"questions": {"type": "array", "minItems": 20, "maxItems": 30, "items": {"type": "string"}}},
    "required": ["questions"],
}


def questions_request(tools_text: str, count: int) -> str:
    return (f"Tools the service already has:\n{tools_text}\n\nWrite {count} different user requests that such "
            "tools (or close relatives of them) would answer.")


PARAM_TYPES = ["string", "integer", "number", "boolean"]

_PARAM = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "type": {"type": "string", "enum": PARAM_TYPES},
        "description": {"type": "string"},
        "required": {"type": "boolean"},
        "enum": {"type": "array", "maxItems": 8, "items": {"type": "string"}},
    },
    "required": ["name", "type", "description", "required"],
}

_TOOL = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "description": {"type": "string"},
        "parameters": {"type": "array", "maxItems": 6, "items": _PARAM},
    },
    "required": ["name", "description", "parameters"],
}

TOOL_SPECS_SYSTEM = (
    "You specify the functions an assistant needs to solve a user's request in a {domain} service. Give each "
    "function a clear name in the style of the existing tools, a description of what it does and returns, and typed "
    "parameters. Break the request into functions that chain: a later function takes an id that an earlier one "
    "returns. Use an enum only for a small closed set of values (a status, a category), never for names or free text."
)

TOOL_SPECS_SCHEMA = {
    "type": "object",
    "properties": {"tools": {"type": "array", "minItems": 1, "maxItems": 3, "items": _TOOL}},
    "required": ["tools"],
}


def tool_specs_request(question: str, convention_examples: list[str]) -> str:
    return (f"Existing tool names (follow their naming style): {', '.join(convention_examples)}\n"
            f"User request: {question}\nWhich functions solve it?")


COMPLEMENT_SYSTEM = (
    "You extend a toolset of a {domain} service. Find what it cannot do yet (missing operations on its entities, "
    "missing links between entities, missing workflows) and propose up to ten new tools that fill those gaps, in the "
    "same naming and parameter style. Do not propose math, sorting or formatting helpers, or tools that only repeat "
    "an existing tool with another parameter."
)

COMPLEMENT_SCHEMA = {
    "type": "object",
    "properties": {"tools": {"type": "array", "maxItems": 10, "items": _TOOL}},
    "required": ["tools"],
}


def complement_request(tools_text: str) -> str:
    return f"Current toolset:\n{tools_text}\n\nPropose the complementary tools."
