"""PostgreSQL connections, autocommit and re-opened after they break: one per thread for what every message does,
one shared for what a process does rarely."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from shared.runtime.errors import TransientError


def connect(dsn: str) -> psycopg.Connection:
    try:
        return psycopg.connect(dsn, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as e:
        raise TransientError(f"cannot reach PostgreSQL: {e}") from e


class ConnectionPerThread:
    def __init__(self, dsn: str):
        self.dsn = dsn
        self._local = threading.local()
        self._lock = threading.Lock()
        self._opened: list[psycopg.Connection] = []  # every thread's, so close() reaches them all

    def get(self) -> psycopg.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.broken:
            conn = connect(self.dsn)
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


class SharedConnection:
    """One connection for all of a process's threads, one statement at a time: for work done on a cache miss, where
    a connection per handler thread would hold hundreds open for nothing."""

    def __init__(self, dsn: str):
        self.dsn = dsn
        self._lock = threading.Lock()
        self._conn: psycopg.Connection | None = None

    @contextmanager
    def use(self) -> Iterator[psycopg.Connection]:
        with self._lock:
            if self._conn is None or self._conn.closed or self._conn.broken:
                self._conn = connect(self.dsn)
            yield self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
