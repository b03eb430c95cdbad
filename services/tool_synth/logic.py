"""tool-synth's pure logic: check a seed event, and turn verified candidates or seed tool specs into a Toolset."""
from __future__ import annotations

import json

import jsonschema

from shared.contracts import SeedEvent, SqlBinding, SqlKind, Tool, Toolset, ToolRejection
from shared.errors import PermanentError

MAX_TRAJECTORIES_PER_SEED = 10_000
MAX_TASKS_PER_TRAJECTORY = 10
# Kept tools per toolset: enough variety for tasks, few enough to fit a small model's context.
MAX_TOOLS = 24

SQL_KINDS = {"read": SqlKind.SQL_KIND_READ, "insert": SqlKind.SQL_KIND_INSERT,
             "update": SqlKind.SQL_KIND_UPDATE, "delete": SqlKind.SQL_KIND_DELETE}


class InvalidSeed(PermanentError):
    pass


def validate_seed(seed: SeedEvent) -> None:
    """Reject a malformed seed with a reason a user can act on."""
    problems = []
    if not seed.seed_id:
        problems.append("seed_id is empty")
    if not seed.domain:
        problems.append("domain is empty")
    source = seed.WhichOneof("source")
    if source is None:
        problems.append("no source: give a database or seed tools")
    elif source == "database" and not seed.database.domain_database:
        problems.append("database.domain_database is empty")
    elif source == "seed_tools" and not seed.seed_tools.tools:
        problems.append("seed_tools has no tools")
    s = seed.settings
    if not 1 <= s.num_trajectories <= MAX_TRAJECTORIES_PER_SEED:
        problems.append(f"settings.num_trajectories must be 1..{MAX_TRAJECTORIES_PER_SEED}, got {s.num_trajectories}")
    if not 1 <= s.tasks_per_trajectory <= MAX_TASKS_PER_TRAJECTORY:
        problems.append(f"settings.tasks_per_trajectory must be 1..{MAX_TASKS_PER_TRAJECTORY}, got {s.tasks_per_trajectory}")
    if not 0.0 <= s.write_task_share <= 1.0:
        problems.append(f"settings.write_task_share must be within 0..1, got {s.write_task_share}")
    if problems:
        raise InvalidSeed("malformed seed event: " + "; ".join(problems))


def toolset_from_verifications(seed: SeedEvent, verifications) -> Toolset:
    """Keep verified SQL tools (writes first so every CRUD kind survives the cap), record the rejected ones."""
    toolset = Toolset(seed_id=seed.seed_id, domain=seed.domain, domain_database=seed.database.domain_database)
    kept = [v for v in verifications if v.ok]
    kept.sort(key=lambda v: (v.candidate.kind == "read", 0))
    by_kind: dict[str, list] = {}
    for v in kept:
        by_kind.setdefault(v.candidate.kind, []).append(v)
    chosen = _round_robin(by_kind, MAX_TOOLS)
    for v in chosen:
        c = v.candidate
        toolset.tools.append(Tool(
            name=c.name, description=c.description, parameters_json=json.dumps(c.parameters),
            sql=SqlBinding(statement=c.sql, parameters=list(c.parameters.get("properties", {})), kind=SQL_KINDS[c.kind],
                           sample_arguments_json=json.dumps(v.sample_arguments, default=str)),
        ))
    for v in verifications:
        if not v.ok:
            toolset.rejected.append(ToolRejection(tool_name=v.candidate.name, reason=v.reason))
    if not toolset.tools:
        raise PermanentError(f"no tool of domain '{seed.domain}' survived verification")
    return toolset


def _round_robin(groups: dict[str, list], limit: int) -> list:
    """Take from each kind in turn, so a big table of reads does not crowd out writes."""
    order = ["read", "insert", "update", "delete"]
    queues = [list(groups.get(k, [])) for k in order]
    chosen = []
    while len(chosen) < limit and any(queues):
        for q in queues:
            if q and len(chosen) < limit:
                chosen.append(q.pop(0))
    return chosen


def toolset_from_seed_tools(seed: SeedEvent) -> Toolset:
    """The simulated-tools path: seed tool specs, checked, with unique names."""
    toolset = Toolset(seed_id=seed.seed_id, domain=seed.domain)
    seen: set[str] = set()
    for tool in seed.seed_tools.tools:
        if not tool.name or not tool.name.replace("_", "").isalnum():
            raise InvalidSeed(f"seed tool name {tool.name!r} is not a valid function name")
        try:
            params = json.loads(tool.parameters_json or "{}")
            jsonschema.Draft202012Validator.check_schema(params)
        except (json.JSONDecodeError, jsonschema.SchemaError) as e:
            raise InvalidSeed(f"seed tool {tool.name}: parameters are not a valid JSON Schema: {e}") from e
        if params.get("type", "object") != "object":
            raise InvalidSeed(f"seed tool {tool.name}: parameters must be a JSON Schema of type object")
        if tool.name in seen:
            continue
        seen.add(tool.name)
        copy = Tool()
        copy.CopyFrom(tool)
        copy.parameters_json = json.dumps(params)
        toolset.tools.append(copy)
    return toolset
