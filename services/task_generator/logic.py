"""task-generator's pure logic: the task around planned golden actions, the check of its wording, and the values
its read subtasks expect.

Golden actions are chosen from real rows first and the model only phrases the goal around them (DySQL-style
entity trees). That keeps every task feasible and checkable even when the model is weak: the database settles what
the right calls are, the model settles how a person would put it.
"""
from __future__ import annotations

import json
import random
import re
from typing import Any

from services.task_generator.actions import PlannedAction, PlannedRequest
from services.task_generator.planning import PlannedTask
from services.task_generator.routes import Route
from shared.contracts import EffectKind, GoldenAction, Rubric, Subtask, Task, Toolset
from shared.env.dbschema import DatabaseSchema, schema_ddl
from shared.env.tool_spec import mutates
from shared.toolgen.binding import limit_parameters, ranking
from shared.runtime.errors import PermanentError

SNAKE_CASE = re.compile(r"\b[a-z][a-z0-9]*_[a-z0-9_]+\b")


def words(name: str) -> str:
    return name.replace("_", " ")


def value_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def describe_request(index: int, request: PlannedRequest, db_schema: DatabaseSchema | None) -> str:
    """One request for the phrasing and wording-check prompts: what its main action does, the values the person
    gives, how they name the record, the keys the assistant finds on its own and what the person wants to know."""
    main = request.main
    text = f"{index + 1}. {main.tool.description.rstrip('.')}."
    given = {k: v for a in request.actions for k, v in a.given.items()}
    if given:
        text += " (" + ", ".join(f"{words(k)} = {value_text(v)}" for k, v in given.items()) + ")"
    if request.route is not None and db_schema is not None and (request.route.hops or not request.route.anchor.search):
        text += f" The person means {reference(request.route, db_schema)}."
    looked_up = [words(k) for a in request.actions for k in a.looked_up]
    if looked_up:
        text += f" Found by the assistant, not given by the person: {', '.join(dict.fromkeys(looked_up))}."
    if main.asks_for:
        many = " (of the first few rows)" if main.answer_rows > 1 else ""
        text += f" The person wants to know: {', '.join(words(f) for f in main.asks_for)}{many}."
    return text


def describe_requests(planned: PlannedTask, db_schema: DatabaseSchema | None) -> str:
    return "\n".join(describe_request(i, r, db_schema) for i, r in enumerate(planned.requests))


def mentions(text: str, value: Any) -> bool:
    """The value appears in the text: text ignoring case, a number as a whole number ("4" is not in "2024")."""
    if isinstance(value, str):
        return value.strip().lower() in text.lower()
    return re.search(rf"(?<![\w.]){re.escape(value_text(value))}(?![\w])", text) is not None


def wording_problems(subtasks: list[str], requests: list[PlannedRequest], tool_names: list[str]) -> list[str]:
    """What the mechanical check finds wrong with subtask texts: a person names no tool, no column in snake_case,
    no id they could not know, and states every value the request needs from them."""
    problems = []
    if len(subtasks) != len(requests):
        return [f"there must be exactly one subtask per request ({len(requests)}), not {len(subtasks)}"]
    for i, (text, request) in enumerate(zip(subtasks, requests), start=1):
        named = [t for t in tool_names if t in text]
        if named:
            problems.append(f"subtask {i} names the tool {named[0]}; say what the person wants instead")
        given_values = {k: v for a in request.actions for k, v in a.given.items()}
        given = {value_text(v) for v in given_values.values()}
        identifier = SNAKE_CASE.search(_without(text, given))  # a value such as "in_use" is the person's to give
        if identifier:
            problems.append(f"subtask {i} uses the identifier {identifier.group(0)}; use plain words")
        for action in request.actions:
            for k in action.looked_up:
                value = action.arguments[k]
                if value_text(value) not in given and mentions(text, value):
                    problems.append(f"subtask {i} states the {words(k)} {value_text(value)}, which the person does "
                                    f"not know (the assistant looks it up)")
        for k, v in given_values.items():
            if not isinstance(v, bool) and not mentions(text, v):
                problems.append(f"subtask {i} leaves out the {words(k)} {value_text(v)}")
    return list(dict.fromkeys(problems))


def _thing(table: str) -> str:
    """A table's rows as a person names one: "subscriptions" -> "subscription" (wording only, never a fact)."""
    name = words(table)
    return name[:-1] if name.endswith("s") and not name.endswith("ss") else name


def _spoken(arguments: dict[str, Any]) -> str:
    return ", ".join(f"{words(k)} {('yes' if v else 'no') if isinstance(v, bool) else value_text(v)}"
                     for k, v in arguments.items())


def reference(route: Route, db_schema: DatabaseSchema) -> str:
    """How the person names the record a route reaches: by what they know ("the subscription with phone number
    +1-555-0134") or as the one the conversation is about ("that subscription"), then hop by hop ("the plan of
    ...", "the most recent invoice (by billing month) of ...")."""
    anchor = route.anchor
    if anchor.search is not None:
        ref = f"the {_thing(anchor.node.table)} with {words(anchor.column)} {value_text(anchor.value)}"
    else:
        ref = f"that {_thing(anchor.node.table)}"
    for hop in route.hops:
        if hop.up:
            ref = f"the {_role(hop.column, hop.node.table)} of {ref}"
        elif hop.which == "latest":
            ref = f"the most recent {_thing(hop.node.table)} (by {words(hop.children.order[0][0])}) of {ref}"
        else:
            ref = f"the {_thing(hop.node.table)} of {ref}"
    return ref


def _role(column: str, table: str) -> str:
    """What a referenced row is to the one referencing it, in words: plan_id -> "plan"."""
    return words(column[:-3]) if column.endswith("_id") and len(column) > 3 else _thing(table)


def request_wording(request: PlannedRequest, db_schema: DatabaseSchema) -> str:
    """What a person asks for one request, built from what its main action is: its declared effect, the record the
    route names, the values the person gives and the fields they want to know. The agent finds the tools itself."""
    main = request.main
    if request.route is None or main.node is None:
        table = main.tool.effect.table
        keys = db_schema.table(table).primary_key if table in db_schema.table_names else []
        return action_wording(main, keys)
    ref = reference(request.route, db_schema)
    effect = main.tool.effect
    if effect.kind == EffectKind.EFFECT_KIND_UPDATE:
        changes = [(words(k), _spoken({'': v}).strip()) for k, v in main.given.items()]
        if len(changes) == 1:
            return f"Change the {changes[0][0]} of {ref} to {changes[0][1]}."
        return f"Change {_listed([f'the {c} to {v}' for c, v in changes])} for {ref}." if changes else f"Update {ref}."
    if effect.kind == EffectKind.EFFECT_KIND_DELETE:
        first = sorted({_thing(a.tool.effect.table) for a in request.actions[:-1] if mutates(a.tool)})
        return f"Remove {ref}" + (f" together with its {' and '.join(t + 's' for t in first)}." if first else ".")
    if effect.kind == EffectKind.EFFECT_KIND_INSERT:
        return f"Add a new {_thing(effect.table)} for {ref} with {_spoken(main.given)}."
    return f"Tell me {asked_fields(main.asks_for)} for {ref}."


def asked_fields(fields: list[str]) -> str:
    """Fields as a person asks for them: "the brand and whether it is 5g"."""
    return _listed([f"whether it {words(f)}" if f.startswith(("is_", "has_")) else f"the {words(f)}" for f in fields])


def _listed(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def action_wording(action: PlannedAction, key_columns: list[str]) -> str:
    """What a person asks for one golden action named by the values they give (a ranking, a text search, or a
    record they name by its key when no route reaches it)."""
    effect = action.tool.effect
    thing = _thing(effect.table) if effect.table else "record"
    limits = limit_parameters(action.tool.sql.statement) if action.tool.sql.statement else set()
    given = {k: v for k, v in action.given.items() if k not in limits}
    first = "".join(f" first {value_text(action.given[k])}" for k in limits if k in action.given)
    keys = {k: v for k, v in given.items() if k in key_columns}
    ref = f"the {thing} with {_spoken(keys)}" if keys else f"that {thing}"
    if effect.kind == EffectKind.EFFECT_KIND_UPDATE:
        changes = [f"the {words(k)} to {_spoken({'': v}).strip()}" for k, v in given.items() if k not in key_columns]
        return f"Change {' and '.join(changes)} for {ref}." if changes else f"Update {ref}."
    if effect.kind == EffectKind.EFFECT_KIND_DELETE:
        return f"Remove {ref}."
    if effect.kind == EffectKind.EFFECT_KIND_INSERT:
        # A key the agent looked up names the record the new row belongs to ("that subscription").
        owners = "".join(f" for that {words(k).removesuffix(' id')}" for k in action.looked_up)
        return f"Add a new {thing}{owners} with {_spoken(given)}."
    rows = f"the{first} {thing}s"
    ranked = ranking(action.tool.sql.statement) if first and action.tool.sql.statement else None
    if ranked:  # "the 5 plans with the highest subscription count", not "the first 5 plans": first by what?
        count = "".join(f" {value_text(action.given[k])}" for k in limits if k in action.given)
        rows = f"the{count} {thing}s with the {'highest' if ranked[1] else 'lowest'} {words(ranked[0])}"
    which = (f"{rows} with {_spoken(given)}" if given else rows) if action.answer_rows > 1 or first else (
        f"the {thing} with {_spoken(given)}" if given else f"that {thing}")
    if action.asks_for:
        return f"Tell me {asked_fields(action.asks_for)} of {which}."
    return f"Find {which}."


def rule_phrasing(planned: PlannedTask, db_schema: DatabaseSchema) -> dict:
    """The task worded from its golden actions alone, for when the model's wording keeps failing the checks: right
    by construction, plainer than a model's."""
    subtasks = [request_wording(r, db_schema) for r in planned.requests]
    # The goal is about the person (third person); each subtask is what they say (first person).
    steps = [re.sub(r"\bme\b", "them", s[0].lower() + s[1:].rstrip(".")) for s in subtasks]
    return {"description": f"The person wants the assistant to {'; then '.join(steps)}.",
            "subtasks": subtasks,
            "success_criteria": [f"The assistant did this: {step}." for step in steps],
            "checkpoints": ["Every change uses exactly the values the person gave.",
                            "Every value the person asked for is told to them."]}


def _without(text: str, values: set[str]) -> str:
    for value in values:
        text = re.sub(re.escape(value), " ", text, flags=re.IGNORECASE)
    return text


def expected_values(action: PlannedAction, content_json: str) -> dict | None:
    """The values a read's subtask asks for, from what the golden call returned; None for writes and lookups."""
    if not action.asks_for:
        return None
    result = json.loads(content_json or "null")
    rows = [r for r in (result if isinstance(result, list) else [result]) if isinstance(r, dict)]
    if not rows:
        return {}
    if action.answer_rows == 1:
        return {f: rows[0][f] for f in action.asks_for if f in rows[0]}
    return {f: [r.get(f) for r in rows[:action.answer_rows]] for f in action.asks_for}


def expected_tool_use(action: GoldenAction) -> str:
    args = json.loads(action.arguments_json)
    return f"{action.tool_name}(" + ", ".join(f"{k}=<{k}>" for k in args) + ")"


def build_task(task_id: str, planned: PlannedTask, phrasing: dict, builds_on_task_id: str = "") -> Task:
    golden = [a.golden() for a in planned.actions]
    task = Task(task_id=task_id, description=phrasing["description"], difficulty=planned.difficulty,
                changes_data=planned.changes_data, hops=planned.hops, length=planned.length,
                entity_tree_json=planned.tree.as_json() if planned.tree else "",
                builds_on_task_id=builds_on_task_id,
                rubric=Rubric(success_criteria=phrasing["success_criteria"],
                              expected_tool_use=[expected_tool_use(a) for a in golden],
                              checkpoints=phrasing["checkpoints"]))
    task.golden_actions.extend(golden)
    start = 0
    for text, request in zip(phrasing["subtasks"], planned.requests):
        count = len(request.actions)
        subtask = Subtask(description=text, golden_action=start + count - 1)
        subtask.leading_actions.extend(range(start, start + count - 1))
        task.subtasks.append(subtask)
        start += count
    return task


def record_results(tasks: list[Task], planned: list[PlannedTask], results: list[str]) -> None:
    """Each golden action's result as the scratch run returned it (all tasks' actions, in order), and each
    request's expected values."""
    remaining = iter(results)
    for task, plan in zip(tasks, planned):
        own = [next(remaining) for _ in task.golden_actions]
        for golden, result in zip(task.golden_actions, own):
            golden.result_json = result
        for subtask in task.subtasks:
            values = expected_values(plan.actions[subtask.golden_action], own[subtask.golden_action])
            if values is not None:
                subtask.expected_values_json = json.dumps(values)


def agent_system_prompt(domain: str, db_description: str) -> str:
    return (f"You are a helpful assistant for a {domain} business. {db_description} "
            "Use the tools to look things up and to make changes; never invent data a tool did not return. "
            "Call a tool when you need data, and answer the user briefly once you have it. "
            "Customers do not know ids: when you need a record's id, find the record first with a search or lookup "
            "by what they told you, then use the id from its result. "
            "If a tool returns an error, say so plainly and suggest what to do next.")


def evaluation_system_prompt(domain: str, db_schema: DatabaseSchema, toolset: Toolset) -> str:
    """The generation prompt; an agent given raw SQL also gets the schema's DDL, as DySQL-Bench gives it."""
    prompt = agent_system_prompt(domain, db_schema.description)
    if any(t.sql.raw_query for t in toolset.tools):
        prompt += ("\n\nThe database is PostgreSQL; run one statement per execute_sql call. Its tables:\n\n"
                   + ";\n\n".join(schema_ddl(db_schema)) + ";")
    return prompt


def offered_tools(toolset: Toolset, tasks: list[Task], limit: int, rng: random.Random) -> Toolset:
    """The tasks' own tools plus randomly drawn distractors, up to `limit` (0: all), in toolset order.

    A trajectory then has to choose among a realistic handful of tools, and a small model is not swamped."""
    if limit <= 0 or limit >= len(toolset.tools):
        return toolset
    needed = {a.tool_name for t in tasks for a in t.golden_actions}
    others = [t.name for t in toolset.tools if t.name not in needed]
    chosen = needed | set(rng.sample(others, max(0, min(len(others), limit - len(needed)))))
    subset = Toolset()
    subset.CopyFrom(toolset)
    del subset.tools[:]
    subset.tools.extend(t for t in toolset.tools if t.name in chosen)
    return subset


PREFIX_ROLES = {"user", "assistant", "tool"}


def check_start_state(start, toolset: Toolset) -> None:
    """A start state must be a well-formed conversation and set up the database only through known SQL tools."""
    open_calls: set[str] = set()
    for i, m in enumerate(start.prefix):
        if m.role not in PREFIX_ROLES:
            raise PermanentError(f"start state message {i}: role must be user, assistant or tool, not {m.role!r}")
        open_calls |= {c.id for c in m.tool_calls}
        if m.role == "tool" and m.tool_call_id not in open_calls:
            raise PermanentError(f"start state message {i}: tool result for unknown call {m.tool_call_id!r}")
    for a in start.setup_actions:
        tool = next((t for t in toolset.tools if t.name == a.tool_name), None)
        if tool is None or not tool.HasField("sql"):
            raise PermanentError(f"start state setup action {a.tool_name!r} is not a SQL tool of this domain")
