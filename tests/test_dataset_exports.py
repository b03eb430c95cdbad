import json

import pyarrow.parquet as pq
import yaml

from shared.run import dataset
from shared.contracts import CheckResult, Difficulty, FunctionCall, GenerationSettings, PipelineMode, ToolCall, Verdict
from shared.env.dbschema import Provenance
from tests.factories import add_call, state, task


def record():
    s = state([task([("get_customer", {"customer_id": 1})])])
    s.settings.CopyFrom(GenerationSettings(pipeline_mode=PipelineMode.PIPELINE_MODE_TASK_ORIENTED))
    s.messages.add(role="user", content="customer 1 please")
    add_call(s, "get_customer", {"customer_id": 1})
    s.messages.add(role="assistant", content="Customer 1 is Ana.")
    s.started_at, s.finished_at = 100.0, 112.5
    return dataset.to_openai_record(Verdict(trajectory=s))


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


# --- ShareGPT: LLaMA-Factory's alternation ----------------------------------------------------------------------

def call(call_id: str, name: str, args: dict) -> dict:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}


def record_with_parallel_calls() -> dict:
    return {"id": "t", "tools": [{"type": "function", "function": {"name": "get_customer", "parameters": {}}}],
            "messages": [
                {"role": "system", "content": "You help."},
                {"role": "user", "content": "Customers 1 and 2?"},
                {"role": "assistant", "content": "Let me look them up."},  # narration, then a separate tool call
                {"role": "assistant", "content": "", "tool_calls": [call("a", "get_customer", {"customer_id": 1}),
                                                                    call("b", "get_customer", {"customer_id": 2})]},
                {"role": "tool", "tool_call_id": "a", "name": "get_customer", "content": '{"name": "Ana"}'},
                {"role": "tool", "tool_call_id": "b", "name": "get_customer", "content": '{"name": "Bo"}'},
                {"role": "assistant", "content": "Customer 1 is Ana."},
                {"role": "assistant", "content": "Customer 2 is Bo."},
                {"role": "user", "content": "And 3?"},
                {"role": "assistant", "content": "", "tool_calls": [call("c", "get_customer", {"customer_id": 3})]},
                {"role": "tool", "tool_call_id": "c", "name": "get_customer", "content": "no such customer"},
                {"role": "assistant", "content": "There is no customer 3."},
                {"role": "user", "content": "Thanks, bye."},  # closing user turn
            ]}


def assert_llama_factory_alternation(conversations: list[dict]) -> None:
    for position, turn in enumerate(conversations):
        allowed = ("human", "observation") if position % 2 == 0 else ("gpt", "function_call")
        assert turn["from"] in allowed, (position, turn)
    assert len(conversations) % 2 == 0  # a sample ends on the assistant side


def test_sharegpt_turns_alternate_as_llama_factory_requires():
    s = dataset.to_sharegpt(record_with_parallel_calls())
    conversations = s["conversations"]
    assert_llama_factory_alternation(conversations)
    assert [c["from"] for c in conversations] == ["human", "function_call", "observation", "gpt",
                                                  "human", "function_call", "observation", "gpt"]
    assert json.loads(conversations[1]["value"]) == [{"name": "get_customer", "arguments": {"customer_id": 1}},
                                                     {"name": "get_customer", "arguments": {"customer_id": 2}}]
    assert json.loads(conversations[2]["value"]) == [{"name": "Ana"}, {"name": "Bo"}]  # in call order
    assert conversations[3]["value"] == "Customer 1 is Ana.\n\nCustomer 2 is Bo."
    assert conversations[6]["value"] == "no such customer"  # one result: as the tool returned it
    assert s["system"] == "You help."


def test_sharegpt_drops_what_cannot_alternate():
    r = record_with_parallel_calls()
    r["messages"].insert(1, {"role": "assistant", "content": "Hello!"})  # a greeting before the first user turn
    r["messages"].insert(12, {"role": "user", "content": "Hm?"})  # the user speaks over an unanswered tool result
    conversations = dataset.to_sharegpt(r)["conversations"]
    assert_llama_factory_alternation(conversations)
    assert [c["from"] for c in conversations] == ["human", "function_call", "observation", "gpt",
                                                  "human", "function_call"]


# --- the Hugging Face dataset card ------------------------------------------------------------------------------

SPIDER_CAR = {"source": "/data/spider/car_1/car_1.sql", "license": "CC BY-SA 4.0 (Spider, Yu et al. 2018)",
              "generator": "", "synthetic_rows": {"car_makers": 30, "cars_data": 24}}
MODELS = {"agent": "qwen-agent", "user_sim": "qwen-user"}


def card_records() -> list[dict]:
    """Two task-oriented samples: 4 turns, 1 step, 1 task; and 9 turns, steps 2 and 0 (mean 1), 2 tasks."""
    short = state([task([("get_customer", {"customer_id": 1})])])
    long = state([task([("get_customer", {"customer_id": 1})]), task([("get_customer", {"customer_id": 2})])])
    for s, domain in ((short, "telecom"), (long, "car_1")):
        s.settings.CopyFrom(GenerationSettings(pipeline_mode=PipelineMode.PIPELINE_MODE_TASK_ORIENTED, models=MODELS))
        s.domain = s.toolset.domain_database = domain
    short.messages.add(role="user", content="customer 1 please")
    add_call(short, "get_customer", {"customer_id": 1})
    short.messages.add(role="assistant", content="Customer 1 is Ana.")
    long.messages.add(role="user", content="customers 1 and 2, then 3")
    add_call(long, "get_customer", {"customer_id": 1})
    long.messages.add(role="assistant", tool_calls=[
        ToolCall(id="p1", type="function", function=FunctionCall(name="get_customer", arguments='{"customer_id": 2}')),
        ToolCall(id="p2", type="function", function=FunctionCall(name="get_customer", arguments='{"customer_id": 3}'))])
    long.messages.add(role="tool", tool_call_id="p1", name="get_customer", content="{}")
    long.messages.add(role="tool", tool_call_id="p2", name="get_customer", content="{}")
    long.messages.add(role="assistant", content="Done.")
    long.messages.add(role="user", content="thanks")
    long.messages.add(role="assistant", content="Bye.")
    databases = {"telecom": Provenance(generator="TurnForge's demo database generator").model_dump(),
                 "car_1": SPIDER_CAR}
    return [dataset.to_openai_record(Verdict(trajectory=s), databases) for s in (short, long)]


def read_card(folder) -> tuple[dict, str]:
    text = (folder / "README.md").read_text()
    assert text.startswith("---\n")
    front, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(front), body


def table_row(body: str, first_cell: str) -> list[str]:
    for line in body.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_cell:
            return cells[1:]
    raise AssertionError(f"no table row for {first_cell!r}")


def test_hf_card_front_matter_and_figures_match_the_records(tmp_path):
    records = card_records()
    rejections = [{"reasons": ["final_state: hash differs", "final_state: rows differ", "judge: invalid"]},
                  {"reasons": ["final_state: x"]},
                  {"reasons": [], "checks": [{"name": "tool_errors", "passed": False, "detail": "2 failed"}]}]
    dataset.export(records, "hf", tmp_path / "hf", rejections=rejections)
    front, body = read_card(tmp_path / "hf")
    assert front["license"] == "cc-by-sa-4.0"  # the demo database adds no third-party terms
    assert front["task_categories"] == ["text-generation"] and front["language"] == ["en"]
    assert front["size_categories"] == ["n<1K"]
    assert front["configs"] == [{"config_name": "default",
                                 "data_files": [{"split": "train", "path": "data/train-*.parquet"}]}]
    assert list((tmp_path / "hf").glob(front["configs"][0]["data_files"][0]["path"]))
    # Table 1, worked out by hand from the two samples
    assert table_row(body, "task_oriented") == ["2", "1.00", "2", "6.50", "9", "1.50", "2"]
    assert table_row(body, "telecom") == ["1", "generated by TurnForge's demo database generator"]
    assert table_row(body, "car_1") == ["1", "imported from `car_1.sql`"]
    assert table_row(body, "agent") == ["qwen-agent (2)"]
    assert table_row(body, "final_state") == ["2"] and table_row(body, "judge") == ["1"]  # per trajectory
    assert table_row(body, "check failed: tool_errors") == ["1"]
    assert "Rejected: 3 of 5 trajectories." in body
    assert "CC BY-SA 4.0 (Spider, Yu et al. 2018)" in body and "car_makers (30), cars_data (24)" in body


def test_hf_card_licence_is_unknown_when_a_source_is_unlicensed(tmp_path):
    records = card_records()
    records[0]["metadata"]["database"] = {"source": "/x/shop.sqlite", "license": "", "generator": "",
                                          "synthetic_rows": {}}
    dataset.export(records, "hf", tmp_path / "hf")
    front, body = read_card(tmp_path / "hf")
    assert front["license"] == "unknown"
    assert "The rejected trajectories were not given to the export." in body


def test_a_record_reads_back_into_the_trajectory_it_validates():
    s = state([task([("get_customer", {"customer_id": 1}), ("update_customer_status",
                                                               {"customer_id": 1, "status": "suspended"})])])
    s.tasks[0].difficulty = Difficulty.DIFFICULTY_HARD
    s.tasks[0].rubric.success_criteria.append("names the customer")
    s.tasks[0].golden_actions[0].result_json = json.dumps({"customer_id": 1, "name": "Ana"})
    s.tasks[0].subtasks[0].expected_values_json = json.dumps({"name": "Ana"})
    s.golden_state_hash, s.is_task_complete, s.prefix_messages = "abc", True, 0
    s.setup_actions.add(tool_name="update_customer_status", arguments_json=json.dumps({"customer_id": 2,
                                                                                       "status": "closed"}))
    s.setup_tools.add().CopyFrom(s.toolset.tools[1])
    s.messages.add(role="user", content="customer 1 please")
    add_call(s, "get_customer", {"customer_id": 1})
    add_call(s, "get_customer", {"customer_id": 2}, ok=False, content={"error": "not_found"})
    verdict = Verdict(trajectory=s, accepted=True, checks=[CheckResult(name="golden_state", passed=True)])
    record = json.loads(json.dumps(dataset.to_openai_record(verdict)))
    assert record["metadata"]["verdict"]["checks"] == [{"name": "golden_state", "passed": True, "detail": "",
                                                        "messages": []}]

    back = dataset.trajectory_from_record(record)
    assert list(back.tasks) == list(s.tasks)
    assert list(back.toolset.tools) == list(s.toolset.tools) and back.toolset.domain_database == "telecom"
    assert list(back.setup_actions) == list(s.setup_actions) and list(back.setup_tools) == list(s.setup_tools)
    assert list(back.messages) == list(s.messages)
    assert [(r.call_id, r.ok, r.content_json) for r in back.tool_results] == \
        [(r.call_id, r.ok, r.content_json) for r in s.tool_results]
    assert (back.golden_state_hash, back.is_task_complete, back.prefix_messages) == ("abc", True, 0)
