import json

import jsonschema

from services.agent import logic
from services.agent.step import AgentStep
from tests.factories import add_call, state, task


def test_step_schema_constrains_each_call_to_its_tools_arguments():
    s = state([task([("get_customer", {"customer_id": 1})])])
    schema = AgentStep(s, allow_tools=True).schema()
    jsonschema.validate({"tool_calls": [{"name": "get_customer", "arguments": {"customer_id": 3}}], "reply": "x"}, schema)
    try:
        jsonschema.validate({"tool_calls": [{"name": "get_customer", "arguments": {"customer_id": "three"}}],
                             "reply": "x"}, schema)
        raise AssertionError("a string id must not validate")
    except jsonschema.ValidationError:
        pass
    reply_only = AgentStep(s, allow_tools=False).schema()
    try:
        jsonschema.validate({"tool_calls": [{"name": "get_customer", "arguments": {"customer_id": 3}}],
                             "reply": "x"}, reply_only)
        raise AssertionError("past the step bound no tool call may validate")
    except jsonschema.ValidationError:
        pass


def test_decision_with_calls_becomes_openai_tool_calls_and_pending_requests():
    s = state([task([("get_customer", {"customer_id": 1})])])
    s.messages.add(role="user", content="Check customer 1")
    needs_tools = logic.apply_decision(s, {"tool_calls": [
        {"name": "get_customer", "arguments": {"customer_id": 1}},
        {"name": "get_customer", "arguments": {"customer_id": 2}}], "reply": "one moment"})
    assert needs_tools
    last = s.messages[-1]
    assert last.role == "assistant" and len(last.tool_calls) == 2
    assert [p.call_id for p in s.pending_calls] == [c.id for c in last.tool_calls]
    assert json.loads(last.tool_calls[0].function.arguments) == {"customer_id": 1}


def test_repeating_a_call_that_already_succeeded_this_turn_becomes_the_reply():
    s = state([task([("get_customer", {"customer_id": 1})])])
    s.messages.add(role="user", content="Check customer 1")
    add_call(s, "get_customer", {"customer_id": 1})
    needs_tools = logic.apply_decision(s, {"tool_calls": [{"name": "get_customer", "arguments": {"customer_id": 1}}],
                                           "reply": "Customer 1 is Ana."})
    assert not needs_tools
    assert s.messages[-1].content == "Customer 1 is Ana."


def test_request_messages_carry_the_tool_catalogue_but_the_state_does_not():
    s = state([task([("get_customer", {"customer_id": 1})])])
    msgs = AgentStep(s, allow_tools=True).messages()
    assert "get_customer(customer_id: integer)" in msgs[0]["content"]
    assert "get_customer" not in s.messages[0].content
