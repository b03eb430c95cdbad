"""Dataset records: one accepted trajectory as an OpenAI chat fine-tuning line (messages + tools)."""
from __future__ import annotations

from typing import Any

from google.protobuf.json_format import MessageToDict

from shared.contracts import Difficulty, PipelineMode, TrajectoryState
from shared.trajectory import openai_messages, openai_tools


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
