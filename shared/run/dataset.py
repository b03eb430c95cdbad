"""Dataset records and exports.

The native record is one accepted trajectory as an OpenAI chat fine-tuning line (messages + tools + metadata; the
metadata holds the tasks with their golden actions, the verdict, what re-validating the record offline needs
(`turnforge validate`), the model of each role and, when known, the domain database's provenance: its source,
licence and the tables whose rows are synthetic). Exports: ShareGPT (the human/gpt/function_call/observation convention of
LLaMA-Factory, with a `tools` column) and a Hugging Face `datasets` folder of parquet files
(`datasets.load_dataset(folder)`) with a dataset card.
"""
from __future__ import annotations

import contextlib
import json
import logging
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import psycopg
import yaml
from google.protobuf.json_format import MessageToDict

from shared.contracts import (CheckResult, ChatMessage, Difficulty, EffectKind, FunctionCall, GenerationSettings, GoldenAction,
                              PipelineMode, Rubric, RubricCategory, SqlBinding, Subtask, Task, Tool, ToolCall,
                              ToolCallResult, ToolEffect, ToolExecution, Toolset, TrajectoryState, Verdict)
from shared.env.sandbox import SandboxManager, UnknownDomain
from shared.env.trajectory import executes_sql, openai_messages, openai_tools
from shared.runtime.errors import TransientError
from shared.run import stats

logger = logging.getLogger(__name__)

# The files of a run's output folder (and of `turnforge cluster collect`'s).
DATASET_FILE = "dataset.jsonl"  # the accepted trajectories' records
REJECTED_FILE = "rejected.jsonl"  # each rejection with its reasons, checks, conversation, tasks and tools
DEAD_LETTERS_FILE = "dead_letters.jsonl"  # the run's dead letters, without their payloads
TRIALS_FILE = "trials.jsonl"  # an evaluation's trials (`turnforge eval --out`): records, never training data


def database_provenance(dsn: str, domains: list[str]) -> dict[str, dict]:
    """The registered provenance of each domain database, for the records' metadata. Unknown domains are left out,
    and so is everything when the registry cannot be read: the dataset is written regardless."""
    manager = SandboxManager(dsn)
    found = {}
    try:
        for domain in domains:
            with contextlib.suppress(UnknownDomain):
                found[domain] = manager.domain_schema(domain).provenance.model_dump()
    except (TransientError, psycopg.Error) as e:  # unreachable, or no domain ever registered
        logger.warning("database provenance not recorded in the dataset: %s", e)
    return found


def to_openai_record(verdict: Verdict, databases: dict[str, dict] | None = None) -> dict[str, Any]:
    """The record of a judged trajectory: what a trainer reads (messages, the tools offered) and, in metadata,
    everything else about it: its tasks with their golden actions and results, the verdict, and what offline
    re-validation needs to replay it (trajectory_from_record reads it back). `databases` (domain database ->
    provenance) adds its database's provenance.

    Each call's recorded result is its tool message's content; metadata.tool_results says how each call ended."""
    state = verdict.trajectory
    database = (databases or {}).get(state.toolset.domain_database or state.domain)
    return {
        "id": state.trajectory_id,
        "messages": openai_messages(state),
        "tools": openai_tools(state.toolset),
        "metadata": {
            "seed_id": state.seed_id,
            "domain": state.domain,
            "domain_database": state.toolset.domain_database,
            "pipeline_mode": _enum_name(PipelineMode, state.settings.pipeline_mode, "PIPELINE_MODE_"),
            "tool_execution": "sql" if executes_sql(state) else "simulated",
            "latency_s": round(state.finished_at - state.started_at, 3) if state.finished_at else None,
            "tasks": [_task_record(t) for t in state.tasks],
            "golden_state_hash": state.golden_state_hash,
            "is_task_complete": state.is_task_complete,
            "abandoned_reason": state.abandoned_reason,
            "prefix_messages": state.prefix_messages,
            "start_state": {"setup_actions": [_action_record(a) for a in state.setup_actions],
                            "tools": openai_tools(Toolset(tools=state.setup_tools))},
            "tool_bindings": {t.name: _binding_record(t) for t in [*state.toolset.tools, *state.setup_tools]},
            "tool_results": [{"call_id": r.call_id, "tool": r.tool_name, "ok": r.ok, "source": r.source,
                              "error": r.error} for r in state.tool_results],
            "verdict": _verdict_record(verdict),
            "counters": MessageToDict(state.counters, preserving_proto_field_name=True),
            "retries": dict(sorted(state.retries.items())),
            "tool_sources": sorted({r.source for r in state.tool_results if r.ok}),
            "trace_id": state.trace_id,
            "models": dict(sorted(state.settings.models.items())),
            **({"database": database} if database is not None else {}),
            **({"evaluation": {"agent": state.settings.evaluation.agent_name}}
               if state.settings.HasField("evaluation") else {}),
        },
    }


def _enum_name(enum, value: int, prefix: str) -> str:
    return enum.Name(value).removeprefix(prefix).lower()


def _json_or_none(text: str) -> Any:
    return json.loads(text) if text else None


def _action_record(action: GoldenAction) -> dict[str, Any]:
    return {"tool": action.tool_name, "arguments": json.loads(action.arguments_json or "{}"),
            "looked_up": list(action.looked_up_arguments), "result": _json_or_none(action.result_json)}


def _root_record(task: Task) -> dict[str, Any] | None:
    """The record the task's entity tree grew from: which entity of the database the task is about."""
    tree = _json_or_none(task.entity_tree_json)
    return {"table": tree["table"], "record": tree["record"]} if isinstance(tree, dict) and "table" in tree else None


def _task_record(task: Task) -> dict[str, Any]:
    return {
        "task_id": task.task_id,
        "description": task.description,
        "difficulty": _enum_name(Difficulty, task.difficulty, "DIFFICULTY_"),
        "changes_data": task.changes_data,
        "hops": task.hops,
        "builds_on": task.builds_on_task_id or None,
        "root": _root_record(task),
        "golden_state_hash": task.golden_state_hash or None,
        "rubric": {"success_criteria": list(task.rubric.success_criteria),
                   "expected_tool_use": list(task.rubric.expected_tool_use),
                   "checkpoints": list(task.rubric.checkpoints)},
        "golden_actions": [_action_record(a) for a in task.golden_actions],
        "subtasks": [{"description": s.description, "golden_action": s.golden_action,
                      "leading_actions": list(s.leading_actions),
                      "expected_values": json.loads(s.expected_values_json or "{}")} for s in task.subtasks],
    }


def _binding_record(tool: Tool) -> dict[str, Any]:
    """What a tool does beyond its OpenAI spec: its SQL, its effect and its output schema."""
    sql = tool.sql
    return {
        "sql": {"statement": sql.statement, "parameters": list(sql.parameters),
                "parameter_columns": dict(sorted(sql.parameter_columns.items())),
                "result_columns": dict(sorted(sql.result_columns.items()))} if tool.HasField("sql") else None,
        "effect": {"kind": _enum_name(EffectKind, tool.effect.kind, "EFFECT_KIND_"),
                   "single_row": tool.effect.single_row, "table": tool.effect.table},
        "output_schema": _json_or_none(tool.output_schema_json),
    }


def check_record(check: CheckResult) -> dict[str, Any]:
    """One check's result; `messages`: the indices (into the record's messages) of the messages that failed it."""
    return {"name": check.name, "passed": check.passed, "detail": check.detail,
            "messages": list(check.message_indices)}


def _verdict_record(verdict: Verdict) -> dict[str, Any]:
    return {
        "accepted": verdict.accepted,
        "reasons": list(verdict.reasons),
        "final_state_hash": verdict.final_state_hash,
        "checks": [check_record(c) for c in verdict.checks],
        "rubric": [{"item": j.item, "category": _enum_name(RubricCategory, j.category, "RUBRIC_CATEGORY_"),
                    "satisfied": j.satisfied} for j in verdict.rubric],
        "judge_decision": verdict.judge_decision,
        "judge_label": verdict.judge_judgment,
        "judge_reasoning": verdict.judge_reasoning,
    }


# -- reading a record back ----------------------------------------------------------------------------------------

def trajectory_from_record(record: dict[str, Any]) -> TrajectoryState:
    """The trajectory a record was written from, as far as validation needs it: conversation, toolset with its
    bindings, tasks, start state, recorded results and the golden hash. Raises KeyError or ValueError on a record
    that lacks them."""
    meta = record["metadata"]
    bindings = meta["tool_bindings"]
    state = TrajectoryState(
        trajectory_id=record["id"], seed_id=meta.get("seed_id", ""), domain=meta["domain"],
        golden_state_hash=meta["golden_state_hash"], is_task_complete=meta["is_task_complete"],
        abandoned_reason=meta.get("abandoned_reason", ""), prefix_messages=meta["prefix_messages"],
        settings=GenerationSettings(
            pipeline_mode=PipelineMode.Value("PIPELINE_MODE_" + meta["pipeline_mode"].upper()),
            tool_execution=ToolExecution.Value("TOOL_EXECUTION_" + meta["tool_execution"].upper()),
            models=meta.get("models", {})),
        toolset=Toolset(domain=meta["domain"], domain_database=meta["domain_database"],
                        tools=[tool_from_record(t, bindings) for t in record["tools"]]),
        messages=[_message_from_record(m) for m in record["messages"]],
        tasks=[_task_from_record(t) for t in meta["tasks"]],
        setup_actions=[_action_from_record(a) for a in meta["start_state"]["setup_actions"]],
        setup_tools=[tool_from_record(t, bindings) for t in meta["start_state"]["tools"]],
    )
    contents = {m.tool_call_id: m.content for m in state.messages if m.role == "tool"}
    state.tool_results.extend(
        ToolCallResult(call_id=r["call_id"], tool_name=r["tool"], ok=r["ok"], source=r["source"], error=r["error"],
                       content_json=contents.get(r["call_id"], "")) for r in meta["tool_results"])
    return state


def _message_from_record(message: dict[str, Any]) -> ChatMessage:
    return ChatMessage(role=message["role"], content=message.get("content") or "",
                       tool_call_id=message.get("tool_call_id", ""), name=message.get("name", ""),
                       tool_calls=[ToolCall(id=c["id"], type=c.get("type", "function"),
                                            function=FunctionCall(name=c["function"]["name"],
                                                                  arguments=c["function"]["arguments"]))
                                   for c in message.get("tool_calls", [])])


def tool_from_record(spec: dict[str, Any], bindings: dict[str, dict]) -> Tool:
    function = spec["function"]
    binding = bindings[function["name"]]
    tool = Tool(name=function["name"], description=function.get("description", ""),
                parameters_json=json.dumps(function.get("parameters", {})),
                output_schema_json=json.dumps(binding["output_schema"]) if binding["output_schema"] is not None
                else "",
                effect=ToolEffect(kind=EffectKind.Value("EFFECT_KIND_" + binding["effect"]["kind"].upper()),
                                  single_row=binding["effect"]["single_row"], table=binding["effect"]["table"]))
    if binding["sql"] is not None:
        tool.sql.CopyFrom(SqlBinding(statement=binding["sql"]["statement"], parameters=binding["sql"]["parameters"],
                                     parameter_columns=binding["sql"]["parameter_columns"],
                                     result_columns=binding["sql"]["result_columns"]))
    return tool


def _action_from_record(action: dict[str, Any]) -> GoldenAction:
    return GoldenAction(tool_name=action["tool"], arguments_json=json.dumps(action["arguments"]),
                        result_json=json.dumps(action["result"]) if action.get("result") is not None else "",
                        looked_up_arguments=action.get("looked_up", []))


def _task_from_record(task: dict[str, Any]) -> Task:
    rubric = task["rubric"]
    return Task(task_id=task.get("task_id", ""), description=task["description"],
                difficulty=Difficulty.Value("DIFFICULTY_" + task["difficulty"].upper()),
                changes_data=task["changes_data"], hops=task.get("hops", 0),
                builds_on_task_id=task.get("builds_on") or "", golden_state_hash=task.get("golden_state_hash") or "",
                rubric=Rubric(success_criteria=rubric["success_criteria"],
                              expected_tool_use=rubric["expected_tool_use"], checkpoints=rubric["checkpoints"]),
                golden_actions=[_action_from_record(a) for a in task["golden_actions"]],
                subtasks=[Subtask(description=s["description"], golden_action=s["golden_action"],
                                  leading_actions=s.get("leading_actions", []),
                                  expected_values_json=json.dumps(s["expected_values"]) if s["expected_values"]
                                  else "") for s in task["subtasks"]])


# LLaMA-Factory's sharegpt format: after the system prompt, turns alternate between the user side (human or
# observation, at positions 0, 2, 4...) and the assistant side (gpt or function_call, at 1, 3, 5...), and a
# sample ends on the assistant side; a sample that breaks this is skipped in training.
USER_SIDE = ("human", "observation")


def to_sharegpt(record: dict[str, Any]) -> dict[str, Any]:
    """One record in ShareGPT form. Parallel tool calls are one function_call turn (a JSON list) and their results
    one observation turn (a JSON list, in call order); consecutive user or assistant texts are joined. What the
    format cannot hold is left out: the text of an assistant message that also calls tools, an assistant text
    directly before a tool call (its narration), a greeting before the first user turn, and trailing user-side
    turns (a closing user message)."""
    system = "\n\n".join(m["content"] for m in record["messages"] if m["role"] == "system" and m.get("content"))
    turns = _alternating([_turn(m) for m in record["messages"] if m["role"] != "system"])
    return {"id": record["id"], "system": system, "tools": json.dumps([t["function"] for t in record["tools"]]),
            "conversations": [{"from": kind, "value": _turn_value(kind, parts)} for kind, parts in turns]}


def _turn(message: dict[str, Any]) -> tuple[str, list[Any]]:
    """(ShareGPT role, its parts): texts, calls or tool results, joined when turns merge."""
    if message.get("tool_calls"):
        return "function_call", [{"name": c["function"]["name"],
                                  "arguments": json.loads(c["function"]["arguments"] or "{}")}
                                 for c in message["tool_calls"]]
    if message["role"] == "tool":
        return "observation", [message.get("content") or ""]
    return {"user": "human", "assistant": "gpt"}[message["role"]], [message.get("content") or ""]


def _alternating(turns: list[tuple[str, list[Any]]]) -> list[tuple[str, list[Any]]]:
    out: list[tuple[str, list[Any]]] = []
    for kind, parts in turns:
        if not out:
            if kind in USER_SIDE:
                out.append((kind, parts))
            continue
        last_kind, last_parts = out[-1]
        if (last_kind in USER_SIDE) != (kind in USER_SIDE):
            out.append((kind, parts))
        elif last_kind == kind:
            out[-1] = (kind, last_parts + parts)
        elif (last_kind, kind) == ("gpt", "function_call"):
            out[-1] = (kind, parts)
        else:  # a tool result the agent never answered before the user spoke: the rest cannot alternate
            break
    while out and out[-1][0] in USER_SIDE:
        out.pop()
    return out


def _turn_value(kind: str, parts: list[Any]) -> str:
    if kind == "function_call":
        return json.dumps(parts[0] if len(parts) == 1 else parts, ensure_ascii=False)
    if kind == "observation" and len(parts) > 1:
        return json.dumps([_json_or_text(p) for p in parts], ensure_ascii=False)
    return "\n\n".join(parts)


def _json_or_text(content: str) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return content


def _hf_schema():
    import pyarrow as pa  # pyarrow is slow to import and only the Hugging Face export needs it

    call = pa.struct([("id", pa.string()), ("type", pa.string()),
                      ("function", pa.struct([("name", pa.string()), ("arguments", pa.string())]))])
    message = pa.struct([("role", pa.string()), ("content", pa.string()), ("tool_calls", pa.list_(call)),
                         ("tool_call_id", pa.string()), ("name", pa.string())])
    # Tool specs and metadata hold free-form JSON Schemas: kept as JSON text, one column each.
    return pa.schema([("id", pa.string()), ("messages", pa.list_(message)), ("tools", pa.string()),
                      ("metadata", pa.string())])


def write_hf_folder(records: list[dict[str, Any]], folder: Path,
                    rejections: list[dict[str, Any]] | None = None) -> Path:
    """A `datasets`-loadable folder: data/train-00000-of-00001.parquet plus its dataset card (README.md)."""
    import pyarrow as pa  # see _hf_schema
    import pyarrow.parquet as pq

    rows = [{"id": r["id"],
             "messages": [{"role": m["role"], "content": m.get("content", ""), "tool_calls": m.get("tool_calls", []),
                           "tool_call_id": m.get("tool_call_id"), "name": m.get("name")} for m in r["messages"]],
             "tools": json.dumps(r["tools"]), "metadata": json.dumps(r.get("metadata", {}))} for r in records]
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    path = data / "train-00000-of-00001.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=_hf_schema()), path)
    (folder / "README.md").write_text(dataset_card(records, rejections))
    return path


# --- the dataset card -------------------------------------------------------------------------------------------

UNKNOWN_LICENSE = "unknown"


def dataset_card(records: list[dict[str, Any]], rejections: list[dict[str, Any]] | None = None) -> str:
    """README.md of the Hugging Face folder: YAML front matter as the Hub reads it, then what the data is, how dense
    it is (the paper's Table 1), what generated it and where its databases come from."""
    databases = _databases(records)
    front = {
        "license": _card_license(databases.values()),
        "task_categories": ["text-generation"],
        "language": ["en"],
        "tags": ["tool-use", "function-calling", "multi-turn", "synthetic"],
        "size_categories": [_size_category(len(records))],
        "pretty_name": "TurnForge multi-turn tool-use dialogues",
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*.parquet"}]}],
    }
    sections = [
        "# TurnForge multi-turn tool-use dialogues",
        f"{len(records)} multi-turn tool-use trajectories generated by TurnForge and accepted by its validator, in "
        "OpenAI chat format: `messages` (with `tool_calls`), `tools` (JSON text: the offered function specs) and "
        "`metadata` (JSON text: pipeline mode, tasks with their golden actions, the verdict, models, database "
        "provenance, and what `turnforge validate` needs to re-validate the record).",
        _domains_section(records, databases),
        _density_section(records),
        _models_section(records),
        _validation_section(len(records), rejections),
        _sources_section(databases),
    ]
    return "---\n" + yaml.safe_dump(front, sort_keys=False) + "---\n\n" + "\n\n".join(sections) + "\n"


def _databases(records: list[dict[str, Any]]) -> dict[str, dict | None]:
    """Domain -> its database's provenance as the records carry it (None: not recorded)."""
    found: dict[str, dict | None] = {}
    for r in records:
        meta = r.get("metadata", {})
        if found.get(meta.get("domain", "")) is None:
            found[meta.get("domain", "")] = meta.get("database")
    return dict(sorted(found.items()))


def _license_of(provenance: dict | None) -> str | None:
    """The Hub's licence id of a database; None for one TurnForge generated (no third-party terms)."""
    if provenance is None:
        return UNKNOWN_LICENSE
    if provenance.get("generator") and not provenance.get("source"):
        return None
    text = provenance.get("license", "")
    if not text:
        return UNKNOWN_LICENSE
    return text.split(" (")[0].strip().lower().replace(" ", "-")  # "CC BY-SA 4.0 (Spider, ...)" -> cc-by-sa-4.0


def _card_license(provenances) -> str:
    """One licence when every third-party source shares it; unknown if any is unknown; else other (see the card)."""
    ids = {_license_of(p) for p in provenances} - {None}
    if UNKNOWN_LICENSE in ids:
        return UNKNOWN_LICENSE
    return ids.pop() if len(ids) == 1 else "other"


def _size_category(n: int) -> str:
    for bound, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < bound:
            return name
    return "n>1M"


def _domains_section(records: list[dict[str, Any]], databases: dict[str, dict | None]) -> str:
    counts = Counter(r.get("metadata", {}).get("domain", "") for r in records)
    lines = ["## Domains", "", "| domain | samples | database |", "|---|---:|---|"]
    for domain, provenance in databases.items():
        lines.append(f"| {domain} | {counts[domain]} | {_source_text(provenance)} |")
    return "\n".join(lines)


def _density_section(records: list[dict[str, Any]]) -> str:
    lines = ["## Density (the paper's Table 1)", "",
             "A turn is any message but the system prompt; a step is one tool-use iteration for one user request; "
             "a task is one goal of the session.", "",
             "| pipeline mode | samples | steps mean | steps max | turns mean | turns max | tasks mean | tasks max |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for mode, f in stats.dataset_stats(records).items():
        lines.append(f"| {mode} | {f['samples']} | {f['steps_mean']:.2f} | {f['steps_max']} | {f['turns_mean']:.2f} "
                     f"| {f['turns_max']} | {f['tasks_mean']:.2f} | {f['tasks_max']} |")
    return "\n".join(lines)


def _models_section(records: list[dict[str, Any]]) -> str:
    by_role: dict[str, Counter] = defaultdict(Counter)
    for r in records:
        for role, model in r.get("metadata", {}).get("models", {}).items():
            by_role[role][model] += 1
    if not by_role:
        return "## Models\n\nThe records do not name their models."
    lines = ["## Models", "", "| role | model (samples) |", "|---|---|"]
    for role, models in sorted(by_role.items()):
        lines.append(f"| {role} | {', '.join(f'{m} ({n})' for m, n in models.most_common())} |")
    return "\n".join(lines)


def _validation_section(accepted: int, rejections: list[dict[str, Any]] | None) -> str:
    text = "## Validation\n\nEvery sample passed TurnForge's validator."
    if rejections is None:
        return text + " The rejected trajectories were not given to the export."
    text += f" Rejected: {len(rejections)} of {accepted + len(rejections)} trajectories."
    reasons = Counter(reason for r in rejections for reason in reason_kinds(r))
    if reasons:
        text += "\n\n| rejection reason | trajectories |\n|---|---:|\n" + "\n".join(
            f"| {reason} | {n} |" for reason, n in reasons.most_common())
    return text


def reason_kinds(rejection: dict[str, Any]) -> set[str]:
    """The kinds of reason of one rejection ("final_state: hash differs" -> final_state); its failed checks when
    it gives no reason, as the run report counts them."""
    reasons = {reason.split(":", 1)[0] for reason in rejection.get("reasons", [])}
    return reasons or {f"check failed: {c['name']}" for c in rejection.get("checks", []) if not c.get("passed")}


def _sources_section(databases: dict[str, dict | None]) -> str:
    lines = ["## Sources and licences", ""]
    for domain, provenance in databases.items():
        licence = _license_of(provenance)
        stated = (provenance or {}).get("license") or "unknown"
        lines.append(f"- **{domain}**: {_source_text(provenance)}; licence: "
                     + ("none beyond TurnForge's (generated data)" if licence is None else stated) + ".")
        synthetic = (provenance or {}).get("synthetic_rows") or {}
        if synthetic:
            lines.append("  Synthetic rows (the source left these tables empty; generated with Faker at import): "
                         + ", ".join(f"{t} ({n})" for t, n in synthetic.items()) + ".")
    return "\n".join(lines)


def _source_text(provenance: dict | None) -> str:
    if provenance is None:
        return "not recorded"
    if provenance.get("source"):
        return f"imported from `{Path(provenance['source']).name}`"
    return f"generated by {provenance.get('generator') or 'TurnForge'}"


def load_rejections(dataset_paths: list[str | Path]) -> list[dict[str, Any]] | None:
    """The rejected.jsonl a run writes beside each dataset.jsonl; None when none of them has one."""
    found = [Path(p).with_name(REJECTED_FILE) for p in dataset_paths]
    found = [p for p in found if p.is_file()]
    return stats.load_records(found) if found else None


def export(records: list[dict[str, Any]], fmt: str, out: Path,
           rejections: list[dict[str, Any]] | None = None) -> Path:
    if fmt == "openai":
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        return out
    if fmt == "sharegpt":
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(json.dumps(to_sharegpt(r), ensure_ascii=False) + "\n" for r in records))
        return out
    if fmt == "hf":
        return write_hf_folder(records, out, rejections)
    raise ValueError(f"unknown export format {fmt!r}: openai, sharegpt or hf")
