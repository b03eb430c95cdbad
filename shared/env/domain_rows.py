"""Reading a domain database's rows (never a sandbox's): what tasks are grounded in."""
from __future__ import annotations

import random

from psycopg import sql as pgsql

from shared.env.json_values import json_value
from shared.env.sandbox import SandboxManager, domain_schema_name

SAMPLE_ROWS = 200  # referencing rows read to sample from


class DomainRows:
    def __init__(self, sandboxes: SandboxManager, domain: str):
        self.sandboxes = sandboxes
        self.schema = pgsql.Identifier(domain_schema_name(domain))

    def _table(self, table: str) -> pgsql.Composed:
        return pgsql.SQL("{}.{}").format(self.schema, pgsql.Identifier(table))

    def random_row(self, table: str, rng: random.Random) -> dict | None:
        conn = self.sandboxes.connection()
        (count,) = conn.execute(pgsql.SQL("SELECT count(*) FROM {}").format(self._table(table))).fetchone()
        if not count:
            return None
        cur = conn.execute(pgsql.SQL("SELECT * FROM {} ORDER BY 1 OFFSET %s LIMIT 1").format(self._table(table)),
                           (rng.randrange(count),))
        names = [d.name for d in cur.description]
        return dict(zip(names, cur.fetchone()))

    def row_at(self, table: str, position: int, salt: str) -> dict | None:
        """The row at `position` (modulo the row count) of the table shuffled by `salt`: planners that take
        positions 0, 1, 2 ... of one shuffle draw rows without replacement, on any replica, without coordinating."""
        conn = self.sandboxes.connection()
        (count,) = conn.execute(pgsql.SQL("SELECT count(*) FROM {}").format(self._table(table))).fetchone()
        if not count:
            return None
        cur = conn.execute(pgsql.SQL("SELECT t.* FROM {} AS t ORDER BY md5(%s || t::text) OFFSET %s LIMIT 1").format(
            self._table(table)), (salt, position % count))
        names = [d.name for d in cur.description]
        return dict(zip(names, cur.fetchone()))

    def row_by_key(self, table: str, column: str, value) -> dict | None:
        cur = self.sandboxes.connection().execute(pgsql.SQL("SELECT * FROM {} WHERE {} = %s LIMIT 1").format(
            self._table(table), pgsql.Identifier(column)), (value,))
        row = cur.fetchone()
        return dict(zip([d.name for d in cur.description], row)) if row else None

    def referencing_rows(self, table: str, column: str, value, limit: int, rng: random.Random) -> tuple[list[dict], int]:
        """Up to `limit` rows of `table` whose `column` equals `value`, sampled, and how many there are in all."""
        cur = self.sandboxes.connection().execute(
            pgsql.SQL("SELECT * FROM {} WHERE {} = %s ORDER BY 1 LIMIT %s").format(
                self._table(table), pgsql.Identifier(column)), (value, SAMPLE_ROWS))
        names = [d.name for d in cur.description]
        rows = [dict(zip(names, r)) for r in cur.fetchall()]
        total = len(rows) if len(rows) < SAMPLE_ROWS else self._count(table, column, value)
        return rng.sample(rows, min(limit, len(rows))), total

    def _count(self, table: str, column: str, value) -> int:
        (count,) = self.sandboxes.connection().execute(pgsql.SQL("SELECT count(*) FROM {} WHERE {} = %s").format(
            self._table(table), pgsql.Identifier(column)), (value,)).fetchone()
        return count

    def count_containing(self, table: str, column: str, text: str) -> int:
        """Rows whose `column` contains `text`, ignoring case: what a search tool over the column would find."""
        (count,) = self.sandboxes.connection().execute(
            pgsql.SQL("SELECT count(*) FROM {} WHERE {} ILIKE '%%' || %s || '%%'").format(
                self._table(table), pgsql.Identifier(column)), (text,)).fetchone()
        return count

    def max_value(self, table: str, column: str):
        (value,) = self.sandboxes.connection().execute(pgsql.SQL("SELECT max({}) FROM {}").format(
            pgsql.Identifier(column), self._table(table))).fetchone()
        return value

    def column_values(self, table: str, sample: int = 200) -> dict[str, list]:
        """Each column's distinct values (as JSON values, sorted) among the table's first `sample` rows."""
        cur = self.sandboxes.connection().execute(
            pgsql.SQL("SELECT * FROM {} LIMIT %s").format(self._table(table)), (sample,))
        names = [d.name for d in cur.description]
        rows = cur.fetchall()
        return {n: sorted({json_value(r[i]) for r in rows if r[i] is not None}, key=str)
                for i, n in enumerate(names)}
