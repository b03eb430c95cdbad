"""DySQL-Bench tasks as a frozen TurnForge task set.

DySQL-Bench's format is `{env: [{user_id, instruction, actions: [{name: "sql", kwargs: {sql}}]}]}`, its golden SQL
written for SQLite. The environment's SQLite database is imported as a domain as it is (no synthetic rows: the
golden state is the benchmark's), with names folded as import-db folds them (`BowlerID` -> `bowler_id`), so the
golden SQL is translated to PostgreSQL by sqlglot with every identifier mapped to its stored name. Each task's
golden actions then run, in order, in a fresh sandbox as the sandbox's role, exactly as tool SQL runs; the end
state's hash (DySQL's: every table's rows in a fixed order, timestamp-like columns left out) is the reference an
agent's run must reach, and each read records the values it returned, which the answer must contain.

A task whose golden SQL does not translate or does not execute is left out with the reason; the import goes on.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from shared.data.import_db import import_database, normalise_name
from shared.env.sandbox import SandboxManager, domain_schema_name
from shared.env.tool_execution import MAX_RESULT_ROWS

LONG_FROM = 3  # DySQL: fewer than three golden actions is a Short task, three or more a Long one
STATEMENT_TIMEOUT_MS = 10_000
STATEMENT_KINDS = {exp.Select: "read", exp.SetOperation: "read", exp.Insert: "insert", exp.Update: "update",
                   exp.Delete: "delete"}


@dataclass(frozen=True)
class SkippedTask:
    index: int
    user_id: str
    reason: str


@dataclass
class DysqlImport:
    domain: str
    tasks: list[dict] = field(default_factory=list)
    skipped: list[SkippedTask] = field(default_factory=list)
    import_notes: list[str] = field(default_factory=list)


class GoldenActionFailed(Exception):
    """A golden statement did not translate or did not execute; the message says which and why."""


def load_tasks(path: str | Path, env: str) -> list[dict]:
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict) or env not in data:
        found = ", ".join(sorted(data)) if isinstance(data, dict) else "none (not a mapping of environments)"
        raise ValueError(f"no environment {env!r} in {path}; it holds: {found}")
    return data[env]


def stored_names(renamed: dict[str, str]) -> dict[str, str]:
    """Source name (lower case) -> stored name, from import-db's record of what it renamed; a column name stored
    differently in two tables (its de-duplication) is left to the plain folding, as are aliases."""
    choices: dict[str, set[str]] = {}
    for source, stored in renamed.items():
        choices.setdefault(source.rsplit(".", 1)[-1].lower(), set()).add(stored.rsplit(".", 1)[-1])
    return {source: next(iter(stored)) for source, stored in choices.items() if len(stored) == 1}


def to_postgres(sql: str, names: dict[str, str]) -> list[str]:
    """The SQLite statements of one golden action in PostgreSQL, identifiers mapped to the stored names."""
    try:
        statements = [s for s in sqlglot.parse(sql, read="sqlite") if s is not None]
    except (ParseError, TokenError) as e:
        raise GoldenActionFailed(f"cannot parse: {str(e).splitlines()[0]}") from None

    def to_stored(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Identifier):
            return exp.Identifier(this=names.get(node.name.lower(), normalise_name(node.name)), quoted=node.quoted)
        if isinstance(node, exp.Boolean):
            # SQLite's TRUE and FALSE are the integers 1 and 0; as untyped '1' and '0' PostgreSQL fits them to the
            # column they meet, whether import-db stored it as integer, boolean or text
            return exp.Literal.string("1" if node.this else "0")
        return node

    return [s.transform(to_stored).sql(dialect="postgres") for s in statements]


def statement_kind(sql: str) -> str:
    root = sqlglot.parse_one(sql, read="postgres")
    return next((kind for cls, kind in STATEMENT_KINDS.items() if isinstance(root, cls)), "other")


def _distinct_values(rows: list[dict[str, Any]]) -> list[Any]:
    return list(dict.fromkeys(v for row in rows[:MAX_RESULT_ROWS] for v in row.values() if v is not None))


def run_golden_actions(manager: SandboxManager, owner: str, domain: str, actions: list[dict],
                       names: dict[str, str]) -> tuple[list[dict], str]:
    """(golden actions in PostgreSQL with what reads returned, end-state hash) after running them in a fresh
    sandbox, which is dropped afterwards."""
    sandbox = manager.create(owner, domain)
    try:
        golden = []
        for number, action in enumerate(actions, start=1):
            source = action["kwargs"]["sql"]
            try:
                for sql in to_postgres(source, names):
                    # no parameters are bound, so a literal % must reach the driver escaped
                    outcome = manager.execute(sandbox, sql.replace("%", "%%"), {}, timeout_ms=STATEMENT_TIMEOUT_MS)
                    kind = statement_kind(sql)
                    entry = {"sql": sql, "source_sql": source, "source_action": number, "kind": kind}
                    if kind == "read":
                        entry["expected_values"] = _distinct_values(outcome.rows)
                    golden.append(entry)
            except GoldenActionFailed as e:
                raise GoldenActionFailed(f"action {number}: {e}") from None
            except psycopg.Error as e:
                message = (e.diag.message_primary or str(e)).splitlines()[0]
                raise GoldenActionFailed(f"action {number}: {message}") from None
        # Reads before a task's first change look a record up or verify the user (SELECT * of the bowler who
        # authenticates): the end state scores them, not every column read back to the user. Reads after a change
        # show its result ("then show both of my rows") and must reach the user.
        # A task that only reads keeps every read's values: they are its answer.
        first_change = next((i for i, entry in enumerate(golden) if entry["kind"] != "read"), None)
        for entry in golden[:first_change or 0]:
            entry.pop("expected_values", None)
        return golden, manager.state_hash(owner, domain)
    finally:
        manager.drop(owner)


def difficulty(action_count: int) -> str:
    return "long" if action_count >= LONG_FROM else "short"


def import_dysql(dsn: str, tasks_path: str | Path, env: str, db_path: str | Path, domain: str) -> DysqlImport:
    """Import the environment's database as `domain` (replacing it) and freeze its tasks."""
    tasks = load_tasks(tasks_path, env)
    report = import_database(dsn, str(db_path), domain, synthetic_rows=0)
    names = stored_names(report.renamed)
    manager = SandboxManager(dsn)
    initial_hash = manager.schema_state_hash(domain_schema_name(domain), manager.domain_schema(domain))
    result = DysqlImport(domain=domain, import_notes=report.notes)
    for index, task in enumerate(tasks):
        user_id = str(task.get("user_id", ""))
        actions = task.get("actions") or []
        if not actions or any(a.get("name") != "sql" for a in actions):
            result.skipped.append(SkippedTask(index, user_id, "no golden actions, or an action that is not sql"))
            continue
        try:
            golden, golden_hash = run_golden_actions(manager, f"dysql-import:{domain}:{index}", domain, actions,
                                                     names)
        except GoldenActionFailed as e:
            result.skipped.append(SkippedTask(index, user_id, str(e)))
            continue
        result.tasks.append({
            "task_id": f"dysql-{env}-{index:04d}", "benchmark": "dysql", "env": env, "user_id": user_id,
            "domain": domain, "instruction": task["instruction"], "golden_actions": golden,
            "golden_hash": golden_hash, "initial_hash": initial_hash, "changes_data": golden_hash != initial_hash,
            "action_count": len(actions), "difficulty": difficulty(len(actions)),
        })
    return result


def write_task_set(tasks: list[dict], path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for task in tasks:
            f.write(json.dumps(task, default=str) + "\n")
