"""PostgreSQL connections: one autocommit connection per thread, re-opened after it breaks."""
from __future__ import annotations

import threading

import psycopg

from shared.runtime.errors import TransientError


class ConnectionPerThread:
    def __init__(self, dsn: str):
        self.dsn = dsn
        self._local = threading.local()
        self._lock = threading.Lock()
        self._opened: list[psycopg.Connection] = []  # every thread's, so close() reaches them all

    def get(self) -> psycopg.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.broken:
            try:
                conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=10)
            except psycopg.OperationalError as e:
                raise TransientError(f"cannot reach PostgreSQL: {e}") from e
            self._local.conn = conn
            with self._lock:
                self._opened = [c for c in self._opened if not c.closed] + [conn]
        return conn

    def close(self) -> None:
        """Close every thread's connection: for shutdown, once no thread uses them any more."""
        with self._lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()
