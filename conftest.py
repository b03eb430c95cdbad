"""Shared fixtures: a real PostgreSQL and a real Kafka-protocol broker, started once per test session."""
from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path

import psycopg
import pytest

from shared.runtime.ports import free_port


@pytest.fixture(scope="session")
def postgres_server():
    """DSN of the maintenance database of a throwaway local PostgreSQL server."""
    from shared.ops import local_postgres

    # Not under pytest's own temporary folder: the server runs as another user, and every new pytest session on the
    # machine makes that folder private again, which would cut a running server off from its data.
    home = Path(tempfile.mkdtemp(prefix="turnforge-test-pg-"))
    data_dir = home / "data"
    port = free_port()
    local_postgres.start(data_dir, port, database="postgres")
    yield local_postgres.dsn_for(port)
    local_postgres.stop(data_dir)
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def postgres_dsn(postgres_server):
    """A fresh, empty database per test, as a superuser DSN."""
    from shared.ops.local_postgres import create_database

    name = "t_" + uuid.uuid4().hex[:12]
    yield create_database(postgres_server, name)
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory):
    """bootstrap_servers of a throwaway tansu broker."""
    from shared.ops import local_broker

    port = free_port()
    proc = local_broker.start(port, Path(tmp_path_factory.mktemp("broker")) / "tansu.log")
    yield f"127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)
