"""Tool calls a server hands back as text (llama.cpp with Qwen2.5's template) are read as vLLM's hermes parser reads
them; anything else stays text."""
import json

from shared.runtime.llm import text_tool_calls


def test_tool_call_blocks_become_calls_and_the_rest_stays_text():
    content = ('Let me check.\n<tool_call>\n{"name": "get_customer", "arguments": {"customer_id": 7}}\n</tool_call>\n'
               '<tool_call>{"name": "get_plan", "arguments": {"plan_id": 3}}</tool_call>')
    calls, rest = text_tool_calls(content)
    assert [c["function"]["name"] for c in calls] == ["get_customer", "get_plan"]
    assert json.loads(calls[0]["function"]["arguments"]) == {"customer_id": 7}
    assert len({c["id"] for c in calls}) == 2 and rest == "Let me check."


def test_a_bare_call_object_is_a_call():
    calls, rest = text_tool_calls('{"name": "get_customer", "arguments": {"customer_id": 7}}')
    assert calls[0]["function"]["name"] == "get_customer" and rest == ""


def test_plain_replies_and_broken_blocks_stay_text():
    assert text_tool_calls("Customer 7 is Ana.") == ([], "Customer 7 is Ana.")
    assert text_tool_calls('{"answer": 42}') == ([], '{"answer": 42}')  # JSON, but not a call
    broken = '<tool_call>{"name": "get_customer", "arguments": </tool_call>'
    assert text_tool_calls(broken) == ([], broken)
