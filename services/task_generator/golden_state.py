"""Golden actions executed in a sandbox through the same code the live tool calls take: what each returns becomes
its golden result, and the database state hash where they end becomes the trajectory's golden state."""
from __future__ import annotations

from dataclasses import dataclass, field

from shared.contracts import GoldenAction, SeedToolset, Task
from shared.env.dbschema import DatabaseSchema
from shared.env.sandbox import SandboxManager
from shared.env.tool_execution import execute_sql_tool
from shared.env.trajectory import tool_by_name
from shared.lifecycle.janitor import SandboxJanitor
from shared.runtime.errors import PermanentError


@dataclass
class GoldenRun:
    state_hash: str
    results: list[str]  # each action's result content (JSON), in order
    checkpoints: list[str] = field(default_factory=list)  # the state hash after each group of actions asked for


class GoldenState:
    def __init__(self, sandboxes: SandboxManager, janitor: SandboxJanitor, statement_timeout_ms: int):
        self.sandboxes = sandboxes
        self.janitor = janitor
        self.statement_timeout_ms = statement_timeout_ms

    def run_actions(self, sandbox_owner: str, prepared: SeedToolset, db_schema: DatabaseSchema,
                    actions: list[GoldenAction], checkpoints: tuple[int, ...] = ()) -> GoldenRun:
        """Execute tool calls in `sandbox_owner`'s sandbox (created if needed), in order; the state is hashed after
        the first n actions for each n in `checkpoints`."""
        sandbox = self.sandboxes.create(sandbox_owner, prepared.toolset.domain_database)
        results, hashes = [], []
        for i, action in enumerate(actions):
            if i in checkpoints:
                hashes.append(self.sandboxes.schema_state_hash(sandbox, db_schema))
            tool = tool_by_name(prepared.toolset, action.tool_name)
            result = execute_sql_tool(self.sandboxes, sandbox, db_schema.table_names, tool, f"setup{i}",
                                      action.arguments_json, timeout_ms=self.statement_timeout_ms,
                                      idempotency_key=f"setup{i}")  # a redelivered seed must not apply it twice
            if not result.ok:
                raise PermanentError(f"action {action.tool_name}({action.arguments_json}) failed: {result.error}")
            results.append(result.content_json)
        final = self.sandboxes.schema_state_hash(sandbox, db_schema)
        return GoldenRun(final, results, hashes + [final] * sum(c >= len(actions) for c in checkpoints))

    def run_tasks(self, trajectory_id: str, prepared: SeedToolset, db_schema: DatabaseSchema,
                  tasks: list[Task]) -> GoldenRun:
        """The start state's setup, then every task's golden actions, in a scratch sandbox: where it ends, what
        each golden action returned (the setup's results left out) and the state after each task. With no writes,
        the hash is the start's."""
        setup = list(prepared.seed.start_state.setup_actions)
        actions = setup + [a for t in tasks for a in t.golden_actions]
        ends, count = [], len(setup)
        for task in tasks:
            count += len(task.golden_actions)
            ends.append(count)
        with self.janitor.scratch(trajectory_id) as scratch:
            run = self.run_actions(scratch, prepared, db_schema, actions, checkpoints=tuple(ends))
        return GoldenRun(run.state_hash, run.results[len(setup):], run.checkpoints)
