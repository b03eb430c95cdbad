"""Benchmark: ways to give each trajectory its own copy of a domain database (run with `make bench`).

Starts a throwaway PostgreSQL, then for the `telecom` demo (~1k rows) and a 10x copy of it (~10k rows) times
create and drop of a sandbox by each candidate (median and p90 over RUNS runs), plus `schema_state_hash`.
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root, for `shared`

from shared.ops import local_postgres
from shared.data.demo_databases import build_demo  # noqa: E402
from shared.env.dbschema import DomainData  # noqa: E402
from shared.ops.local_postgres import dsn_for  # noqa: E402
from shared.runtime.ports import free_port  # noqa: E402
from shared.env.sandbox import SandboxManager, domain_schema_name  # noqa: E402

RUNS = 20
console = Console(width=140)


def scaled_copy(data: DomainData, factor: int) -> DomainData:
    """`factor` copies of every table's rows, shifting each integer primary key (and the foreign keys to it)."""
    schema = data.db_schema.model_copy(deep=True, update={"name": f"{data.db_schema.name}_x{factor}"})
    max_pk = {t.name: max((r[0] for r in data.rows[t.name]), default=0) for t in schema.tables}
    rows: dict[str, list[list]] = {}
    for table in schema.tables:
        names = [c.name for c in table.columns]
        shifts = {names.index(table.primary_key[0]): table.name}  # demo tables: one integer key, column 0
        shifts.update({names.index(fk.columns[0]): fk.ref_table for fk in table.foreign_keys})
        rows[table.name] = [
            [v + i * max_pk[shifts[j]] if j in shifts and v is not None else v for j, v in enumerate(row)]
            for i in range(factor) for row in data.rows[table.name]
        ]
    return DomainData(db_schema=schema, rows=rows)


def row_count(data: DomainData) -> int:
    return sum(len(r) for r in data.rows.values())


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def summary(samples: list[float]) -> tuple[float, float]:
    """Median and p90 in milliseconds."""
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


def bench_schema_copy(manager: SandboxManager, domain: str) -> tuple[list[float], list[float]]:
    creates, drops = [], []
    for i in range(RUNS):
        trajectory = f"bench-{domain}-{i}"
        creates.append(timed(lambda: manager.create(trajectory, domain)))
        drops.append(timed(lambda: manager.drop(trajectory)))
    return creates, drops


def concurrent_create_drop(dsn: str, domain: str, workers: int, per_worker: int) -> list[float]:
    """Milliseconds of create+drop of one schema-copy sandbox each, with `workers` threads creating and dropping at
    once (as sql-executor's handlers do at the start and end of trajectories)."""
    manager = SandboxManager(dsn)

    def worker(index: int) -> list[float]:
        samples = []
        for i in range(per_worker):
            trajectory = f"bench-concurrent-{index}-{i}"
            samples.append(timed(lambda: (manager.create(trajectory, domain), manager.drop(trajectory))))
        return samples

    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return [ms for samples in pool.map(worker, range(workers)) for ms in samples]
    finally:
        manager.close()


def load_template(port: int, data: DomainData) -> str:
    """Load the domain once into its own database `tpl_<name>`; returns that database's name."""
    template = f"tpl_{data.db_schema.name}"
    with psycopg.connect(dsn_for(port), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{template}"')
        admin.execute(f'CREATE DATABASE "{template}"')
    manager = SandboxManager(dsn_for(port, template))
    manager.register_domain(data)
    manager._db.close()  # no connection may be left open to a template
    return template


def bench_template(admin: psycopg.Connection, template: str) -> tuple[list[float], list[float]]:
    creates, drops = [], []
    for _ in range(RUNS):
        creates.append(timed(lambda: admin.execute(f'CREATE DATABASE sbx_x TEMPLATE "{template}"')))
        drops.append(timed(lambda: admin.execute("DROP DATABASE sbx_x")))
    return creates, drops


def template_fails_while_connected(port: int, admin: psycopg.Connection, template: str) -> str:
    with psycopg.connect(dsn_for(port, template)):
        try:
            admin.execute(f'CREATE DATABASE sbx_busy TEMPLATE "{template}"')
        except psycopg.Error as e:
            return f"fails while the template has a connection: {str(e).splitlines()[0]}"
    admin.execute("DROP DATABASE sbx_busy")
    return "unexpectedly succeeded while the template had a connection"


def bench_savepoint(manager: SandboxManager, data: DomainData) -> tuple[list[float], list[float]]:
    """SAVEPOINT, then (untimed) UPDATE every row of the largest table, then ROLLBACK TO SAVEPOINT."""
    largest = max(data.db_schema.tables, key=lambda t: len(data.rows[t.name]))
    text_column = next(c.name for c in largest.columns if c.type == "text")
    schema = domain_schema_name(data.db_schema.name)
    with psycopg.connect(manager.dsn) as conn:  # one transaction on one connection
        conn.execute(f'SET search_path TO "{schema}"')
        saves, rollbacks = [], []
        for _ in range(RUNS):
            saves.append(timed(lambda: conn.execute("SAVEPOINT s")))
            conn.execute(f'UPDATE "{largest.name}" SET "{text_column}" = "{text_column}" || \'\'')
            rollbacks.append(timed(lambda: conn.execute("ROLLBACK TO SAVEPOINT s")))
        conn.rollback()
    return saves, rollbacks


def bench_state_hash(manager: SandboxManager, domain: str) -> list[float]:
    db_schema = manager.domain_schema(domain)
    return [timed(lambda: manager.schema_state_hash(domain_schema_name(domain), db_schema)) for _ in range(RUNS)]


def render(results: list[tuple[str, str, int, list[float], list[float]]]) -> Table:
    table = Table(title=f"Sandbox create / drop latency (ms, {RUNS} runs each)")
    for header in ("candidate", "database", "rows", "create median", "create p90", "drop median", "drop p90"):
        table.add_column(header, justify="left" if header in ("candidate", "database") else "right")
    for candidate, database, rows, creates, drops in results:
        cm, cp = summary(creates)
        dm, dp = summary(drops)
        table.add_row(candidate, database, str(rows), f"{cm:.1f}", f"{cp:.1f}", f"{dm:.1f}", f"{dp:.1f}")
    return table


def run(port: int) -> None:
    base = build_demo("telecom")
    databases = [base, scaled_copy(base, 10)]
    manager = SandboxManager(dsn_for(port, "turnforge"))
    results, hashes, notes = [], [], []
    with psycopg.connect(dsn_for(port), autocommit=True) as admin:
        for data in databases:
            name, rows = data.db_schema.name, row_count(data)
            manager.register_domain(data, replace=True)
            results.append(("schema copy", name, rows, *bench_schema_copy(manager, name)))
            template = load_template(port, data)
            results.append(("CREATE DATABASE … TEMPLATE", name, rows, *bench_template(admin, template)))
            notes.append(f"{template}: " + template_fails_while_connected(port, admin, template))
            results.append(("savepoint rollback", name, rows, *bench_savepoint(manager, data)))
            hashes.append((name, rows, summary(bench_state_hash(manager, name))))
    manager._db.close()

    console.print(render(results))
    hash_table = Table(title=f"schema_state_hash (ms, {RUNS} runs each)")
    for header in ("database", "rows", "median", "p90"):
        hash_table.add_column(header, justify="left" if header == "database" else "right")
    for name, rows, (median, p90) in hashes:
        hash_table.add_row(name, str(rows), f"{median:.1f}", f"{p90:.1f}")
    console.print(hash_table)
    for note in notes:
        console.print(note, markup=False)
    console.print("savepoint rollback: create = SAVEPOINT, drop = ROLLBACK TO SAVEPOINT after an UPDATE of the "
                  "largest table; it lives in one open transaction on one connection and survives no restart.",
                  markup=False)
    print_pick(results)


def print_pick(results) -> None:
    """Of the candidates that survive a restart and serve any connection: lowest create+drop median on the big database."""
    cost = {(c, rows): summary(cr)[0] + summary(dr)[0] for c, _, rows, cr, dr in results if c != "savepoint rollback"}
    small, big = min(r for _, r in cost), max(r for _, r in cost)
    durable = sorted({c for c, _ in cost}, key=lambda c: cost[c, big])
    pick, other = durable[0], durable[-1]
    create_ms = next(summary(cr)[0] for c, _, rows, cr, _ in results if (c, rows) == (pick, big))
    console.print(f"pick: {pick} ({create_ms:.1f} ms median create; create+drop {cost[pick, big]:.1f} ms on {big} rows, "
                  f"{cost[pick, small]:.1f} ms on {small}) — vs {other} at {cost[other, big]:.1f} / "
                  f"{cost[other, small]:.1f} ms; savepoints are cheaper but neither durable nor shareable", markup=False)


def main() -> int:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="tf-bench-pg-") as tmp:
        data_dir = Path(tmp) / "pgdata"
        try:
            local_postgres.start(data_dir, port, database="turnforge")
            run(port)
        finally:
            local_postgres.stop(data_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
