import json

import pyarrow.parquet as pq

from shared.run import dataset
from shared.contracts import GenerationSettings, PipelineMode
from tests.factories import add_call, state, task


def record():
    s = state([task([("get_customer", {"customer_id": 1})])])
    s.settings.CopyFrom(GenerationSettings(pipeline_mode=PipelineMode.PIPELINE_MODE_TASK_ORIENTED))
    s.messages.add(role="user", content="customer 1 please")
    add_call(s, "get_customer", {"customer_id": 1})
    s.messages.add(role="assistant", content="Customer 1 is Ana.")
    s.started_at, s.finished_at = 100.0, 112.5
    return dataset.to_openai_record(s)


def test_openai_record_carries_tools_calls_and_metadata():
    r = record()
    assert [m["role"] for m in r["messages"]] == ["system", "user", "assistant", "tool", "assistant"]
    assert r["messages"][2]["tool_calls"][0]["function"]["name"] == "get_customer"
    assert r["messages"][3]["tool_call_id"] == r["messages"][2]["tool_calls"][0]["id"]
    assert {t["function"]["name"] for t in r["tools"]} == {"get_customer", "update_customer_status"}
    assert r["metadata"]["pipeline_mode"] == "task_oriented" and r["metadata"]["latency_s"] == 12.5


def test_sharegpt_export():
    s = dataset.to_sharegpt(record())
    assert [c["from"] for c in s["conversations"]] == ["human", "function_call", "observation", "gpt"]
    assert json.loads(s["conversations"][1]["value"]) == {"name": "get_customer", "arguments": {"customer_id": 1}}
    assert s["system"] == "You help." and json.loads(s["tools"])[0]["name"] == "get_customer"


def test_hf_parquet_folder_round_trips(tmp_path):
    path = dataset.export([record(), record()], "hf", tmp_path / "hf")
    table = pq.read_table(path)
    assert table.num_rows == 2
    row = table.to_pylist()[0]
    assert row["messages"][2]["tool_calls"][0]["function"]["arguments"] == '{"customer_id": 1}'
    assert json.loads(row["tools"])[0]["function"]["name"] == "get_customer"
    assert "data/train-*.parquet" in (tmp_path / "hf" / "README.md").read_text()
