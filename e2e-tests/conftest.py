"""Fixtures for end-to-end runs: the seven services as real processes against a real broker and PostgreSQL."""
from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fake_llm import FakeLLM  # noqa: E402
from harness import service_logs  # noqa: E402

from shared.ops import stack
from shared.runtime.config import Settings  # noqa: E402
from shared.ops.local_postgres import create_database  # noqa: E402
from shared.env.sandbox import SandboxManager  # noqa: E402


@pytest.fixture(scope="module")
def fake_llm():
    with FakeLLM() as fake:
        yield fake


@pytest.fixture(scope="module")
def e2e_settings(postgres_server, kafka_bootstrap, fake_llm, tmp_path_factory) -> Settings:
    """Settings for one module's run: its own database, topic prefix and state folder."""
    name = "e2e_" + uuid.uuid4().hex[:8]
    dsn = create_database(postgres_server, name)
    settings = Settings(
        kafka={"bootstrap_servers": kafka_bootstrap, "topic_prefix": f"{name}.", "partitions": 2},
        postgres={"dsn": dsn},
        llm={"default": {"base_url": fake_llm.base_url, "model": "fake", "structured_output": "json_schema",
                         "timeout_s": 30, "extra_body": {}}},
        service={"concurrency": 4, "backoff_initial_s": 0.05, "backoff_max_s": 0.2},
        state_dir=tmp_path_factory.mktemp("state"),
    )
    stack.load_demo_domains(dsn)
    return settings


@pytest.fixture(scope="module")
def services(e2e_settings):
    """All seven services as separate processes; stopped (and their logs shown on failure) at the end."""
    for name in stack.SERVICES:
        stack.start_service(e2e_settings, name, check_s=0)
    time.sleep(2)  # a service with a broken import or config dies within this
    for name in stack.SERVICES:
        assert stack.is_running(stack.pid_path(e2e_settings, name)), service_logs(e2e_settings)
    yield e2e_settings
    for name in stack.SERVICES:
        stack.stop_service(e2e_settings, name)
