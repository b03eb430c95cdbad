"""What each SQL tool of a toolset can do for a task, read from what the tool declares: its effect, the role each
parameter plays in its statement (a key to match, text to search, a limit, a new value) and the column it binds."""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass

import sqlglot
from sqlglot import exp

from shared.contracts import EffectKind, Tool, Toolset
from shared.env.tool_spec import tool_parameters
from shared.toolgen.verify import parameter_roles

# Columns whose value a person knows about their own records: what they would search by instead of an id.
PERSON_KNOWN_WORDS = ("name", "email", "phone", "title", "subject", "username", "number", "imei", "model")
NAME_LIKE_WORDS = ("name", "title", "subject", "email")


@dataclass(frozen=True)
class SqlTool:
    tool: Tool
    roles: dict[str, str]  # parameter -> match | pattern | bare_pattern | limit | new_value | insert_value | ...
    columns: dict[str, tuple[str, str]]  # parameter -> (table, column) it is bound to

    @property
    def name(self) -> str:
        return self.tool.name

    @property
    def kind(self) -> int:
        return self.tool.effect.kind

    @property
    def table(self) -> str:
        return self.tool.effect.table

    def params(self, *roles: str) -> list[str]:
        return [p for p, r in self.roles.items() if r in roles]

    @property
    def required(self) -> list[str]:
        schema = tool_parameters(self.tool)
        return list(schema.get("required", schema.get("properties", {})))

    @property
    def result_fields(self) -> list[str]:
        schema = _output_schema(self.tool.output_schema_json)
        shape = schema.get("items", schema)
        return [f for f in shape.get("properties", {}) if f != "found"]

    @property
    def order(self) -> list[tuple[str, bool]]:
        """The statement's ORDER BY as (column, descending), outermost first; [] when unordered or computed."""
        return _order(self.tool.sql.statement)

    @property
    def computed_fields(self) -> list[str]:
        """Result fields no table column is read into: a count, a sum, a name put together."""
        return [f for f in self.result_fields if f not in self.tool.sql.result_columns]


@functools.lru_cache(maxsize=4096)
def _roles(statement: str) -> tuple[tuple[str, str], ...]:
    return tuple(parameter_roles(statement).items())


@functools.lru_cache(maxsize=4096)
def _order(statement: str) -> list[tuple[str, bool]]:
    order = sqlglot.parse_one(statement, read="postgres").args.get("order")
    out = []
    for ordered in order.expressions if order else []:
        if not isinstance(ordered.this, exp.Column):
            return out
        out.append((ordered.this.name, bool(ordered.args.get("desc"))))
    return out


@functools.lru_cache(maxsize=4096)
def _output_schema(text: str) -> dict:
    return json.loads(text or "{}")


def sql_tools(toolset: Toolset) -> list[SqlTool]:
    out = []
    for tool in toolset.tools:
        if not tool.HasField("sql") or not tool.sql.statement:
            continue
        columns = {p: tuple(tc.split(".", 1)) for p, tc in tool.sql.parameter_columns.items() if "." in tc}
        out.append(SqlTool(tool, dict(_roles(tool.sql.statement)), columns))
    return out


class ToolCatalog:
    """The toolset's SQL tools, sorted by what a task can use them for."""

    def __init__(self, toolset: Toolset):
        self.tools = sql_tools(toolset)

    def _of(self, kind: int, table: str) -> list[SqlTool]:
        return [t for t in self.tools if t.kind == kind and t.table == table]

    def record_reads(self, table: str) -> list[SqlTool]:
        """Reads of one `table` row whose every parameter is a value of it (a lookup by key, a join from it)."""
        return [t for t in self.tools if t.kind == EffectKind.EFFECT_KIND_READ and t.roles and t.tool.effect.single_row
                and all(r == "match" for r in t.roles.values())
                and all(t.columns.get(p, ("",))[0] == table for p in t.roles)]

    def child_lists(self, table: str, column: str) -> list[SqlTool]:
        """Reads of the `table` rows whose `column` (a reference) holds a given value: a record's children, as a
        list in the tool's declared order."""
        return [t for t in self.tools if t.kind == EffectKind.EFFECT_KIND_READ and not t.tool.effect.single_row
                and len(t.roles) == 1 and t.params("match") and t.columns.get(t.params("match")[0]) == (table, column)]

    def searches(self, table: str) -> list[SqlTool]:
        """Reads that find `table` rows by text in one of its columns."""
        return [t for t in self._of(EffectKind.EFFECT_KIND_READ, table)
                if len(t.roles) == 1 and t.params("pattern", "bare_pattern")
                and t.columns.get(t.params("pattern", "bare_pattern")[0], ("",))[0] == table]

    def person_known_searches(self, table: str) -> list[SqlTool]:
        """Searches over a column a person knows (a name, an email, a phone number), not a category."""
        return [t for t in self.searches(table) if is_person_known(t.columns[t.params("pattern", "bare_pattern")[0]][1])]

    def ranking_reads(self) -> list[SqlTool]:
        """Reads that take only a count: top-N lists and aggregates per parent."""
        return [t for t in self.tools if t.kind == EffectKind.EFFECT_KIND_READ and t.roles
                and all(r == "limit" for r in t.roles.values())]

    def updates(self, table: str) -> list[SqlTool]:
        """Updates of one column of a `table` row identified by its key."""
        return [t for t in self._of(EffectKind.EFFECT_KIND_UPDATE, table)
                if len(t.params("new_value")) == 1 and t.params("match")
                and all(p in t.columns for p in t.roles)]

    def deletes(self, table: str) -> list[SqlTool]:
        return [t for t in self._of(EffectKind.EFFECT_KIND_DELETE, table)
                if t.params("match") and all(r == "match" and p in t.columns for p, r in t.roles.items())]

    def creates(self, table: str) -> list[SqlTool]:
        return [t for t in self._of(EffectKind.EFFECT_KIND_INSERT, table)
                if t.roles and all(r == "insert_value" and p in t.columns for p, r in t.roles.items())]

    def tables_with(self, kind: int) -> set[str]:
        return {t.table for t in self.tools if t.kind == kind and t.table}


def column_words(column: str) -> list[str]:
    return column.lower().split("_")


def is_person_known(column: str) -> bool:
    return any(w in column_words(column) for w in PERSON_KNOWN_WORDS)


def identifying_field(fields: list[str], key_columns: list[str]) -> str | None:
    """The result field that tells one row from another for a person: a name or title, something else a person
    knows (a phone number), else the key."""
    for wanted in NAME_LIKE_WORDS:
        named = [f for f in fields if wanted in column_words(f)]
        if named:
            return named[0]
    known = [f for f in fields if is_person_known(f) and f not in key_columns]
    keys = [f for f in fields if f in key_columns]
    return (known + keys + fields + [None])[0]
