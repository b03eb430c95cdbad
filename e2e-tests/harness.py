"""Helpers the end-to-end tests share."""
from __future__ import annotations

from kafka.admin import KafkaAdminClient

from shared.contracts import flow
from shared.ops import stack
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
    """Each service's consumer group as the broker sees it. A run that stalls with nothing in any log is most often
    a group that never handed its partitions out (CI of stop 16: a group left behind by another test)."""
    try:
        admin = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers, request_timeout_ms=5000)
        try:
            groups = admin.describe_groups([settings.consumer_group(s) for s in flow.SERVICES])
        finally:
            admin.close()
    except Exception as e:  # noqa: BLE001 - a failing test's message must not fail in turn
        return f"--- consumer groups: could not be described ({type(e).__name__}: {e})"
    lines = ["--- consumer groups"]
    for group_id, group in groups.items():
        members = group.get("members") or []
        lines.append(f"{group_id}: {group.get('group_state')}, {len(members)} member(s)")
        for member in members:
            assignment = member.get("member_assignment")
            partitions = getattr(assignment, "assignment", assignment)
            lines.append(f"    {member.get('client_id')} {member.get('member_id', '')[-8:]}: assigned {partitions}")
    return "\n".join(lines)


def live_sandboxes(settings: Settings) -> list[str]:
    return SandboxManager(settings.postgres.dsn).live_sandboxes()
