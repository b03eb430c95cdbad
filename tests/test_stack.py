"""The embedded stack: detached processes, readiness, demo domains, and an idempotent `down`."""
from __future__ import annotations

import signal
import sys
import time

import psycopg
import pytest

from shared.ops import local_broker, stack
from shared.runtime.config import KafkaConfig, LLMConfig, ModelEndpoint, PostgresConfig, Settings
from shared.contracts import Topics
from shared.runtime.ports import free_port


def _settings(tmp_path) -> Settings:
    return Settings(
        kafka=KafkaConfig(bootstrap_servers=f"127.0.0.1:{free_port()}"),
        postgres=PostgresConfig(dsn=f"postgresql://postgres@127.0.0.1:{free_port()}/turnforge"),
        llm=LLMConfig(default=ModelEndpoint(base_url=f"http://127.0.0.1:{free_port()}/v1")),
        state_dir=tmp_path / "state",
    )


def test_detached_process_lifecycle(tmp_path):
    settings = _settings(tmp_path)
    stack._spawn(settings, "sleeper", [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"])
    pidfile = stack.pid_path(settings, "sleeper")
    assert stack.is_running(pidfile)
    stack._stop(pidfile, signal.SIGKILL)  # what a crash test does
    assert not stack.is_running(pidfile) and not pidfile.exists()
    stack._stop(pidfile)  # stopping what is gone is a no-op
    assert "up" in stack.log_path(settings, "sleeper").read_text()


def test_readiness_failure_shows_the_log(tmp_path):
    settings = _settings(tmp_path)
    stack._spawn(settings, "broken", [sys.executable, "-c", "raise SystemExit('bad config: no such thing')"])
    with pytest.raises(stack.StackError, match="bad config: no such thing"):
        stack._wait_ready(settings, "broken", lambda: False, timeout_s=10)


def test_embedded_broker_must_be_local(tmp_path):
    settings = _settings(tmp_path)
    settings.kafka.bootstrap_servers = "kafka-0.kafka:9092"
    with pytest.raises(stack.StackError, match="embedded broker"):
        stack.up(settings, with_model=False, with_services=False)
    with pytest.raises(ValueError):
        stack.start_service(settings, "nope")


def test_each_local_model_gets_a_server_of_its_own(tmp_path):
    settings = _settings(tmp_path)
    default_port = int(settings.llm.default.base_url.split(":")[2].split("/")[0])
    settings.llm.default.model = "qwen2.5-coder-1.5b-instruct"
    settings.llm.roles = {
        "agent": ModelEndpoint(base_url=settings.llm.default.base_url, model="qwen2.5-coder-1.5b-instruct"),
        "tool_simulator": ModelEndpoint(base_url="http://127.0.0.1:18999/v1", model="qwen2.5-coder-0.5b-instruct"),
        "judge": ModelEndpoint(base_url="https://api.example.com/v1", model="gpt-4.1"),
    }
    assert stack.model_servers(settings) == [
        stack.ModelServer("model", default_port, "qwen2.5-coder-1.5b-instruct"),
        stack.ModelServer("model-18999", 18999, "qwen2.5-coder-0.5b-instruct"),
    ]
    # llama-cpp-python reloads on every switch between models, so one port serves one model
    settings.llm.roles["user_sim"] = ModelEndpoint(base_url=settings.llm.default.base_url,
                                                   model="qwen2.5-coder-0.5b-instruct")
    with pytest.raises(stack.StackError, match="llm.roles.user_sim asks port"):
        stack.model_servers(settings)


def test_external_endpoints_start_no_model_and_unknown_local_ones_are_refused(tmp_path):
    settings = _settings(tmp_path)
    settings.llm.default.base_url = "https://api.example.com/v1"
    assert stack.model_servers(settings) == []
    stack.start_model(settings)  # nothing to start
    assert not list(tmp_path.glob("state/pids/model*.pid"))
    with pytest.raises(stack.StackError, match="no local model named 'gpt-4.1'"):
        stack.gguf_path("gpt-4.1")
    settings.llm.default.base_url = f"http://127.0.0.1:{free_port()}/v1"  # a vLLM server that is not up
    settings.llm.default.model = "Qwen/Qwen3-30B-A3B-Instruct-2507"
    with pytest.raises(stack.StackError, match="nothing answers at .* start that server first"):
        stack.start_model(settings)


@pytest.mark.integration
def test_up_and_down(tmp_path):
    from kafka.admin import KafkaAdminClient

    from shared.data.demo_databases import DEMO_DOMAINS
    from shared.env.sandbox import SandboxManager

    settings = _settings(tmp_path)
    port = int(settings.kafka.bootstrap_servers.rsplit(":", 1)[1])
    try:
        stack.up(settings, with_model=False, with_services=False)
        assert stack.is_running(stack.pid_path(settings, "broker"))
        assert local_broker.accepts(port)
        assert sorted(SandboxManager(settings.postgres.dsn).domains()) == sorted(DEMO_DOMAINS)
        admin = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
        try:
            assert {settings.topic(t) for t in Topics.ALL} <= set(admin.list_topics())
        finally:
            admin.close()
        rows = {r.name: r for r in stack.status(settings)}
        assert rows["broker"].running and rows["postgres"].running and not rows["model"].running
        assert not rows["agent"].running
        stack.up(settings, with_model=False, with_services=False)  # again: finds everything running
    finally:
        stack.down(settings)
    assert not local_broker.accepts(port)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(settings.postgres.dsn, connect_timeout=2)
    assert not list(stack.pid_path(settings, "x").parent.glob("*.pid"))
    stack.down(settings)  # idempotent


# -- a command's own stack ---------------------------------------------------------------------------------------
def test_a_private_stack_gets_free_ports_and_a_folder_of_its_own(tmp_path):
    settings = _settings(tmp_path)
    settings.postgres.dsn = "postgresql://postgres:secret@127.0.0.1:15432/turnforge?sslmode=disable"
    settings.llm.roles = {
        "agent": ModelEndpoint(base_url="http://127.0.0.1:18081/v1", model="qwen2.5-coder-0.5b-instruct"),
        "user_sim": ModelEndpoint(base_url="http://127.0.0.1:18082/v1", model="fake"),  # a test's scripted model
        "judge": ModelEndpoint(base_url="https://api.example.com/v1", model="gpt-4.1"),
    }
    own = stack.private_settings(settings, tmp_path / "own")
    assert own.state_dir == tmp_path / "own" and settings.state_dir == tmp_path / "state"
    ports = {own.kafka.bootstrap_servers.rsplit(":", 1)[1], own.postgres.dsn.split(":")[3].split("/")[0],
             own.llm.default.base_url.split(":")[2].split("/")[0], own.llm.roles["agent"].base_url.split(":")[2][:-3]}
    assert len(ports) == 4 and "15432" not in ports and "18081" not in ports  # all new, none the same
    assert own.postgres.dsn.startswith("postgresql://postgres:secret@127.0.0.1:")
    assert own.postgres.dsn.endswith("/turnforge?sslmode=disable")
    assert own.llm.roles["user_sim"] == settings.llm.roles["user_sim"]  # nothing of the stack's to start for it
    assert own.llm.roles["judge"] == settings.llm.roles["judge"]
    assert own.llm.default.model == settings.llm.default.model and own.kafka.topic_prefix == settings.kafka.topic_prefix


def test_services_of_a_private_stack_read_its_settings_not_the_environment(tmp_path, monkeypatch):
    own = stack.private_settings(_settings(tmp_path), tmp_path / "own")
    monkeypatch.setenv("TURNFORGE_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:19092")  # the caller's, already in `own`
    monkeypatch.setenv("TURNFORGE_KAFKA_CACHE", "/somewhere")  # not a setting: passed on
    env = stack._service_env(own, None)
    assert "TURNFORGE_KAFKA__BOOTSTRAP_SERVERS" not in env and env["TURNFORGE_KAFKA_CACHE"] == "/somewhere"
    monkeypatch.delenv("TURNFORGE_KAFKA__BOOTSTRAP_SERVERS")
    monkeypatch.setenv("TURNFORGE_CONFIG", env["TURNFORGE_CONFIG"])
    from shared.runtime.config import load_settings
    read = load_settings()
    assert read.model_dump() == own.model_dump() | {"state_dir": own.state_dir.resolve()}


@pytest.mark.integration
def test_a_port_taken_by_another_process_is_an_error_not_a_shared_stack(tmp_path, kafka_bootstrap):
    settings = _settings(tmp_path)
    settings.kafka.bootstrap_servers = kafka_bootstrap  # a broker this stack's folder knows nothing of
    with pytest.raises(stack.StackError, match=f"{kafka_bootstrap} is taken by a process this stack did not start"):
        stack.start_broker(settings)


def test_a_command_attaches_only_to_a_turnforge_up_stack_with_its_very_settings(tmp_path):
    settings = _settings(tmp_path)
    assert stack.shared_stack(settings) == (False, "")  # nothing runs
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    try:
        for name in ("broker", *stack.SERVICES):
            stack._spawn(settings, name, sleeper)
        stack._settings_record(settings).write_text(settings.model_dump_json())
        assert stack.shared_stack(settings) == (True, "")
        other = settings.model_copy(deep=True)
        other.kafka.fetch_max_wait_ms = 500
        attach, why = stack.shared_stack(other)
        assert not attach and "other settings (kafka.fetch_max_wait_ms: 50 there, 500 here)" in why
        stack.stop_service(settings, "agent")
        attach, why = stack.shared_stack(settings)
        assert not attach and why.endswith("lacks agent")
    finally:
        for name in ("broker", *stack.SERVICES):
            stack._stop(stack.pid_path(settings, name), signal.SIGKILL)


def test_nothing_to_reach_is_one_line_within_the_wait(tmp_path):
    settings = _settings(tmp_path)
    started = time.monotonic()
    with pytest.raises(stack.Unreachable) as raised:
        stack.require_reachable(settings, wait_s=2)
    assert time.monotonic() - started < 30  # the wait and one round of refused connections, not client retries
    message = str(raised.value)
    assert "\n" not in message
    assert f"no Kafka broker answers at {settings.kafka.bootstrap_servers}" in message
    assert "PostgreSQL at 127.0.0.1:" in message and "nothing listens there" in message
    assert f"no model server answers at {settings.llm.default.base_url}" in message
    assert "`turnforge up`" in message and "--embedded" in message and "kafka.bootstrap_servers" in message
    settings.llm.default.base_url = "https://api.example.com/v1"  # the services' network, maybe not this one's
    with pytest.raises(stack.Unreachable) as raised:
        stack.require_reachable(settings, wait_s=0, postgres=False)
    assert "model" not in str(raised.value).split(" (waited")[0]
