"""tool-synth's pure logic: check a seed event, and turn verified candidates or seed tool specs into a Toolset."""
from __future__ import annotations

import json
from itertools import zip_longest
from operator import attrgetter

import jsonschema

from shared.contracts import SeedEvent, SqlBinding, Tool, Toolset, ToolRejection
from shared.env.tool_spec import tool_parameters
from shared.runtime.errors import PermanentError

MAX_TRAJECTORIES_PER_SEED = 10_000
MAX_TASKS_PER_TRAJECTORY = 10
# Kept tools per toolset: enough variety for tasks, few enough to fit a small model's context.
MAX_TOOLS = 24


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
        problems.append("no source: give a database, seed tools or evaluation tasks")
    elif source == "database" and not seed.database.domain_database:
        problems.append("database.domain_database is empty")
    elif source == "seed_tools" and not seed.seed_tools.tools:
        problems.append("seed_tools has no tools")
    elif source == "evaluation" and not (seed.evaluation.tasks and seed.evaluation.toolset.domain_database):
        problems.append("evaluation needs tasks and a toolset with its domain database")
    s = seed.settings
    if s.align_to.statements and source != "database":
        problems.append("settings.align_to selects a database's SQL tools; this seed has no database")
    if not 1 <= s.num_trajectories <= MAX_TRAJECTORIES_PER_SEED:
        problems.append(f"settings.num_trajectories must be 1..{MAX_TRAJECTORIES_PER_SEED}, got {s.num_trajectories}")
    if not 1 <= s.tasks_per_trajectory <= MAX_TASKS_PER_TRAJECTORY:
        problems.append(f"settings.tasks_per_trajectory must be 1..{MAX_TASKS_PER_TRAJECTORY}, got {s.tasks_per_trajectory}")
    if not 0.0 <= s.write_task_share <= 1.0:
        problems.append(f"settings.write_task_share must be within 0..1, got {s.write_task_share}")
    if problems:
        raise InvalidSeed("malformed seed event: " + "; ".join(problems))


def toolset_from_verifications(seed: SeedEvent, verifications, kept=None) -> Toolset:
    """Keep verified SQL tools (a varied selection, see select_tools), record the rejected ones.

    Each kept tool carries the output schema derived from its verified execution (result columns and their
    PostgreSQL types), so schema-predictor has nothing to guess for it."""
    toolset = Toolset(seed_id=seed.seed_id, domain=seed.domain, domain_database=seed.database.domain_database)
    chosen = kept if kept is not None else select_tools([v for v in verifications if v.ok], MAX_TOOLS)
    for v in chosen:
        c = v.candidate
        toolset.tools.append(Tool(
            name=c.name, description=c.description, parameters_json=json.dumps(c.parameters),
            output_schema_json=json.dumps(v.output_schema), effect=v.effect,
            sql=SqlBinding(statement=c.sql, parameters=list(c.parameters.get("properties", {})),
                           sample_arguments_json=json.dumps(v.sample_arguments),
                           parameter_columns={p: f"{t}.{col}" for p, (t, col) in c.param_columns.items()},
                           result_columns={r: f"{t}.{col}" for r, (t, col) in v.result_origins.items()}),
        ))
    for v in verifications:
        if not v.ok:
            toolset.rejected.append(ToolRejection(tool_name=v.candidate.name, reason=v.reason))
    if not toolset.tools:
        raise PermanentError(f"no tool of domain '{seed.domain}' survived verification")
    return toolset


READ_SHARE = 2  # reads taken per round against one insert, update and delete: questions outnumber changes

# What a varied toolset needs at least once, when the verified tools offer it (first match wins).
COVERAGE = [
    ("insert", lambda v: v.candidate.kind == "insert"),
    ("update", lambda v: v.candidate.kind == "update"),
    ("delete", lambda v: v.candidate.kind == "delete"),
    ("aggregate read", lambda v: v.candidate.kind == "read" and v.has_aggregate),
    ("join read", lambda v: v.candidate.kind == "read" and v.has_join and not v.has_aggregate),
    ("lookup", lambda v: v.candidate.kind == "read" and v.single_row),
    ("search", lambda v: v.is_search),
    ("top-N", lambda v: v.is_top_n),
]


def select_tools(verified: list, limit: int) -> list:
    """A varied selection: every kind of COVERAGE first, model proposals before templates, then kinds in turn
    (read, insert, update, delete) and, within a kind, tables in turn, so neither one big table nor a flood of
    reads crowds out the rest."""
    ordered = sorted(verified, key=lambda v: v.candidate.source != "llm")  # stable: keeps each source's order
    chosen: list = []
    for _, wanted in COVERAGE:
        pick = next((v for v in ordered if wanted(v) and v not in chosen), None)
        if pick is not None and len(chosen) < limit:
            chosen.append(pick)
    rest = [v for v in ordered if v not in chosen]
    by_table = attrgetter("table")
    aggregates = _spread([v for v in rest if v.candidate.kind == "read" and v.has_aggregate], by_table)
    joins = _spread([v for v in rest if v.candidate.kind == "read" and v.has_join and not v.has_aggregate], by_table)
    rich = [v for pair in zip_longest(aggregates, joins) for v in pair if v is not None]
    plain = _spread([v for v in rest if v.candidate.kind == "read" and not (v.has_join or v.has_aggregate)], by_table)
    reads = [v for pair in zip_longest(rich, plain) for v in pair if v is not None]  # joins/aggregates every other
    queues = [reads] + [_spread([v for v in rest if v.candidate.kind == k], by_table) for k in ("insert", "update", "delete")]
    while len(chosen) < limit and any(queues):
        for q, share in zip(queues, (READ_SHARE, 1, 1, 1)):
            for _ in range(share):
                if q and len(chosen) < limit:
                    chosen.append(q.pop(0))
    return chosen


def _spread(items: list, key) -> list:
    """Round-robin over key groups: a, a, b, c -> a, b, c, a."""
    groups: dict[str, list] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    out = []
    queues = list(groups.values())
    while any(queues):
        for q in queues:
            if q:
                out.append(q.pop(0))
    return out


def toolset_from_seed_tools(seed: SeedEvent) -> Toolset:
    """The simulated-tools path: seed tool specs, checked, with unique names."""
    toolset = Toolset(seed_id=seed.seed_id, domain=seed.domain)
    seen: set[str] = set()
    for tool in seed.seed_tools.tools:
        if not tool.name or not tool.name.replace("_", "").isalnum():
            raise InvalidSeed(f"seed tool name {tool.name!r} is not a valid function name")
        try:
            params = tool_parameters(tool)
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
