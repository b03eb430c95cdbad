"""Helpers the end-to-end tests share."""
from __future__ import annotations

from shared.ops import cluster, stack
from shared.runtime.config import Settings
from shared.env.sandbox import SandboxManager


def service_logs(settings: Settings, lines: int = 15) -> str:
    """The tail of every service's log and the services' consumer groups, for assertion messages."""
    out = []
    for name in stack.SERVICES:
        path = stack.log_path(settings, name)
        tail = path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else ["<no log>"]
        out.append(f"--- {name}\n" + "\n".join(tail))
    out.append(consumer_groups(settings))
    return "\n".join(out)


def consumer_groups(settings: Settings) -> str:
    """Each service's consumer group on its topics: what it committed against what is there. A run that stalls with
    nothing in any log is most often a group that never consumed (CI of stop 16: a group another test left behind
    never handed its partitions out); its rows then say "nothing committed"."""
    try:
        rows = cluster.lag_rows(settings, timeout_s=5)
    except Exception as e:  # noqa: BLE001 - a failing test's message must not fail in turn
        return f"--- consumer groups: not read ({type(e).__name__}: {e})"
    lines = ["--- consumer groups (lag = records not yet committed)"]
    for row in rows:
        lag = "nothing committed" if row.lag is None else f"lag {row.lag}"
        lines.append(f"{settings.consumer_group(row.service)} on {row.topic}: {lag} ({row.partitions} partitions)")
    return "\n".join(lines)


def live_sandboxes(settings: Settings) -> list[str]:
    return SandboxManager(settings.postgres.dsn).live_sandboxes()
