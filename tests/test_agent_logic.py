import json
from types import SimpleNamespace

import jsonschema
import pytest
from llama_cpp.llama_grammar import json_schema_to_gbnf

from services.agent import logic
from services.agent.step import AgentStep, step_schema
from shared.runtime.llm import ChatResult, InvalidModelOutput
from tests.factories import add_call, state, task

CALL = {"name": "get_customer", "arguments": {"customer_id": 3}}


def valid(instance, schema) -> bool:
    try:
        jsonschema.validate(instance, schema)
    except jsonschema.ValidationError:
        return False
    return True


def test_a_step_is_tool_calls_or_a_reply_never_both():
    s = state([task([("get_customer", {"customer_id": 1})])])
    schema = AgentStep(s, allow_tools=True).schema()
    assert valid({"tool_calls": [CALL]}, schema)
    assert valid({"reply": "Customer 3 is Ana."}, schema)
    assert not valid({"tool_calls": [CALL], "reply": "one moment"}, schema)
    assert not valid({"tool_calls": []}, schema)  # no calls is not a step: that is a reply
    assert not valid({"tool_calls": [{"name": "get_customer", "arguments": {"customer_id": "three"}}]}, schema)
    reply_only = AgentStep(s, allow_tools=False).schema()
    assert valid({"reply": "x"}, reply_only) and not valid({"tool_calls": [CALL]}, reply_only)


def test_llama_cpp_turns_the_step_schema_into_a_grammar_of_two_alternatives():
    s = state([task([("get_customer", {"customer_id": 1})])])
    rules = dict(line.split(" ::= ", 1) for line in json_schema_to_gbnf(json.dumps(step_schema(s.toolset, True)))
                 .splitlines())
    assert rules["root"] == "alternative-0 | alternative-1"
    # Each alternative is an object of exactly one key.
    assert rules["alternative-0"] == '"{" space alternative-0-tool-calls-kv "}" space'
    assert rules["alternative-1"] == '"{" space alternative-1-reply-kv "}" space'
    # The list of calls opens with one call: an empty list is not in the grammar.
    assert rules["alternative-0-tool-calls"].startswith('"[" space alternative-0-tool-calls-item ')
    assert rules["alternative-0-tool-calls-item"] == ("alternative-0-tool-calls-item-0 | "
                                                      "alternative-0-tool-calls-item-1")
    assert rules["alternative-0-tool-calls-item-1-name"] == '"\\"update_customer_status\\""'
    reply_rules = json_schema_to_gbnf(json.dumps(step_schema(s.toolset, False)))
    assert "tool" not in reply_rules


def test_decision_with_calls_becomes_openai_tool_calls_and_pending_requests():
    s = state([task([("get_customer", {"customer_id": 1})])])
    s.messages.add(role="user", content="Check customer 1")
    needs_tools = logic.apply_decision(s, {"tool_calls": [
        {"name": "get_customer", "arguments": {"customer_id": 1}},
        {"name": "get_customer", "arguments": {"customer_id": 2}}]})
    assert needs_tools
    last = s.messages[-1]
    assert last.role == "assistant" and last.content == "" and len(last.tool_calls) == 2
    assert [p.call_id for p in s.pending_calls] == [c.id for c in last.tool_calls]
    assert json.loads(last.tool_calls[0].function.arguments) == {"customer_id": 1}


def scripted(*decisions):
    """An `ask` that answers the given decisions in turn and records what it was asked with."""
    asked = []

    def ask(allow_tools, note):
        asked.append((allow_tools, note))
        return decisions[len(asked) - 1]
    return ask, asked


def test_a_call_repeating_one_answered_this_turn_is_asked_again_without_tools():
    s = state([task([("get_customer", {"customer_id": 1})])])
    s.messages.add(role="user", content="Check customer 1")
    add_call(s, "get_customer", {"customer_id": 1})
    ask, asked = scripted({"tool_calls": [{"name": "get_customer", "arguments": {"customer_id": 1}}]},
                          {"reply": "Customer 1 is Ana."})
    decision = logic.decide(s, ask)
    assert decision == {"reply": "Customer 1 is Ana."}
    assert [allow for allow, _ in asked] == [True, False]
    assert "already have" in asked[1][1]
    assert dict(s.retries) == {"agent/repeated_call": 1}
    assert not logic.apply_decision(s, decision) and s.messages[-1].content == "Customer 1 is Ana."


def test_a_reply_the_guard_refuses_is_asked_again_with_the_reason_and_counted():
    s = state([task([("get_customer", {"customer_id": 42})])])
    s.messages.add(role="user", content="What is the phone number of customer 42?")
    lookup = {"tool_calls": [{"name": "get_customer", "arguments": {"customer_id": 42}}]}
    ask, asked = scripted({"reply": "It is +15678901234."}, lookup)
    assert logic.decide(s, ask) == lookup  # told what was wrong, the model acts instead
    assert "no tool returned" in asked[1][1]
    assert dict(s.retries) == {"agent/ungrounded_values": 1}
    assert len(s.messages) == 2  # the refused reply never entered the conversation


def test_a_call_with_an_id_nobody_gave_is_asked_again():
    s = state([task([("get_customer", {"customer_id": 42})])])
    s.messages.add(role="user", content="What is the phone number of customer 42?")
    guessed = {"tool_calls": [{"name": "get_customer", "arguments": {"customer_id": 101}}]}
    grounded = {"tool_calls": [{"name": "get_customer", "arguments": {"customer_id": 42}}]}
    ask, asked = scripted(guessed, grounded)
    assert logic.decide(s, ask) == grounded
    assert "never gave" in asked[1][1] and dict(s.retries) == {"agent/ungrounded_arguments": 1}
    # A model under test is measured as it is: its guess goes out.
    ask, asked = scripted(guessed)
    assert logic.decide(s, ask, guard_replies=False) == guessed


def test_after_the_bound_the_last_reply_goes_out():
    s = state([task([("get_customer", {"customer_id": 42})])])
    s.messages.add(role="user", content="What is the phone number of customer 42?")
    bad = {"reply": "It is +15678901234."}
    ask, asked = scripted(*[bad] * 5)
    assert logic.decide(s, ask) == bad
    assert len(asked) == logic.MAX_STEP_RETRIES + 1
    assert dict(s.retries) == {"agent/ungrounded_values": logic.MAX_STEP_RETRIES}


def test_past_the_step_bound_the_model_is_only_asked_for_a_reply():
    s = state([task([("get_customer", {"customer_id": 1})])])
    s.messages.add(role="user", content="Check customer 1")
    s.counters.agent_steps_this_turn = s.settings.max_agent_steps_per_turn
    ask, asked = scripted({"reply": "I could not finish that."})
    logic.decide(s, ask)
    assert asked == [(False, "")]


class FakeClient:
    """Stands in for LLMClient: records each chat request and answers the scripted results in turn."""

    def __init__(self, tool_calling: str, *results: ChatResult):
        self.endpoint = SimpleNamespace(tool_calling=tool_calling)
        self.config = SimpleNamespace(invalid_json_attempts=2)
        self.results = list(results)
        self.requests = []

    def chat(self, messages, **kwargs):
        self.requests.append({"messages": messages, **kwargs})
        result = self.results.pop(0)
        if kwargs.get("schema") is not None:
            result.data = json.loads(result.content)
        return result


def native_call(name, arguments) -> dict:
    return {"id": "x", "type": "function", "function": {"name": name, "arguments": arguments}}


def test_json_schema_mode_asks_for_one_json_step_with_the_catalogue():
    s = state([task([("get_customer", {"customer_id": 1})])])
    s.messages.add(role="user", content="Check customer 1")
    client = FakeClient("json_schema", ChatResult(content=json.dumps({"tool_calls": [CALL]})))
    answer = AgentStep(s, allow_tools=True).ask(client)
    assert answer.value == {"tool_calls": [CALL]}
    [request] = client.requests
    assert request["schema"]["anyOf"] and "tools" not in request
    assert "get_customer(customer_id: integer)" in request["messages"][0]["content"]
    assert "get_customer" not in s.messages[0].content  # the catalogue is sent, not stored


def test_native_mode_sends_tools_and_reads_the_servers_tool_calls():
    s = state([task([("get_customer", {"customer_id": 1})])])
    s.messages.add(role="user", content="Check customer 1")
    client = FakeClient("native",
                        ChatResult(content="", tool_calls=[native_call("get_customer", '{"customer_id": "one"}')]),
                        ChatResult(content="", tool_calls=[native_call("get_customer", '{"customer_id": 1}')]))
    answer = AgentStep(s, allow_tools=True).ask(client)
    assert answer.value == {"tool_calls": [{"name": "get_customer", "arguments": {"customer_id": 1}}]}
    assert answer.chat.calls == 2  # the call its schema refuses was asked again, and both are counted
    first = client.requests[0]
    assert first.get("schema") is None and first["tool_choice"] == "auto"
    assert {t["function"]["name"] for t in first["tools"]} == {"get_customer", "update_customer_status"}
    assert "Answer with one JSON object" not in first["messages"][0]["content"]


def test_native_mode_past_the_bound_takes_the_text_as_the_reply():
    s = state([task([("get_customer", {"customer_id": 1})])])
    s.messages.add(role="user", content="Check customer 1")
    client = FakeClient("native", ChatResult(content=" Customer 1 is Ana. "))
    assert AgentStep(s, allow_tools=False).ask(client).value == {"reply": "Customer 1 is Ana."}
    assert client.requests[0]["tool_choice"] == "none"


def test_native_mode_gives_up_on_unknown_tools():
    s = state([task([("get_customer", {"customer_id": 1})])])
    bad = ChatResult(content="", tool_calls=[native_call("drop_tables", "{}")])
    with pytest.raises(InvalidModelOutput, match="unknown tool"):
        AgentStep(s, allow_tools=True).ask(FakeClient("native", bad, bad))


def test_the_configured_agent_is_evaluated_as_its_endpoint_is_asked_and_a_named_one_natively():
    from services.agent.service import model_under_test_config
    from shared.contracts import EvaluationSettings
    from shared.runtime.config import LLMConfig

    config = LLMConfig(default={"base_url": "http://127.0.0.1:18080/v1", "model": "local",
                                "tool_calling": "json_schema"})
    own = model_under_test_config(config, EvaluationSettings())
    assert own.for_role("agent").tool_calling == "json_schema"
    served = model_under_test_config(config, EvaluationSettings(agent_base_url="http://gpu:8000/v1",
                                                                agent_model="mine"))
    agent = served.for_role("agent")
    assert (agent.tool_calling, agent.base_url, agent.model) == ("native", "http://gpu:8000/v1", "mine")
