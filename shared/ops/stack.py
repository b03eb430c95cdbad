"""The embedded laptop stack: broker, PostgreSQL, model server and the seven services as processes of their own.

Every component is a process of its own session, logs to <state_dir>/logs/<name>.log and leaves its pid in
<state_dir>/pids/<name>.pid, which is all `down` and `status` need to find it again. Two kinds of stack:

- `turnforge up` starts the shared one on the configured addresses; it outlives the command, `turnforge down` stops it.
  A port already taken by a process this stack did not start is an error, never joined.
- `embedded()` gives one command (`run --embedded`, `eval --embedded`) a private stack on free ports in a state folder
  of its own, tied to the command (shared.runtime.lifeline): it ends with it, even after a SIGKILL. Its PostgreSQL
  starts from a copy of the shared stack's data, so the domains imported there are at hand. When `turnforge up` runs
  with the command's very settings, the command attaches to it instead and leaves it running.

Production runs none of this: it points the settings at a Kafka cluster, a PostgreSQL server and a model endpoint.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlparse, urlunparse

import psycopg
import yaml
from kafka.errors import KafkaError

from shared.contracts import flow
from shared.data.demo_databases import DEMO_DOMAINS, build_demo
from shared.env.sandbox import SandboxManager
from shared.ops import local_broker, local_model, local_postgres
from shared.runtime import lifeline, readiness
from shared.runtime.bus import ensure_topics
from shared.runtime.config import Settings
from shared.runtime.ports import free_port

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


def _settings_record(settings: Settings) -> Path:
    return _state(settings) / "stack-settings.json"


# -- processes ---------------------------------------------------------------------------------------------------
def _read_pid(pidfile: Path) -> int | None:
    try:
        return int(Path(pidfile).read_text().strip())
    except (OSError, ValueError):
        return None


def is_running(pidfile: str | os.PathLike) -> bool:
    pid = _read_pid(Path(pidfile))
    return pid is not None and pid_alive(pid)


def pid_alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie, exited but not yet reaped, does not)."""
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


def _spawn(settings: Settings, name: str, argv: list[str], env: dict[str, str] | None = None, *,
           tied: bool = False, user: str | None = None, parent_death_signal: int = signal.SIGTERM) -> int:
    """Start a component in a session of its own; `tied`: it ends when this process does (parent_death_signal)."""
    logfile = log_path(settings, name)
    logfile.parent.mkdir(parents=True, exist_ok=True)
    if logfile.is_symlink():  # older state folders linked PostgreSQL's log here
        logfile.unlink()
    pid_path(settings, name).parent.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in (os.environ if env is None else env).items() if k != lifeline.PARENT_ENV}
    preexec = None
    if tied:
        argv, env, preexec = lifeline.tied(argv, env, parent_death_signal)
    with open(logfile, "ab") as out:
        out.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(argv)}\n".encode())
        out.flush()
        # Own session: a Ctrl-C in the terminal reaches the command alone, which stops its stack in order.
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                cwd=REPO_ROOT, start_new_session=True, user=user, preexec_fn=preexec)
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
def port_taken(settings: Settings, address: str, key: str) -> StackError:
    return StackError(
        f"{address} is taken by a process this stack did not start (its files are in {_state(settings)}): stop "
        f"that process, or give {key} another port; `--embedded` commands need no fixed port")


def start_broker(settings: Settings, *, tied: bool = False) -> None:
    port = broker_port(settings)
    if local_broker.accepts(port):
        if not is_running(pid_path(settings, "broker")):
            raise port_taken(settings, f"{LOCAL_HOST}:{port}", "kafka.bootstrap_servers")
        log.info("broker: already listening on %s:%d", LOCAL_HOST, port)
        return
    _spawn(settings, "broker", local_broker.command(port), tied=tied)
    _wait_ready(settings, "broker", lambda: local_broker.accepts(port), 30)
    log.info("broker: tansu on %s:%d", LOCAL_HOST, port)


def start_postgres(settings: Settings, *, tied: bool = False, copy_of: Settings | None = None) -> None:
    """The configured PostgreSQL: an external one must answer, a local one is started here (its data directory
    first copied from `copy_of`'s local server, when that has one)."""
    local = _local_postgres(settings)
    if local is None:
        if not _pg_accepts(settings.postgres.dsn):
            raise StackError(f"cannot connect to the external PostgreSQL at {settings.postgres.dsn}")
        log.info("postgres: external server reachable")
    else:
        port, database = local
        if local_postgres.accepts(port):
            if not is_running(pid_path(settings, "postgres")):
                raise port_taken(settings, f"{LOCAL_HOST}:{port}", "postgres.dsn")
            log.info("postgres: already running on %s:%d", LOCAL_HOST, port)
        else:
            _start_local_postgres(settings, port, tied=tied, copy_of=copy_of)
        local_postgres.create_database(local_postgres.dsn_for(port), database)
        log.info("postgres: local server on %s:%d, database %s", LOCAL_HOST, port, database)
    load_demo_domains(settings.postgres.dsn)


def _start_local_postgres(settings: Settings, port: int, *, tied: bool, copy_of: Settings | None) -> None:
    data_dir = _pgdata(settings)
    source = _local_postgres(copy_of) if copy_of is not None else None
    try:
        if source is not None and (_pgdata(copy_of) / "PG_VERSION").exists():
            postmaster = _postmaster_pid(_pgdata(copy_of))
            serving = postmaster is not None and pid_alive(postmaster) and local_postgres.accepts(source[0])
            log.info("postgres: copying the data of %s%s", _pgdata(copy_of), " (running)" if serving else "")
            local_postgres.copy_data(_pgdata(copy_of), data_dir, running_port=source[0] if serving else None)
        user = local_postgres.initialise(data_dir)
    except (OSError, subprocess.CalledProcessError) as e:
        stderr = getattr(e, "stderr", "") or ""
        raise StackError(f"PostgreSQL's data directory {data_dir} could not be made: {e}\n{stderr}") from e
    # In the foreground, a child of this process like the other components: its log and pid are where theirs are,
    # and a tied stack's server gets SIGINT (a fast shutdown) when the command is gone.
    _spawn(settings, "postgres", local_postgres.server_argv(data_dir, port), tied=tied, user=user,
           parent_death_signal=signal.SIGINT)
    _wait_ready(settings, "postgres", lambda: local_postgres.accepts(port), 60)


def _postmaster_pid(data_dir: Path) -> int | None:
    try:  # first line of postmaster.pid is the server's pid
        return int((data_dir / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def _stop_postgres(settings: Settings) -> None:
    if _local_postgres(settings) is not None:
        local_postgres.stop(_pgdata(settings))  # a fast shutdown: sessions are ended, not waited for
    _stop(pid_path(settings, "postgres"), signal.SIGINT)


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


def start_model(settings: Settings, *, tied: bool = False) -> None:
    servers = model_servers(settings)
    if not servers:
        log.info("model: external endpoint %s", settings.llm.default.base_url)
    for server in servers:
        _start_model_server(settings, server, tied=tied)


def _start_model_server(settings: Settings, server: ModelServer, *, tied: bool = False) -> None:
    if _model_up(settings, server):
        log.info("model: %s already serving on port %d", server.model, server.port)
        return
    if server.model not in local_model.MODELS:  # e.g. a vLLM server on 127.0.0.1 that is not up yet
        raise StackError(f"nothing answers at {server.base_url}, and {server.model!r} is not a model the embedded "
                         f"stack serves ({', '.join(local_model.MODELS)}): start that server first")
    argv = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_path(server.model)),
            "--model_alias", server.model, "--host", LOCAL_HOST, "--port", str(server.port),
            "--n_threads", str(MODEL_THREADS), "--n_ctx", str(MODEL_CONTEXT_TOKENS)]
    _spawn(settings, server.name, argv, tied=tied)
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


def _service_env(settings: Settings, config_path: str | os.PathLike | None) -> dict[str, str]:
    """The environment the services read their settings from: the config file and the environment, as the caller
    read them.

    Without a config file the caller's settings may still differ from the defaults (free ports in tests, a private
    stack), so they are written out for the services instead of leaving them to guess; the TURNFORGE_ variables are
    then left out, as the file holds their values already and they would override it."""
    if config_path:
        return dict(os.environ, TURNFORGE_CONFIG=str(Path(config_path).resolve()))
    path = _state(settings) / "effective-config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = settings.model_dump(mode="json")
    data["state_dir"] = str(_state(settings))
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return dict({k: v for k, v in os.environ.items() if not _a_setting(k)}, TURNFORGE_CONFIG=str(path))


def _a_setting(variable: str) -> bool:
    """Whether pydantic-settings reads `variable` into Settings (TURNFORGE_KAFKA__BOOTSTRAP_SERVERS, ...)."""
    prefix, _, rest = variable.partition("_")
    return prefix.upper() == "TURNFORGE" and rest.lower().split("__")[0] in Settings.model_fields


def start_service(settings: Settings, name: str, config_path: str | os.PathLike | None = None, *,
                  check_s: float = 1.0, tied: bool = False) -> int:
    """Start `python -m services.<name>`; returns its pid. Fails if it exits within check_s."""
    if name not in SERVICES:
        raise ValueError(f"unknown service {name!r}; one of {', '.join(SERVICES)}")
    if is_running(pid_path(settings, name)):
        return _read_pid(pid_path(settings, name))  # type: ignore[return-value]
    pid = _spawn(settings, name, [sys.executable, "-m", f"services.{name}"], _service_env(settings, config_path),
                 tied=tied)
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
       config_path: str | os.PathLike | None = None, tied: bool = False,
       postgres_copy_of: Settings | None = None) -> None:
    """Start what is not running yet, in dependency order; safe to call again. `tied`: every process ends with this
    one (a command's private stack); `postgres_copy_of`: a new local PostgreSQL starts from a copy of that stack's."""
    start_broker(settings, tied=tied)
    start_postgres(settings, tied=tied, copy_of=postgres_copy_of)
    if with_model:
        start_model(settings, tied=tied)
    ensure_topics_ready(settings)
    if with_services:
        for name in SERVICES:
            start_service(settings, name, config_path, check_s=0, tied=tied)
        _check_alive(settings, list(SERVICES), 2.0)
        log.info("services: %s", ", ".join(SERVICES))
    if not tied:  # what a command compares its own settings with before it attaches to this stack
        _settings_record(settings).write_text(settings.model_dump_json())


def down(settings: Settings) -> None:
    """Stop everything `up` started, services first so they can commit their offsets; safe to call twice."""
    _settings_record(settings).unlink(missing_ok=True)
    for name in SERVICES:
        stop_service(settings, name)
    _stop_models(settings)
    _stop(pid_path(settings, "broker"))
    _stop_postgres(settings)


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
    command (tied to it) and stopped after it. Its data stays: the domains imported here are `turnforge up`'s."""
    if _pg_accepts(settings.postgres.dsn):
        yield
        return
    if _local_postgres(settings) is None:
        raise StackError(f"cannot connect to PostgreSQL at {settings.postgres.dsn}")
    try:
        start_postgres(settings, tied=True)
        yield
    finally:
        _stop_postgres(settings)


@contextlib.contextmanager
def model_available(settings: Settings):
    """The configured models for one command: running servers are used as they are (not ours to stop), the local
    ones that are not running are started and stopped after."""
    started = [server for server in model_servers(settings) if not _model_up(settings, server)]
    try:
        for server in started:
            _start_model_server(settings, server, tied=True)
        yield
    finally:
        for server in started:
            _stop(pid_path(settings, server.name))


# -- one command's stack -----------------------------------------------------------------------------------------
def _with_port(url: str, port: int) -> str:
    """`url` (an http address or a DSN) with its port replaced, its user and path kept."""
    parts = urlparse(url)
    user = parts.netloc.rpartition("@")[0]
    return urlunparse(parts._replace(netloc=f"{user + '@' if user else ''}{parts.hostname}:{port}"))


def _distinct_free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def private_settings(settings: Settings, state_dir: Path) -> Settings:
    """`settings` for a stack of one command's own: its broker, local PostgreSQL and local model servers on free
    ports, its files in `state_dir`. Endpoints elsewhere, and local ones that serve a model the stack does not (a
    test's scripted model, a vLLM server), stay as they are: this stack has nothing to start for them."""
    own = settings.model_copy(deep=True)
    own.state_dir = Path(state_dir)
    local_models = sorted({s.port for s in model_servers(settings) if s.model in local_model.MODELS})
    broker, postgres, *models = _distinct_free_ports(2 + len(local_models))
    own.kafka.bootstrap_servers = f"{LOCAL_HOST}:{broker}"
    if _local_postgres(settings) is not None:
        own.postgres.dsn = _with_port(settings.postgres.dsn, postgres)
    moved = dict(zip(local_models, models))
    for endpoint in [own.llm.default, *own.llm.roles.values()]:
        port = _local_port(endpoint.base_url)
        if port in moved:
            endpoint.base_url = _with_port(endpoint.base_url, moved[port])
    return own


def _private_state_dir(settings: Settings, command: str) -> Path:
    """<state_dir>/embedded/<command>-<pid>; the folders of commands that are no longer running are removed."""
    root = _state(settings) / "embedded"
    if root.is_dir():
        for old in root.iterdir():
            pid = old.name.rpartition("-")[2]
            if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
                shutil.rmtree(old, ignore_errors=True)
    path = root / f"{command}-{os.getpid()}"
    shutil.rmtree(path, ignore_errors=True)  # a folder of an earlier process that had our pid
    return path


def _differences(theirs: dict, ours: dict, prefix: str = "") -> list[str]:
    found = []
    for key in sorted(set(theirs) | set(ours)):
        a, b = theirs.get(key), ours.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            found.append(f"{prefix}{key}: {a!r} there, {b!r} here")
    return found


def shared_stack(settings: Settings) -> tuple[bool, str]:
    """(whether `turnforge up`'s stack runs here with these very settings, why not when it runs otherwise)."""
    record = _settings_record(settings)
    if not record.exists() or not is_running(pid_path(settings, "broker")):
        return False, ""
    missing = [name for name in SERVICES if not is_running(pid_path(settings, name))]
    if missing:
        return False, f"`turnforge up`'s stack in {_state(settings)} lacks {', '.join(missing)}"
    differences = _differences(json.loads(record.read_text()), json.loads(settings.model_dump_json()))
    if differences:
        return False, f"`turnforge up`'s stack runs with other settings ({'; '.join(differences[:3])})"
    return True, ""


def _pg_address(settings: Settings) -> str:
    """Where the DSN points, without its user or password."""
    url = urlparse(settings.postgres.dsn)
    return f"{url.hostname}:{url.port or 5432}{url.path}"


def addresses(settings: Settings) -> str:
    models = sorted({e.base_url for e in [settings.llm.default, *settings.llm.roles.values()]})
    return f"broker {settings.kafka.bootstrap_servers}, PostgreSQL {_pg_address(settings)}, model {', '.join(models)}"


@contextlib.contextmanager
def embedded(settings: Settings, command: str, *, with_model: bool = True,
             say: Callable[[str], None] = log.info) -> Iterator[Settings]:
    """The stack one command (`command`: its name, for the state folder) runs on; yields the settings to use.

    A running `turnforge up` stack with the same settings is attached to and left running. Otherwise the command gets
    a private stack (private_settings), tied to this process, with a copy of `turnforge up`'s PostgreSQL data; it is
    stopped when the block ends, and its data removed (its logs stay until the next embedded command)."""
    attach, why_not = shared_stack(settings)
    if attach:
        say(f"attached to the stack `turnforge up` started ({addresses(settings)}); it keeps running after this "
            f"command")
        yield settings
        return
    own = private_settings(settings, _private_state_dir(settings, command))
    say(f"{why_not + ', so ' if why_not else ''}starting a stack of this command's own ({addresses(own)}; logs in "
        f"{_state(own) / 'logs'}); it stops with the command")
    try:
        up(own, with_model=with_model, tied=True, postgres_copy_of=settings)
        yield own
    finally:
        down(own)
        shutil.rmtree(_pgdata(own), ignore_errors=True)


# -- reaching a stack --------------------------------------------------------------------------------------------
class Unreachable(StackError):
    pass


def _broker_answers(bootstrap_servers: str) -> bool:
    for server in bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        if port.isdigit() and local_broker.accepts(int(port), host.strip("[]") or LOCAL_HOST):
            return True
    return False


def _pg_problem(dsn: str) -> str | None:
    try:
        with psycopg.connect(dsn, connect_timeout=3):
            return None
    except psycopg.Error as e:
        text = str(e)
        return "nothing listens there" if "Connection refused" in text else text.strip().splitlines()[-1]


def require_reachable(settings: Settings, *, wait_s: float = 5.0, postgres: bool = True, model: bool = True) -> None:
    """Raise Unreachable, in one line, when the broker, PostgreSQL or a model endpoint on this machine still does
    not answer after wait_s (a stack just started may need a moment). Endpoints elsewhere are not tried for the model:
    the services may reach networks this command cannot (a cluster's)."""
    models = sorted({e.base_url for e in [settings.llm.default, *settings.llm.roles.values()]
                     if urlparse(e.base_url).hostname in (LOCAL_HOST, "localhost")}) if model else []
    deadline = time.monotonic() + wait_s
    while True:
        problems = []
        if not _broker_answers(settings.kafka.bootstrap_servers):
            problems.append(f"no Kafka broker answers at {settings.kafka.bootstrap_servers}")
        pg = _pg_problem(settings.postgres.dsn) if postgres else None
        if pg:
            problems.append(f"PostgreSQL at {_pg_address(settings)}: {pg}")
        problems += [f"no model server answers at {url}" for url in models if not model_ready(url)]
        if not problems:
            return
        if time.monotonic() > deadline:
            raise Unreachable(
                f"{'; '.join(problems)} (waited {wait_s:.0f} s). Start the stack with `turnforge up`, add --embedded "
                "to give this command a stack of its own, or point the config (kafka.bootstrap_servers, postgres.dsn, "
                "llm.default.base_url) at yours")
        time.sleep(0.5)
