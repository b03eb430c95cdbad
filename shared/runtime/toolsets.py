"""A trajectory's toolset, sent once instead of on every hop.

task-generator fixes a trajectory's toolset when it plans it, and no later service changes it; yet every event of the
conversation carried it whole, most of an 18 KB state before the first user message, serialized, checksummed and
parsed again at each of some 30 hops. On the topics the flow marks `toolset_by_reference`, the bus now sends a state
with `toolset_digest` instead of `toolset`, and the consuming service puts the toolset back before its handler runs:
handlers see whole states either way. The toolset itself is stored in PostgreSQL (tf_toolsets) before the first
event that refers to it is sent, so a restarted or another replica finds it; each process keeps the ones it used
last in memory.
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict

import psycopg

from shared.contracts import Toolset, TrajectoryState
from shared.runtime.db import SharedConnection
from shared.runtime.errors import PermanentError, TransientError

log = logging.getLogger("turnforge.toolsets")

# Toolsets kept parsed per process: a process serves the trajectories of a few seeds at a time.
KEPT = 256
# A sender stores a toolset it keeps sending again after this long, which marks the row as in use: rows not stored
# for longer than a trajectory's deadline plus this are no event's any more (forget).
REFRESH_S = 300.0


def digest_of(toolset: Toolset) -> str:
    return hashlib.sha256(toolset.SerializeToString(deterministic=True)).hexdigest()


class ToolsetStore:
    def __init__(self, dsn: str):
        self._db = SharedConnection(dsn)
        self._kept: OrderedDict[str, tuple[Toolset, float]] = OrderedDict()  # digest -> (toolset, stored at)
        self._lock = threading.Lock()
        self._created = False

    def _execute(self, sql: str, params: tuple) -> psycopg.Cursor:
        with self._db.use() as conn:
            if not self._created:
                with conn.transaction():  # services start together: serialise the CREATE, IF NOT EXISTS alone races
                    conn.execute("SELECT pg_advisory_xact_lock(hashtext('tf_toolsets'))")
                    conn.execute("CREATE TABLE IF NOT EXISTS tf_toolsets (digest text PRIMARY KEY,"
                                 " toolset bytea NOT NULL, stored_at timestamptz DEFAULT now())")
                self._created = True
            return conn.execute(sql, params)

    def _keep(self, digest: str, toolset: Toolset, stored_at: float) -> None:
        with self._lock:
            self._kept[digest] = (toolset, stored_at)
            self._kept.move_to_end(digest)
            while len(self._kept) > KEPT:
                self._kept.popitem(last=False)

    def _kept_entry(self, digest: str) -> tuple[Toolset, float] | None:
        with self._lock:
            entry = self._kept.get(digest)
            if entry is not None:
                self._kept.move_to_end(digest)
            return entry

    def encode(self, state: TrajectoryState) -> bytes:
        """The state's bytes with its toolset replaced by the digest; the toolset is stored first. The digest, once
        set, travels with the state, so the toolset is hashed and stored once per trajectory, not per hop."""
        if not state.HasField("toolset"):
            return state.SerializeToString()
        if not state.toolset_digest:
            state.toolset_digest = digest_of(state.toolset)
        entry = self._kept_entry(state.toolset_digest)
        if entry is None or time.monotonic() - entry[1] > REFRESH_S:
            try:
                self._execute("INSERT INTO tf_toolsets (digest, toolset) VALUES (%s, %s)"
                              " ON CONFLICT (digest) DO UPDATE SET stored_at = now()",
                              (state.toolset_digest, state.toolset.SerializeToString()))
            except (psycopg.Error, TransientError) as e:  # the state goes whole: slower, never lost
                log.warning("toolset %s not stored, sending it whole: %s", state.toolset_digest[:12], e)
                return state.SerializeToString()
            kept = Toolset()
            kept.CopyFrom(state.toolset)
            self._keep(state.toolset_digest, kept, time.monotonic())
        light = TrajectoryState()
        light.CopyFrom(state)
        light.ClearField("toolset")
        return light.SerializeToString()

    def restore(self, state: TrajectoryState) -> None:
        """Put back the toolset a state refers to (a state that carries it whole, or none, is left as it is)."""
        if not state.toolset_digest or state.HasField("toolset"):
            return
        entry = self._kept_entry(state.toolset_digest)
        if entry is None:
            row = self._execute("SELECT toolset FROM tf_toolsets WHERE digest = %s",
                                (state.toolset_digest,)).fetchone()
            if row is None:
                raise PermanentError(f"toolset {state.toolset_digest[:12]} is not stored: the state cannot be read")
            # Read, not stored, here: a sender that keeps using it refreshes the row (REFRESH_S).
            entry = (Toolset.FromString(row[0]), float("-inf"))
            self._keep(state.toolset_digest, *entry)
        state.toolset.CopyFrom(entry[0])

    def forget(self, older_than_s: float) -> int:
        """Drop toolsets no sender has stored for older_than_s (a trajectory's deadline plus REFRESH_S and a margin:
        every event that refers to one was sent within REFRESH_S of its row being stored)."""
        return self._execute("DELETE FROM tf_toolsets WHERE stored_at < now() - make_interval(secs => %s)",
                             (older_than_s,)).rowcount

    def close(self) -> None:
        self._db.close()
