"""Dataset records and exports.

The native record is one accepted trajectory as an OpenAI chat fine-tuning line (messages + tools + metadata).
Exports: ShareGPT (the human/gpt/function_call/observation convention of LLaMA-Factory and others) and a Hugging
Face `datasets` folder of parquet files (`datasets.load_dataset("parquet", data_dir=...)` or `load_dataset(folder)`).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from google.protobuf.json_format import MessageToDict

from shared.contracts import Difficulty, PipelineMode, TrajectoryState
from shared.env.trajectory import openai_messages, openai_tools


def to_openai_record(state: TrajectoryState) -> dict[str, Any]:
    return {
        "id": state.trajectory_id,
        "messages": openai_messages(state),
        "tools": openai_tools(state.toolset),
        "metadata": {
            "seed_id": state.seed_id,
            "domain": state.domain,
            "pipeline_mode": PipelineMode.Name(state.settings.pipeline_mode).removeprefix("PIPELINE_MODE_").lower(),
            "latency_s": round(state.finished_at - state.started_at, 3) if state.finished_at else None,
            "tasks": [
                {"description": t.description, "difficulty": Difficulty.Name(t.difficulty).removeprefix("DIFFICULTY_").lower(),
                 "changes_data": t.changes_data}
                for t in state.tasks
            ],
            "counters": MessageToDict(state.counters, preserving_proto_field_name=True),
            "tool_sources": sorted({r.source for r in state.tool_results if r.ok}),
            "trace_id": state.trace_id,
        },
    }


SHAREGPT_ROLES = {"user": "human", "assistant": "gpt", "tool": "observation"}


def to_sharegpt(record: dict[str, Any]) -> dict[str, Any]:
    conversations = []
    system = ""
    for m in record["messages"]:
        if m["role"] == "system":
            system = m["content"]
        elif m.get("tool_calls"):
            calls = [{"name": c["function"]["name"], "arguments": json.loads(c["function"]["arguments"] or "{}")}
                     for c in m["tool_calls"]]
            conversations.append({"from": "function_call", "value": json.dumps(calls if len(calls) > 1 else calls[0])})
        else:
            conversations.append({"from": SHAREGPT_ROLES[m["role"]], "value": m["content"]})
    return {"id": record["id"], "system": system, "tools": json.dumps([t["function"] for t in record["tools"]]),
            "conversations": conversations}


def _hf_schema():
    import pyarrow as pa

    call = pa.struct([("id", pa.string()), ("type", pa.string()),
                      ("function", pa.struct([("name", pa.string()), ("arguments", pa.string())]))])
    message = pa.struct([("role", pa.string()), ("content", pa.string()), ("tool_calls", pa.list_(call)),
                         ("tool_call_id", pa.string()), ("name", pa.string())])
    # Tool specs and metadata hold free-form JSON Schemas: kept as JSON text, one column each.
    return pa.schema([("id", pa.string()), ("messages", pa.list_(message)), ("tools", pa.string()),
                      ("metadata", pa.string())])


def write_hf_folder(records: list[dict[str, Any]], folder: Path) -> Path:
    """A `datasets`-loadable folder: data/train-00000-of-00001.parquet plus a short dataset card."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"id": r["id"],
             "messages": [{"role": m["role"], "content": m.get("content", ""), "tool_calls": m.get("tool_calls", []),
                           "tool_call_id": m.get("tool_call_id"), "name": m.get("name")} for m in r["messages"]],
             "tools": json.dumps(r["tools"]), "metadata": json.dumps(r.get("metadata", {}))} for r in records]
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    path = data / "train-00000-of-00001.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=_hf_schema()), path)
    (folder / "README.md").write_text(
        "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n    path: data/train-*.parquet\n---\n"
        f"# TurnForge dataset\n\n{len(rows)} multi-turn tool-use trajectories in OpenAI chat format. `tools` and "
        "`metadata` are JSON text.\n")
    return path


def export(records: list[dict[str, Any]], fmt: str, out: Path) -> Path:
    if fmt == "openai":
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        return out
    if fmt == "sharegpt":
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(json.dumps(to_sharegpt(r), ensure_ascii=False) + "\n" for r in records))
        return out
    if fmt == "hf":
        return write_hf_folder(records, out)
    raise ValueError(f"unknown export format {fmt!r}: openai, sharegpt or hf")
