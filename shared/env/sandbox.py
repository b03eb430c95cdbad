"""Per-trajectory PostgreSQL sandboxes.

A domain database lives in schema `domain_<name>`. A trajectory's sandbox is its own schema, `sbx_<hash>`, built by
replaying the domain's DDL there and bulk-copying the rows (measured faster than CREATE DATABASE ... TEMPLATE, which
also fails while anyone is connected to the template; see `make bench`). Each sandbox has its own role that can reach
only that schema; tool SQL runs on a connection logged in as that role (not SET ROLE from the service's superuser
session, which one `set_config('role', ...)` would undo), with a statement timeout and bound parameters.
A tool call with an idempotency key runs once: its outcome is recorded in the same transaction as its writes, so a
redelivered call returns the recorded outcome instead of writing twice.

Creation is one transaction, so a crash leaves either a whole sandbox or none, and it is idempotent on the
trajectory id: any replica of any service, before or after a restart, finds the same sandbox by name.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import psycopg
from psycopg import sql as pgsql

from shared.runtime.db import ConnectionPerThread
from shared.env.dbschema import DatabaseSchema, DomainData, identity_reset_sql, quote_ident, schema_ddl
from shared.env.json_values import json_value
from shared.runtime.errors import PermanentError, TransientError
from shared.runtime.tracing import tracer

REGISTRY_DDL = [
    "CREATE TABLE IF NOT EXISTS public.tf_domains (name text PRIMARY KEY, schema_name text NOT NULL,"
    " db_schema jsonb NOT NULL, loaded_at timestamptz DEFAULT now())",
    "CREATE TABLE IF NOT EXISTS public.tf_sandboxes (name text PRIMARY KEY, trajectory_id text UNIQUE NOT NULL,"
    " domain text NOT NULL, created_at timestamptz DEFAULT now())",
    # Outcomes of tool calls that carried an idempotency key; dropped with the sandbox.
    "CREATE TABLE IF NOT EXISTS public.tf_tool_calls (sandbox text, call_key text, outcome jsonb NOT NULL,"
    " PRIMARY KEY (sandbox, call_key))",
    # The one way a sandbox role writes outside its schema: its own outcome row, keyed by its login name.
    "CREATE OR REPLACE FUNCTION public.tf_record_tool_call(key text, outcome jsonb) RETURNS void LANGUAGE sql"
    " SECURITY DEFINER SET search_path = pg_catalog, public AS"
    " $$ INSERT INTO public.tf_tool_calls (sandbox, call_key, outcome) VALUES (session_user, key, outcome) $$",
    "REVOKE ALL ON FUNCTION public.tf_record_tool_call(text, jsonb) FROM PUBLIC",
]


class UnknownDomain(PermanentError):
    pass


@dataclass
class ToolOutcome:
    columns: list[str]
    rows: list[dict[str, Any]]
    row_count: int


def scratch_owner(trajectory_id: str) -> str:
    """Owner name of the scratch copy in which task-generator replays a trajectory's golden actions."""
    return f"golden:{trajectory_id}"


def domain_schema_name(domain: str) -> str:
    return "domain_" + "".join(c if c.isalnum() else "_" for c in domain.lower())


def sandbox_name(trajectory_id: str) -> str:
    return "sbx_" + hashlib.sha1(trajectory_id.encode()).hexdigest()[:20]


def _traced(operation: str):
    """A span per sandbox lifecycle step, in the trace of the message being handled (the trajectory's)."""
    def decorate(method):
        @functools.wraps(method)
        def traced(self, trajectory_id: str, *args, **kwargs):
            with tracer().start_as_current_span(f"sandbox {operation}", attributes={
                    "turnforge.trajectory_id": trajectory_id, "turnforge.sandbox": sandbox_name(trajectory_id),
                    "db.system": "postgresql"}) as span:
                result = method(self, trajectory_id, *args, **kwargs)
                if isinstance(result, bool):
                    span.set_attribute("turnforge.sandbox.existed", result)
                return result
        return traced
    return decorate


class SandboxManager:
    def __init__(self, dsn: str):
        self.dsn = dsn
        self._db = ConnectionPerThread(dsn)
        self._schemas: dict[str, DatabaseSchema] = {}
        self._registry_ready = False
        url = urlparse(dsn)
        # Sandbox passwords derive from the admin credentials, so every service computes the same ones.
        self._password_key = (url.password or f"turnforge:{url.path}").encode()

    def role_password(self, name: str) -> str:
        return hmac.new(self._password_key, name.encode(), hashlib.sha256).hexdigest()

    def role_connection(self, sandbox: str, *, timeout_ms: int) -> psycopg.Connection:
        """A new connection logged in as the sandbox's role: it holds no other privilege to fall back to."""
        try:
            return psycopg.connect(self.dsn, user=sandbox, password=self.role_password(sandbox), autocommit=True,
                                   connect_timeout=10,
                                   options=f"-c search_path={sandbox} -c statement_timeout={int(timeout_ms)}")
        except psycopg.OperationalError as e:
            raise TransientError(f"cannot log in as sandbox role {sandbox}: {e}") from e

    def connection(self) -> psycopg.Connection:
        return self._db.get()

    def close(self) -> None:
        self._db.close()

    def ensure_registry(self) -> None:
        """Create the registry tables and the outcome function once per manager.

        Each pass rewrites catalog rows (the function, the database's ACL); PostgreSQL fails a concurrent update
        of one catalog row with "tuple concurrently updated", so it runs once, under the lock that sandbox
        creation and drop take for the function's grants."""
        if self._registry_ready:
            return
        conn = self.connection()
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('tf_registry'))")
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('tf_record_tool_call'))")
            for ddl in REGISTRY_DDL:
                conn.execute(ddl)
            # Temporary tables would outlive a tool call in a pooled session and shadow a sandbox's own tables.
            conn.execute(pgsql.SQL("REVOKE TEMPORARY ON DATABASE {} FROM PUBLIC").format(
                pgsql.Identifier(conn.info.dbname)))
        self._registry_ready = True

    # -- domains ---------------------------------------------------------------------------------------------
    def register_domain(self, data: DomainData, *, replace: bool = False) -> str:
        """Load a domain database into its own schema (once; `replace` reloads it)."""
        self.ensure_registry()
        name = data.db_schema.name
        schema = domain_schema_name(name)
        conn = self.connection()
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (schema,))
            exists = conn.execute("SELECT 1 FROM public.tf_domains WHERE name=%s", (name,)).fetchone()
            if exists and not replace:
                return schema
            conn.execute(pgsql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(pgsql.Identifier(schema)))
            conn.execute(pgsql.SQL("CREATE SCHEMA {}").format(pgsql.Identifier(schema)))
            conn.execute(pgsql.SQL("SET LOCAL search_path TO {}").format(pgsql.Identifier(schema)))
            for ddl in schema_ddl(data.db_schema):
                conn.execute(ddl)
            for table in data.db_schema.tables:
                rows = data.rows.get(table.name, [])
                if rows:
                    cols = ", ".join(quote_ident(c.name) for c in table.columns)
                    with conn.cursor().copy(f"COPY {quote_ident(table.name)} ({cols}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
                reset = identity_reset_sql(table)
                if reset:
                    conn.execute(reset)
            conn.execute(
                "INSERT INTO public.tf_domains (name, schema_name, db_schema) VALUES (%s, %s, %s)"
                " ON CONFLICT (name) DO UPDATE SET db_schema = EXCLUDED.db_schema, loaded_at = now()",
                (name, schema, data.db_schema.model_dump_json()),
            )
        self._schemas.pop(name, None)
        return schema

    def domain_schema(self, domain: str) -> DatabaseSchema:
        if domain not in self._schemas:
            row = self.connection().execute("SELECT db_schema FROM public.tf_domains WHERE name=%s", (domain,)).fetchone()
            if row is None:
                raise UnknownDomain(f"unknown domain database '{domain}': load it with `turnforge import-db` first")
            self._schemas[domain] = DatabaseSchema.model_validate(row[0])
        return self._schemas[domain]

    def domains(self) -> list[str]:
        self.ensure_registry()
        return [r[0] for r in self.connection().execute("SELECT name FROM public.tf_domains ORDER BY name")]

    # -- sandboxes -------------------------------------------------------------------------------------------
    @_traced("create")
    def create(self, trajectory_id: str, domain: str) -> str:
        """The trajectory's sandbox, created from the domain database if it does not exist yet."""
        db_schema = self.domain_schema(domain)
        name = sandbox_name(trajectory_id)
        source = domain_schema_name(domain)
        conn = self.connection()
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (name,))
                if conn.execute("SELECT 1 FROM public.tf_sandboxes WHERE name=%s", (name,)).fetchone():
                    return name
                ident = pgsql.Identifier(name)
                conn.execute(pgsql.SQL("CREATE SCHEMA {}").format(ident))
                conn.execute(pgsql.SQL("SET LOCAL search_path TO {}").format(ident))
                for ddl in schema_ddl(db_schema):
                    conn.execute(ddl)
                for table in db_schema.tables:
                    conn.execute(pgsql.SQL("INSERT INTO {} SELECT * FROM {}.{}").format(
                        pgsql.Identifier(table.name), pgsql.Identifier(source), pgsql.Identifier(table.name)))
                    reset = identity_reset_sql(table)
                    if reset:
                        conn.execute(reset)
                self._create_role(conn, name)
                conn.execute("INSERT INTO public.tf_sandboxes (name, trajectory_id, domain) VALUES (%s, %s, %s)",
                             (name, trajectory_id, domain))
        except psycopg.OperationalError as e:
            raise TransientError(f"sandbox creation interrupted: {e}") from e
        return name

    def _create_role(self, conn: psycopg.Connection, name: str) -> None:
        ident = pgsql.Identifier(name)
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname=%s", (name,)).fetchone() is None:
            conn.execute(pgsql.SQL("CREATE ROLE {} LOGIN NOINHERIT PASSWORD {}").format(
                ident, pgsql.Literal(self.role_password(name))))
        conn.execute(pgsql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(ident, ident))
        conn.execute(pgsql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {} TO {}").format(ident, ident))
        conn.execute(pgsql.SQL("GRANT USAGE ON ALL SEQUENCES IN SCHEMA {} TO {}").format(ident, ident))
        # Grants on one function update one catalog row: concurrent sandbox creations take turns for it.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('tf_record_tool_call'))")
        conn.execute(pgsql.SQL("GRANT EXECUTE ON FUNCTION public.tf_record_tool_call(text, jsonb) TO {}").format(ident))

    @_traced("drop")
    def drop(self, trajectory_id: str) -> bool:
        """Drop the trajectory's sandbox and its role; True if there was one."""
        name = sandbox_name(trajectory_id)
        conn = self.connection()
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (name,))
            existed = conn.execute("DELETE FROM public.tf_sandboxes WHERE name=%s RETURNING 1", (name,)).fetchone()
            conn.execute("DELETE FROM public.tf_tool_calls WHERE sandbox=%s", (name,))
            conn.execute(pgsql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(pgsql.Identifier(name)))
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname=%s", (name,)).fetchone():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('tf_record_tool_call'))")  # revokes its grant
                conn.execute(pgsql.SQL("DROP OWNED BY {}").format(pgsql.Identifier(name)))
                conn.execute(pgsql.SQL("DROP ROLE {}").format(pgsql.Identifier(name)))
        return existed is not None

    def owners_starting_with(self, prefix: str) -> list[str]:
        """Owners (trajectory ids or scratch names) of live sandboxes whose owner starts with `prefix`."""
        self.ensure_registry()
        return [r[0] for r in self.connection().execute(
            "SELECT trajectory_id FROM public.tf_sandboxes WHERE starts_with(trajectory_id, %s)", (prefix,))]

    def live_sandboxes(self) -> list[str]:
        self.ensure_registry()
        return [r[0] for r in self.connection().execute("SELECT trajectory_id FROM public.tf_sandboxes ORDER BY name")]

    # -- execution -------------------------------------------------------------------------------------------
    def execute(self, sandbox: str, driver_sql: str, arguments: dict, *, timeout_ms: int,
                idempotency_key: str = "") -> ToolOutcome:
        """Run one checked tool statement in a sandbox, logged in as the sandbox's role, with bound parameters.

        With an idempotency key, the outcome is stored with the writes in one transaction (the role may insert
        into its own row of the outcome table only through the grant below), and a repeat returns it unchanged."""
        if idempotency_key:
            recorded = self.recorded_outcome(sandbox, idempotency_key)
            if recorded is not None:
                return recorded
        try:
            with self.role_connection(sandbox, timeout_ms=timeout_ms) as conn:
                with conn.transaction():
                    # prepare=True: the extended protocol even without parameters, so one statement per call.
                    cur = conn.execute(driver_sql, arguments, prepare=True)
                    columns = [d.name for d in cur.description] if cur.description else []
                    # JSON-ready, so a recorded outcome reads back exactly as a fresh one
                    rows = [{k: json_value(v) for k, v in zip(columns, r)} for r in cur.fetchall()] \
                        if cur.description else []
                    outcome = ToolOutcome(columns=columns, rows=rows, row_count=cur.rowcount)
                    if idempotency_key:
                        conn.execute("SELECT public.tf_record_tool_call(%s, %s)", (idempotency_key, json.dumps(
                            {"columns": columns, "rows": rows, "row_count": cur.rowcount})))
                return outcome
        except psycopg.errors.UniqueViolation:  # a concurrent duplicate won; its writes stand, ours rolled back
            recorded = self.recorded_outcome(sandbox, idempotency_key) if idempotency_key else None
            if recorded is None:
                raise
            return recorded

    def recorded_outcome(self, sandbox: str, idempotency_key: str) -> ToolOutcome | None:
        row = self.connection().execute("SELECT outcome FROM public.tf_tool_calls WHERE sandbox=%s AND call_key=%s",
                                        (sandbox, idempotency_key)).fetchone()
        return ToolOutcome(**row[0]) if row is not None else None

    def state_hash(self, trajectory_id: str, domain: str) -> str:
        """Hash of every table's rows in a fixed order, ignoring timestamp-like columns (as DySQL-Bench does)."""
        return self.schema_state_hash(sandbox_name(trajectory_id), self.domain_schema(domain))

    def schema_state_hash(self, schema: str, db_schema: DatabaseSchema) -> str:
        conn = self.connection()
        digest = hashlib.sha256()
        for table in sorted(db_schema.tables, key=lambda t: t.name):
            cols = [c.name for c in table.columns if not c.is_timestamp_like]
            row_expr = pgsql.SQL("json_build_array({})::text").format(
                pgsql.SQL(", ").join(pgsql.Identifier(c) for c in cols))
            query = pgsql.SQL("SELECT coalesce(string_agg(r, E'\\n' ORDER BY r), '') FROM "
                              "(SELECT {} AS r FROM {}.{}) t").format(
                row_expr, pgsql.Identifier(schema), pgsql.Identifier(table.name))
            (text,) = conn.execute(query).fetchone()
            digest.update(json.dumps([table.name, cols]).encode())
            digest.update(text.encode())
        return digest.hexdigest()
