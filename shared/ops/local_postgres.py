"""A local PostgreSQL server on 127.0.0.1 from the binaries in the `pgserver` wheel.

The embedded stack and the tests use it; production points TURNFORGE_POSTGRES__DSN at a real server.
PostgreSQL refuses to run as root, so as root we run it as a dedicated system user.
"""
from __future__ import annotations

import importlib.util
import os
import pwd
import shlex
import shutil
import subprocess
from pathlib import Path

import psycopg

from shared.runtime import readiness

SYSTEM_USER = "turnforge-pg"


def _bin_dir() -> Path:
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("PostgreSQL binaries not found: install the 'local' extra (pip install -e '.[local]')")
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


def _run_as(user: str | None, argv: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=True, capture_output=True, text=True, user=user, **kw)


def system_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", SYSTEM_USER], check=True, capture_output=True)
    return SYSTEM_USER


def _make_accessible(path: Path, user: str | None) -> None:
    """The server user must reach the binaries and own its data directory."""
    if user is None:
        return
    bins = _bin_dir().parent
    for p in [bins, *bins.parents]:
        if p == Path("/"):
            break
        os.chmod(p, os.stat(p).st_mode | 0o055)
    for root, dirs, files in os.walk(bins):
        for name in dirs + files:
            full = os.path.join(root, name)
            if not os.path.islink(full):
                os.chmod(full, os.stat(full).st_mode | 0o055)
    entry = pwd.getpwnam(user)
    for p in path.parents:  # traversable by the server user; the data directory itself must stay 0700
        if p == Path("/"):
            break
        os.chmod(p, os.stat(p).st_mode | 0o011)
    shutil.chown(path, entry.pw_uid, entry.pw_gid)
    os.chmod(path, 0o700)


def dsn_for(port: int, database: str = "postgres") -> str:
    return f"postgresql://postgres@127.0.0.1:{port}/{database}"


def initialise(data_dir: Path, *, clients: str | None = None) -> str | None:
    """Create the data directory (initdb, once) and let `clients` (a CIDR) in; returns the user the server must run
    as (None: this one)."""
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    user = system_user()
    _make_accessible(data_dir, user)
    if not (data_dir / "PG_VERSION").exists():
        _run_as(user, [str(_bin_dir() / "initdb"), "-D", str(data_dir), "-U", "postgres", "--auth=trust",
                       "--encoding=UTF8", "--no-sync"])
    hba = data_dir / "pg_hba.conf"
    if clients and f" {clients} " not in hba.read_text():
        with open(hba, "a") as f:
            f.write(f"host all all {clients} trust\n")
    return user


def _options(port: int, max_connections: int, clients: str | None) -> list[str]:
    # TCP only: clients connect to 127.0.0.1, and a Unix socket's path may be at most 107 bytes, which a data
    # directory deep in a checkout or a test's temporary folder exceeds.
    return ["-c", f"listen_addresses={'*' if clients else '127.0.0.1'}", "-p", str(port),
            "-c", "unix_socket_directories=",
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
            "-c", f"max_connections={max_connections}"]


def server_argv(data_dir: Path, port: int, *, max_connections: int = 200, clients: str | None = None) -> list[str]:
    """The server in the foreground (logging to stderr), for a caller that supervises it as its own child."""
    data_dir = Path(data_dir).resolve()
    return [str(_bin_dir() / "postgres"), "-D", str(data_dir), *_options(port, max_connections, clients)]


def start(data_dir: Path, port: int, *, database: str = "turnforge", max_connections: int = 200,
          clients: str | None = None) -> str:
    """Initialise (once) and start a server in the background (pg_ctl); returns a DSN for `database`, created if
    missing. Every handler thread of a service holds a connection, so a load test with many handlers needs more than
    the default.

    Only this machine may connect, unless `clients` names a network (CIDR, e.g. the pods' network of a test
    cluster): then the server listens on every address and trusts that network too, without a password."""
    data_dir = Path(data_dir).resolve()
    user = initialise(data_dir, clients=clients)
    if not accepts(port):
        options = shlex.join(_options(port, max_connections, clients))
        _run_as(user, [str(_bin_dir() / "pg_ctl"), "-D", str(data_dir), "-l", str(data_dir / "server.log"),
                       "-o", options, "-w", "-t", "60", "start"])
    readiness.wait_ready(f"PostgreSQL on port {port}", lambda: accepts(port), 60)
    return create_database(dsn_for(port), database)


# What a copy of a data directory leaves out: the running server's lock and socket, and its log.
_NOT_COPIED = ("postmaster.pid", "postmaster.opts", ".s.PGSQL.*", "server.log")


def copy_data(source: Path, target: Path, *, running_port: int | None = None) -> None:
    """Make `target` a copy of the data directory `source`, for a server of its own: taken from the server on
    `running_port` (pg_basebackup, consistent while it runs) or, with none running, copied as the files are."""
    source, target = Path(source).resolve(), Path(target).resolve()
    shutil.rmtree(target, ignore_errors=True)
    user = system_user()
    if running_port is not None:
        target.mkdir(parents=True)
        _make_accessible(target, user)
        _run_as(user, [str(_bin_dir() / "pg_basebackup"), "-D", str(target), "-h", "127.0.0.1",
                       "-p", str(running_port), "-U", "postgres", "-X", "stream", "-c", "fast", "--no-sync"])
        return
    shutil.copytree(source, target, symlinks=True, ignore=shutil.ignore_patterns(*_NOT_COPIED))
    if user is not None:
        entry = pwd.getpwnam(user)
        for root, dirs, files in os.walk(target):
            for name in dirs + files:
                os.lchown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)
    _make_accessible(target, user)


def create_database(server_dsn: str, name: str) -> str:
    """Create database `name` (if missing) on the server `server_dsn` points at; returns its DSN."""
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    return server_dsn.rsplit("/", 1)[0] + "/" + name


def stop(data_dir: Path) -> None:
    data_dir = Path(data_dir).resolve()
    if not (data_dir / "postmaster.pid").exists():
        return
    subprocess.run([str(_bin_dir() / "pg_ctl"), "-D", str(data_dir), "-m", "fast", "-w", "stop"],
                   capture_output=True, text=True, user=system_user())


def accepts(port: int) -> bool:
    try:
        with psycopg.connect(dsn_for(port), connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False
