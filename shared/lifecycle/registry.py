"""Which trajectories exist, their deadlines and their one outcome, in PostgreSQL.

Kafka carries each trajectory's events; this table is what lets the system notice one that stopped moving. The
task generator registers every trajectory of a seed (with its deadline) when it fans the seed out, before any message
about them leaves, so one still waiting to be planned is known like one under way; the validator claims the outcome
"verdict" before it sends one; a dead letter records "dead-lettered"; the deadline sweeper claims
"stuck" for trajectories past their deadline and dead-letters them with the reason. The first claim wins, so a
trajectory ends exactly one way even when a late verdict races the sweeper.
"""
from __future__ import annotations

from dataclasses import dataclass

from psycopg.types.json import Jsonb

from shared.runtime.db import ConnectionPerThread
from shared.env.sandbox import scratch_owner

VERDICT, DEAD_LETTERED, STUCK = "verdict", "dead-lettered", "stuck"

DDL = [
    "CREATE TABLE IF NOT EXISTS public.tf_trajectories (trajectory_id text PRIMARY KEY, seed_id text NOT NULL,"
    " deadline double precision NOT NULL, outcome text, letter_sent boolean NOT NULL DEFAULT false,"
    " registered_at timestamptz NOT NULL DEFAULT now(), resolved_at timestamptz)",
    # Trajectories planned by a seed's handler that has not finished yet: a retry of the seed (after a transient
    # error or a crash) sends these as they are instead of asking the model for them again.
    "CREATE TABLE IF NOT EXISTS public.tf_planned (trajectory_id text PRIMARY KEY, state bytea NOT NULL,"
    " trace_headers jsonb NOT NULL, planned_at timestamptz NOT NULL DEFAULT now())",
    # The topic the plan goes to: its first turn, or the dead letter of a trajectory that could not be planned (a
    # retried seed must not ask the model again for what already failed for good).
    "ALTER TABLE public.tf_planned ADD COLUMN IF NOT EXISTS topic text NOT NULL DEFAULT 'turns.user'",
    # A seed's prepared toolset, stored once when the seed fans out: each of its trajectories is planned from it by
    # whichever task-generator replica receives that trajectory, and the fan-out messages only name the seed.
    # fanned_out_at (Unix seconds) is the first fan-out's time: a redelivered seed gets its deadlines from it again.
    "CREATE TABLE IF NOT EXISTS public.tf_seed_toolsets (seed_id text PRIMARY KEY, toolset bytea NOT NULL,"
    " fanned_out_at double precision NOT NULL)",
    # A seed's trajectories, looked up to forget its toolset once they all ended.
    "CREATE INDEX IF NOT EXISTS tf_trajectories_seed ON public.tf_trajectories (seed_id)",
    # The golden calls (and values) of each planned trajectory of a seed, by digest: no two trajectories of one seed
    # are planned alike, whichever replicas plan them. Forgotten with the seed's toolset.
    "CREATE TABLE IF NOT EXISTS public.tf_plan_signatures (seed_id text NOT NULL, signature text NOT NULL,"
    " trajectory_id text NOT NULL, PRIMARY KEY (seed_id, signature))",
]


@dataclass
class Overdue:
    trajectory_id: str
    seed_id: str
    deadline: float
    last_service: str
    last_topic: str
    last_step: int


class TrajectoryRegistry:
    def __init__(self, dsn: str):
        self._db = ConnectionPerThread(dsn)
        self._ready = False

    def _conn(self):
        conn = self._db.get()
        if not self._ready:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('tf_trajectories'))")
                for ddl in DDL:
                    conn.execute(ddl)
            self._ready = True
        return conn

    def close(self) -> None:
        self._db.close()

    def register(self, rows: list[tuple[str, str, float]]) -> None:
        """(trajectory_id, seed_id, deadline) for trajectories about to start; a repeat changes nothing."""
        if not rows:
            return
        with self._conn().cursor() as cur:
            cur.executemany("INSERT INTO public.tf_trajectories (trajectory_id, seed_id, deadline) VALUES (%s, %s, %s)"
                            " ON CONFLICT (trajectory_id) DO NOTHING", rows)

    def planned(self, trajectory_id: str) -> tuple[str, bytes, dict[str, str]] | None:
        """(topic, serialized message, trace headers) of an already planned trajectory, if any: its TrajectoryState
        for turns.user, or the DeadLetter of a plan that failed for good."""
        row = self._conn().execute("SELECT topic, state, trace_headers FROM public.tf_planned WHERE trajectory_id = %s",
                                   (trajectory_id,)).fetchone()
        return (row[0], bytes(row[1]), row[2]) if row else None

    def save_planned(self, trajectory_id: str, topic: str, message: bytes, trace_headers: dict[str, str]) -> None:
        self._conn().execute("INSERT INTO public.tf_planned (trajectory_id, topic, state, trace_headers)"
                             " VALUES (%s, %s, %s, %s) ON CONFLICT (trajectory_id) DO NOTHING",
                             (trajectory_id, topic, message, Jsonb(trace_headers)))

    def store_seed_toolset(self, seed_id: str, toolset: bytes, now: float) -> float:
        """Keep a seed's SeedToolset (serialized) for planning its trajectories; returns the time of the seed's first
        fan-out. A second store (a redelivered seed) keeps the first toolset and time, so it yields the same plans."""
        conn = self._conn()
        conn.execute("INSERT INTO public.tf_seed_toolsets (seed_id, toolset, fanned_out_at) VALUES (%s, %s, %s)"
                     " ON CONFLICT (seed_id) DO NOTHING", (seed_id, toolset, now))
        return conn.execute("SELECT fanned_out_at FROM public.tf_seed_toolsets WHERE seed_id = %s",
                            (seed_id,)).fetchone()[0]

    def seed_toolset(self, seed_id: str) -> bytes | None:
        """The serialized SeedToolset a seed fanned out with, if it is still kept."""
        row = self._conn().execute("SELECT toolset FROM public.tf_seed_toolsets WHERE seed_id = %s",
                                   (seed_id,)).fetchone()
        return bytes(row[0]) if row else None

    def claim_plan(self, seed_id: str, signature: str, trajectory_id: str) -> bool:
        """True if no other trajectory of the seed was planned with these golden calls (a redelivered plan of the
        same trajectory finds its own claim)."""
        row = self._conn().execute(
            "WITH claimed AS (INSERT INTO public.tf_plan_signatures (seed_id, signature, trajectory_id)"
            " VALUES (%s, %s, %s) ON CONFLICT DO NOTHING RETURNING trajectory_id)"
            " SELECT trajectory_id FROM claimed UNION ALL SELECT trajectory_id FROM public.tf_plan_signatures"
            " WHERE seed_id = %s AND signature = %s LIMIT 1",
            (seed_id, signature, trajectory_id, seed_id, signature)).fetchone()
        return row is not None and row[0] == trajectory_id

    def forget_seed_toolsets(self, max_age_s: float) -> int:
        """Drop the toolsets of seeds none of whose trajectories is still unresolved. A seed with no registered
        trajectory at all is kept for max_age_s: its fan-out may be between storing the toolset and registering."""
        cur = self._conn().execute(
            "DELETE FROM public.tf_seed_toolsets s WHERE NOT EXISTS (SELECT 1 FROM public.tf_trajectories t"
            "  WHERE t.seed_id = s.seed_id AND t.outcome IS NULL)"
            " AND (EXISTS (SELECT 1 FROM public.tf_trajectories t WHERE t.seed_id = s.seed_id)"
            "  OR s.fanned_out_at < extract(epoch FROM now()) - %s)", (max_age_s,))
        self._conn().execute("DELETE FROM public.tf_plan_signatures p WHERE NOT EXISTS (SELECT 1 FROM"
                             " public.tf_seed_toolsets s WHERE s.seed_id = p.seed_id)")
        return cur.rowcount

    def forget_planned(self, max_age_s: float) -> int:
        """Drop plans of trajectories that ended, and of seeds that never finished (older than max_age_s)."""
        cur = self._conn().execute(
            "DELETE FROM public.tf_planned p WHERE p.planned_at < now() - make_interval(secs => %s) OR EXISTS"
            " (SELECT 1 FROM public.tf_trajectories t WHERE t.trajectory_id = p.trajectory_id AND t.outcome IS NOT NULL)",
            (max_age_s,))
        return cur.rowcount

    def forget_processed(self, deadline_before: float) -> int:
        """Drop the processed-ledger rows of trajectories that ended and whose deadline is before `deadline_before`.

        The ledger exists to skip a redelivered message; a message of a trajectory past its deadline is dead-lettered
        by the bus before its handler runs, so past the deadline (and a margin, for a redelivery already under way)
        its rows guard nothing and would only make the table grow with every trajectory ever made."""
        cur = self._conn().execute(
            "DELETE FROM public.tf_processed p USING public.tf_trajectories t WHERE p.entity = t.trajectory_id"
            " AND t.outcome IS NOT NULL AND t.deadline < %s", (deadline_before,))
        return cur.rowcount

    def claim_verdict(self, trajectory_id: str) -> bool:
        """True if a verdict may go out: the trajectory is unresolved, already has this verdict (a redelivery), or
        was never registered (events made outside the task generator)."""
        conn = self._conn()
        row = conn.execute("UPDATE public.tf_trajectories SET outcome = %s, resolved_at = coalesce(resolved_at, now())"
                           " WHERE trajectory_id = %s AND (outcome IS NULL OR outcome = %s) RETURNING 1",
                           (VERDICT, trajectory_id, VERDICT)).fetchone()
        if row is not None:
            return True
        return conn.execute("SELECT 1 FROM public.tf_trajectories WHERE trajectory_id = %s",
                            (trajectory_id,)).fetchone() is None

    def mark_dead_lettered(self, trajectory_id: str) -> None:
        self._conn().execute("UPDATE public.tf_trajectories SET outcome = %s, resolved_at = now()"
                             " WHERE trajectory_id = %s AND outcome IS NULL", (DEAD_LETTERED, trajectory_id))

    def outcome(self, trajectory_id: str) -> str | None:
        row = self._conn().execute("SELECT outcome FROM public.tf_trajectories WHERE trajectory_id = %s",
                                   (trajectory_id,)).fetchone()
        return row[0] if row else None

    def claim_overdue(self, now: float, limit: int = 200) -> list[Overdue]:
        """Claim trajectories past their deadline as stuck; returns every stuck one whose dead letter is not out yet
        (including ones claimed before a crash), with the last step any service finished for it."""
        conn = self._conn()
        conn.execute("UPDATE public.tf_trajectories SET outcome = %s, resolved_at = now() WHERE trajectory_id IN"
                     " (SELECT trajectory_id FROM public.tf_trajectories WHERE outcome IS NULL AND deadline < %s"
                     "  ORDER BY deadline LIMIT %s FOR UPDATE SKIP LOCKED)", (STUCK, now, limit))
        rows = conn.execute(
            "SELECT t.trajectory_id, t.seed_id, t.deadline, coalesce(p.service, ''), coalesce(p.topic, ''),"
            " coalesce(p.step, 0) FROM public.tf_trajectories t LEFT JOIN LATERAL"
            " (SELECT service, topic, step FROM public.tf_processed WHERE entity = t.trajectory_id"
            "  ORDER BY step DESC, processed_at DESC LIMIT 1) p ON true"
            " WHERE t.outcome = %s AND NOT t.letter_sent ORDER BY t.deadline LIMIT %s", (STUCK, limit)).fetchall()
        return [Overdue(*r) for r in rows]

    def letters_sent(self, trajectory_ids: list[str]) -> None:
        self._conn().execute("UPDATE public.tf_trajectories SET letter_sent = true WHERE trajectory_id = ANY(%s)",
                             (trajectory_ids,))

    def resolved_with_sandbox(self, grace_s: float = 30.0) -> list[str]:
        """Owners of sandboxes (trajectories, or `golden:` scratch copies) whose trajectory ended a while ago."""
        return [r[0] for r in self._conn().execute(
            "SELECT s.trajectory_id FROM public.tf_sandboxes s JOIN public.tf_trajectories t"
            " ON t.trajectory_id = s.trajectory_id OR %s || t.trajectory_id = s.trajectory_id"
            " WHERE t.outcome IS NOT NULL AND t.resolved_at < now() - make_interval(secs => %s)", (scratch_owner(""), grace_s))]
