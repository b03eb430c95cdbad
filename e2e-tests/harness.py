"""Helpers the end-to-end tests share."""
from __future__ import annotations

from shared.ops import stack
from shared.runtime.config import Settings
from shared.env.sandbox import SandboxManager


def service_logs(settings: Settings, lines: int = 15) -> str:
    """The tail of every service's log, for assertion messages."""
    out = []
    for name in stack.SERVICES:
        path = stack.log_path(settings, name)
        tail = path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else ["<no log>"]
        out.append(f"--- {name}\n" + "\n".join(tail))
    return "\n".join(out)


def live_sandboxes(settings: Settings) -> list[str]:
    return SandboxManager(settings.postgres.dsn).live_sandboxes()
