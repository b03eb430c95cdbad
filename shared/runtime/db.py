"""PostgreSQL connections: one autocommit connection per thread, re-opened after it breaks."""
from __future__ import annotations

import threading

import psycopg

from shared.runtime.errors import TransientError


class ConnectionPerThread:
    def __init__(self, dsn: str):
        self.dsn = dsn
        self._local = threading.local()

    def get(self) -> psycopg.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.broken:
            try:
                conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=10)
            except psycopg.OperationalError as e:
                raise TransientError(f"cannot reach PostgreSQL: {e}") from e
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
