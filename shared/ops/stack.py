"""The embedded laptop stack: broker, PostgreSQL, model server and the seven services as detached processes.

Every component is a process of its own session (it outlives `turnforge up`), logs to <state_dir>/logs/<name>.log
and leaves its pid in <state_dir>/pids/<name>.pid, which is all `down` and `status` need to find it again.
Production runs none of this: it points the settings at a Kafka cluster, a PostgreSQL server and a model endpoint.
"""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

import psycopg
import yaml
from kafka.errors import KafkaError

from shared.contracts import flow
from shared.data.demo_databases import DEMO_DOMAINS, build_demo
from shared.env.sandbox import SandboxManager
from shared.ops import local_broker, local_model, local_postgres
from shared.runtime import readiness
from shared.runtime.bus import ensure_topics
from shared.runtime.config import Settings

log = logging.getLogger("turnforge.stack")

SERVICES = tuple(service.replace("-", "_") for service in flow.SERVICES)  # as their modules are named
LOCAL_HOST = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parents[2]


class StackError(RuntimeError):
    pass


@dataclass
class ComponentStatus:
    name: str
    running: bool
    pid: int | None = None
    detail: str = ""


# -- paths -------------------------------------------------------------------------------------------------------
def _state(settings: Settings) -> Path:
    return Path(settings.state_dir).resolve()


def log_path(settings: Settings, name: str) -> Path:
    return _state(settings) / "logs" / f"{name}.log"


def pid_path(settings: Settings, name: str) -> Path:
    return _state(settings) / "pids" / f"{name}.pid"


def _pgdata(settings: Settings) -> Path:
    return _state(settings) / "pgdata"


# -- processes ---------------------------------------------------------------------------------------------------
def _read_pid(pidfile: Path) -> int | None:
    try:
        return int(Path(pidfile).read_text().strip())
    except (OSError, ValueError):
        return None


def is_running(pidfile: str | os.PathLike) -> bool:
    pid = _read_pid(Path(pidfile))
    if pid is None:
        return False
    try:  # a child of ours that exited stays a zombie until reaped, and a zombie still "exists"
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user (PostgreSQL runs as its own user under root)
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return True


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _spawn(settings: Settings, name: str, argv: list[str], env: dict[str, str] | None = None) -> int:
    logfile = log_path(settings, name)
    logfile.parent.mkdir(parents=True, exist_ok=True)
    pid_path(settings, name).parent.mkdir(parents=True, exist_ok=True)
    with open(logfile, "ab") as out:
        out.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(argv)}\n".encode())
        out.flush()
        # Own session: a Ctrl-C in the terminal that ran `turnforge up` does not reach the stack.
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, cwd=REPO_ROOT, start_new_session=True)
    pid_path(settings, name).write_text(str(proc.pid))
    return proc.pid


def _stop(pidfile: Path, sig: int = signal.SIGTERM, grace_s: float = 10.0) -> None:
    """Signal the process group, wait for it to exit (SIGKILL after grace_s) and remove the pid file."""
    pid = _read_pid(pidfile)
    if pid is not None and is_running(pidfile):
        _signal_group(pid, sig)
        if not _wait_exit(pidfile, grace_s if sig != signal.SIGKILL else 5.0) and sig != signal.SIGKILL:
            log.warning("pid %d ignored signal %d for %.0fs: killing it", pid, sig, grace_s)
            _signal_group(pid, signal.SIGKILL)
            _wait_exit(pidfile, 5.0)
    Path(pidfile).unlink(missing_ok=True)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # start_new_session made the process its group's leader
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _wait_exit(pidfile: Path, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while is_running(pidfile):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _wait_ready(settings: Settings, name: str, ready: Callable[[], bool], timeout_s: float) -> None:
    log = log_path(settings, name)
    try:
        readiness.wait_ready(name, ready, timeout_s, alive=lambda: is_running(pid_path(settings, name)),
                             detail=lambda: f"; last lines of {log}:\n{_tail(log)}")
    except readiness.NotReady as e:
        raise StackError(str(e)) from e


# -- endpoints from the settings ---------------------------------------------------------------------------------
def broker_port(settings: Settings) -> int:
    servers = settings.kafka.bootstrap_servers
    host, _, port = servers.strip().rpartition(":")
    if "," in servers or host != LOCAL_HOST or not port.isdigit():
        raise StackError(f"the embedded broker runs on {LOCAL_HOST}:<port>, but kafka.bootstrap_servers is "
                         f"{servers!r}; with a cluster, skip `turnforge up` and run against it directly")
    return int(port)


def _local_postgres(settings: Settings) -> tuple[int, str] | None:
    """(port, database) when the DSN names the embedded server, None for an external one."""
    url = urlparse(settings.postgres.dsn)
    if url.hostname != LOCAL_HOST:
        return None
    return url.port or 5432, url.path.lstrip("/") or "postgres"


@dataclass(frozen=True)
class ModelServer:
    """One local llama-cpp-python server: the component `name` (its pid and log files), its port and its model."""
    name: str
    port: int
    model: str

    @property
    def base_url(self) -> str:
        return f"http://{LOCAL_HOST}:{self.port}/v1"


def _local_port(base_url: str) -> int | None:
    url = urlparse(base_url)
    return (url.port or 80) if url.hostname == LOCAL_HOST else None


def model_servers(settings: Settings) -> list[ModelServer]:
    """The local servers the endpoints name: one per 127.0.0.1 port, the default endpoint's first.

    A llama-cpp-python server keeps one model loaded and reloads it whenever a request names another, so two
    models never share a port: each gets a server of its own."""
    default_port = _local_port(settings.llm.default.base_url)
    models_by_port: dict[int, str] = {}
    for role, endpoint in [("default", settings.llm.default), *settings.llm.roles.items()]:
        port = _local_port(endpoint.base_url)
        if port is None:
            continue
        model = models_by_port.setdefault(port, endpoint.model)
        if model != endpoint.model:
            raise StackError(f"llm.{role if role == 'default' else 'roles.' + role} asks port {port} for "
                             f"{endpoint.model!r}, which already serves {model!r}: give each local model a port")
    return [ModelServer("model" if port == default_port else f"model-{port}", port, model)
            for port, model in sorted(models_by_port.items(), key=lambda item: item[0] != default_port)]


def _pg_accepts(dsn: str) -> bool:
    try:
        with psycopg.connect(dsn, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def model_ready(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(base_url.rstrip("/") + "/models", timeout=3) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _model_up(settings: Settings, server: ModelServer) -> bool:
    # A model busy generating may be slow to answer /v1/models: its live process is enough.
    return is_running(pid_path(settings, server.name)) or model_ready(server.base_url)


def gguf_path(model: str) -> Path:
    """The verified GGUF file of a local model, assembled into the cache from its packages on first use."""
    try:
        return local_model.model_path(local_model.lookup(model))
    except local_model.ModelFileError as e:
        raise StackError(str(e)) from e


# -- components --------------------------------------------------------------------------------------------------
def start_broker(settings: Settings) -> None:
    port = broker_port(settings)
    if local_broker.accepts(port):
        log.info("broker: already listening on %s:%d", LOCAL_HOST, port)
        return
    _spawn(settings, "broker", local_broker.command(port))
    _wait_ready(settings, "broker", lambda: local_broker.accepts(port), 30)
    log.info("broker: tansu on %s:%d", LOCAL_HOST, port)


def start_postgres(settings: Settings) -> None:
    local = _local_postgres(settings)
    if local is None:
        if not _pg_accepts(settings.postgres.dsn):
            raise StackError(f"cannot connect to the external PostgreSQL at {settings.postgres.dsn}")
        log.info("postgres: external server reachable")
    else:
        port, database = local
        data_dir = _pgdata(settings)
        logfile = log_path(settings, "postgres")
        logfile.parent.mkdir(parents=True, exist_ok=True)
        try:
            local_postgres.start(data_dir, port, database=database)
        except Exception as e:  # noqa: BLE001 - initdb/pg_ctl failures carry their reason in stderr and the log
            stderr = getattr(e, "stderr", "") or ""
            raise StackError(f"PostgreSQL did not start on port {port}: {e}\n{stderr}\nlast lines of "
                             f"{data_dir / 'server.log'}:\n{_tail(data_dir / 'server.log')}") from e
        # pg_ctl daemonises the server and logs inside the data directory; mirror both where the others are.
        if not logfile.is_symlink():
            logfile.unlink(missing_ok=True)
            logfile.symlink_to(data_dir / "server.log")
        postmaster = _postmaster_pid(data_dir)
        if postmaster:
            pid_path(settings, "postgres").parent.mkdir(parents=True, exist_ok=True)
            pid_path(settings, "postgres").write_text(str(postmaster))
        log.info("postgres: local server on %s:%d, database %s", LOCAL_HOST, port, database)
    load_demo_domains(settings.postgres.dsn)


def _postmaster_pid(data_dir: Path) -> int | None:
    try:  # first line of postmaster.pid is the server's pid
        return int((data_dir / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def load_demo_domains(dsn: str) -> list[str]:
    """Register the demo domain databases that are not registered yet; returns the names loaded now."""
    manager = SandboxManager(dsn)
    have = set(manager.domains())
    loaded = []
    for name in DEMO_DOMAINS:
        if name not in have:  # building the rows takes a moment: skip what is there already
            manager.register_domain(build_demo(name))
            loaded.append(name)
    if loaded:
        log.info("postgres: loaded demo domains %s", ", ".join(loaded))
    return loaded


# llama.cpp runs best with a thread per physical core (about half the logical ones), and at least the 2 measured.
MODEL_THREADS = max(2, (os.cpu_count() or 2) // 2)
# Prompts are read at about 100 tokens/s with the 1.5B model on 2 cores: a longer context would only admit calls
# that outlast the client timeout. Its KV cache at 8192 tokens is about 230 MB.
MODEL_CONTEXT_TOKENS = 8192


def start_model(settings: Settings) -> None:
    servers = model_servers(settings)
    if not servers:
        log.info("model: external endpoint %s", settings.llm.default.base_url)
    for server in servers:
        _start_model_server(settings, server)


def _start_model_server(settings: Settings, server: ModelServer) -> None:
    if _model_up(settings, server):
        log.info("model: %s already serving on port %d", server.model, server.port)
        return
    if server.model not in local_model.MODELS:  # e.g. a vLLM server on 127.0.0.1 that is not up yet
        raise StackError(f"nothing answers at {server.base_url}, and {server.model!r} is not a model the embedded "
                         f"stack serves ({', '.join(local_model.MODELS)}): start that server first")
    argv = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_path(server.model)),
            "--model_alias", server.model, "--host", LOCAL_HOST, "--port", str(server.port),
            "--n_threads", str(MODEL_THREADS), "--n_ctx", str(MODEL_CONTEXT_TOKENS)]
    _spawn(settings, server.name, argv)
    _wait_ready(settings, server.name, lambda: model_ready(server.base_url), 180)
    log.info("model: %s on port %d", server.model, server.port)


def _stop_models(settings: Settings) -> None:
    # By pid file rather than by the settings: a server started under other settings is stopped too.
    for pidfile in sorted(pid_path(settings, "model").parent.glob("model*.pid")):
        _stop(pidfile)


def ensure_topics_ready(settings: Settings, timeout_s: float = 30) -> None:
    # A freshly started broker accepts connections a little before it serves metadata.
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            ensure_topics(settings)
            return
        except KafkaError as e:
            if time.monotonic() > deadline:
                raise StackError(f"could not create the topics on {settings.kafka.bootstrap_servers}: {e}") from e
            time.sleep(0.5)


def _service_config(settings: Settings, config_path: str | os.PathLike | None) -> Path:
    """The file the services load their settings from.

    Without a config file the caller's settings may still differ from the defaults (free ports in tests), so
    they are written out for the services instead of leaving them to guess."""
    if config_path:
        return Path(config_path).resolve()
    path = _state(settings) / "effective-config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = settings.model_dump(mode="json")
    data["state_dir"] = str(_state(settings))
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def start_service(settings: Settings, name: str, config_path: str | os.PathLike | None = None, *,
                  check_s: float = 1.0) -> int:
    """Start `python -m services.<name>`; returns its pid. Fails if it exits within check_s."""
    if name not in SERVICES:
        raise ValueError(f"unknown service {name!r}; one of {', '.join(SERVICES)}")
    if is_running(pid_path(settings, name)):
        return _read_pid(pid_path(settings, name))  # type: ignore[return-value]
    env = dict(os.environ, TURNFORGE_CONFIG=str(_service_config(settings, config_path)))
    pid = _spawn(settings, name, [sys.executable, "-m", f"services.{name}"], env)
    _check_alive(settings, [name], check_s)
    return pid


def stop_service(settings: Settings, name: str, sig: int = signal.SIGTERM, grace_s: float = 10.0) -> None:
    """Send `sig` (SIGKILL to simulate a crash) and wait until the service is gone."""
    _stop(pid_path(settings, name), sig, grace_s)


def _check_alive(settings: Settings, names: list[str], after_s: float) -> None:
    time.sleep(after_s)  # a service with a broken import or config dies within a second
    for name in names:
        if not is_running(pid_path(settings, name)):
            raise StackError(f"service {name} exited right after start; last lines of {log_path(settings, name)}:\n"
                             f"{_tail(log_path(settings, name))}")


# -- the whole stack ---------------------------------------------------------------------------------------------
def up(settings: Settings, *, with_model: bool = True, with_services: bool = True,
       config_path: str | os.PathLike | None = None) -> None:
    """Start what is not running yet, in dependency order; safe to call again."""
    start_broker(settings)
    start_postgres(settings)
    if with_model:
        start_model(settings)
    ensure_topics_ready(settings)
    if with_services:
        for name in SERVICES:
            start_service(settings, name, config_path, check_s=0)
        _check_alive(settings, list(SERVICES), 2.0)
        log.info("services: %s", ", ".join(SERVICES))


def down(settings: Settings) -> None:
    """Stop everything `up` started, services first so they can commit their offsets; safe to call twice."""
    for name in SERVICES:
        stop_service(settings, name)
    _stop_models(settings)
    _stop(pid_path(settings, "broker"))
    if _local_postgres(settings) is not None:
        local_postgres.stop(_pgdata(settings))
    pid_path(settings, "postgres").unlink(missing_ok=True)


def status(settings: Settings) -> list[ComponentStatus]:
    def pid(name: str) -> int | None:
        return _read_pid(pid_path(settings, name)) if is_running(pid_path(settings, name)) else None

    rows = []
    try:
        port = broker_port(settings)
        rows.append(ComponentStatus("broker", local_broker.accepts(port), pid("broker"), f"{LOCAL_HOST}:{port}"))
    except StackError:
        rows.append(ComponentStatus("broker", False, None, f"external: {settings.kafka.bootstrap_servers}"))
    where = "local" if _local_postgres(settings) else "external"
    rows.append(ComponentStatus("postgres", _pg_accepts(settings.postgres.dsn), pid("postgres"), where))
    servers = model_servers(settings)
    for server in servers:
        rows.append(ComponentStatus(server.name, model_ready(server.base_url), pid(server.name),
                                    f"local: {server.model} at {server.base_url}"))
    if not servers:
        rows.append(ComponentStatus("model", model_ready(settings.llm.default.base_url), None,
                                    f"external: {settings.llm.default.base_url}"))
    for name in SERVICES:
        rows.append(ComponentStatus(name, pid(name) is not None, pid(name), str(log_path(settings, name))))
    return rows


@contextlib.contextmanager
def postgres_available(settings: Settings):
    """The configured PostgreSQL for one command: used if it answers, else the embedded one is started for the
    command and stopped after it."""
    if _pg_accepts(settings.postgres.dsn):
        yield
        return
    if _local_postgres(settings) is None:
        raise StackError(f"cannot connect to PostgreSQL at {settings.postgres.dsn}")
    start_postgres(settings)
    try:
        yield
    finally:
        local_postgres.stop(_pgdata(settings))
        pid_path(settings, "postgres").unlink(missing_ok=True)


@contextlib.contextmanager
def model_available(settings: Settings):
    """The configured models for one command: running servers are used as they are (not ours to stop), the local
    ones that are not running are started and stopped after."""
    started = [server for server in model_servers(settings) if not _model_up(settings, server)]
    try:
        for server in started:
            _start_model_server(settings, server)
        yield
    finally:
        for server in started:
            _stop(pid_path(settings, server.name))
