"""Reading a domain database's rows (never a sandbox's): what tasks are grounded in."""
from __future__ import annotations

import random

from psycopg import sql as pgsql

from shared.env.json_values import json_value
from shared.env.sandbox import SandboxManager, domain_schema_name


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

    def row_by_key(self, table: str, column: str, value) -> dict | None:
        cur = self.sandboxes.connection().execute(pgsql.SQL("SELECT * FROM {} WHERE {} = %s LIMIT 1").format(
            self._table(table), pgsql.Identifier(column)), (value,))
        row = cur.fetchone()
        return dict(zip([d.name for d in cur.description], row)) if row else None

    def column_values(self, table: str, sample: int = 200) -> dict[str, list]:
        """Each column's distinct values (as JSON values, sorted) among the table's first `sample` rows."""
        cur = self.sandboxes.connection().execute(
            pgsql.SQL("SELECT * FROM {} LIMIT %s").format(self._table(table)), (sample,))
        names = [d.name for d in cur.description]
        rows = cur.fetchall()
        return {n: sorted({json_value(r[i]) for r in rows if r[i] is not None}, key=str)
                for i, n in enumerate(names)}
