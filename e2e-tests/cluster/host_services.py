"""The cluster test's broker, PostgreSQL and model server, on this machine where the real node's pods reach them.

A CPU cluster like the test's has no GPU for vLLM and no Kafka or PostgreSQL operator, so the release under test
uses the chart's external options: tansu, PostgreSQL and llama.cpp with the local model run here, listening on the
node's address (the pods' traffic to it never leaves the machine). They are the embedded stack's components, each
started the way `turnforge up` starts it, on other ports and addresses.

    python host_services.py up   --work DIR --host NODE_IP --pods CIDR   # prints the values to install with
    python host_services.py down --work DIR
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from shared.ops import local_broker, local_postgres, stack
from shared.runtime import readiness

BROKER_PORT, POSTGRES_PORT, MODEL_PORT = 29092, 25432, 28080
MODEL = "qwen2.5-coder-1.5b-instruct"  # the 0.5B cannot play the user (configs/default.yaml)


def _spawn(work: Path, name: str, argv: list[str]) -> None:
    log = open(work / f"{name}.log", "ab")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    (work / f"{name}.pid").write_text(str(proc.pid))


def up(work: Path, host: str, pods: str) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    _spawn(work, "broker", local_broker.command(BROKER_PORT, host))
    readiness.wait_ready("broker", lambda: local_broker.accepts(BROKER_PORT, host), 30, interval_s=0.2)
    dsn = local_postgres.start(work / "postgres", POSTGRES_PORT, clients=pods)
    base_url = f"http://{host}:{MODEL_PORT}/v1"
    _spawn(work, "model", [sys.executable, "-m", "llama_cpp.server", "--model", str(stack.gguf_path(MODEL)),
                           "--model_alias", MODEL, "--host", host, "--port", str(MODEL_PORT),
                           "--n_threads", str(stack.MODEL_THREADS), "--n_ctx", str(stack.MODEL_CONTEXT_TOKENS)])
    readiness.wait_ready("model server", lambda: stack.model_ready(base_url), 180)
    # The pods connect at the node's address (trusted as the pods' network); this machine's own tools at 127.0.0.1.
    return {"bootstrap": f"{host}:{BROKER_PORT}", "dsn": dsn.replace("127.0.0.1", host), "local_dsn": dsn,
            "model_url": base_url, "model": MODEL}


def down(work: Path) -> None:
    for name in ("model", "broker"):
        pidfile = work / f"{name}.pid"
        if pidfile.exists():
            try:
                os.killpg(int(pidfile.read_text()), signal.SIGTERM)
            except ProcessLookupError:
                pass
    if (work / "postgres").exists():
        local_postgres.stop(work / "postgres")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("up", "down"))
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--host", help="the address the pods reach this machine at (the node's)")
    parser.add_argument("--pods", help="the pods' network (CIDR), trusted by PostgreSQL")
    args = parser.parse_args()
    if args.action == "up":
        print(json.dumps(up(args.work, args.host, args.pods)))
    else:
        down(args.work)


if __name__ == "__main__":
    main()
