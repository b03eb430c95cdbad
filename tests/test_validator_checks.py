"""The validator's deterministic checks on hand-built trajectories (no database, no model)."""
from __future__ import annotations

import json

from shared.contracts import ChatMessage, GenerationSettings, ToolExecution
from shared.validation.checks import (check_call_arguments, check_calls_answered, check_closed_by_user,
                                      check_grounding, check_no_tool_markup, check_not_abandoned, check_outputs,
                                      check_reads_delivered, check_state_hash, check_subtasks_done,
                                      check_writes_requested, deterministic_checks)
from tests.factories import add_call, state, task


def read_then_close():
    """A read of customer 1 told to the user, closed by the user: every check passes (given the golden hash)."""
    s = state([task([("get_customer", {"customer_id": 1})])])
    s.tasks[0].golden_actions[0].result_json = json.dumps({"customer_id": 1, "name": "Ana"})
    s.tasks[0].subtasks[0].expected_values_json = json.dumps({"name": "Ana"})
    s.golden_state_hash = "h0"
    s.messages.add(role="user", content="who is customer 1?")
    add_call(s, "get_customer", {"customer_id": 1}, content={"customer_id": 1, "name": "Ana"})
    s.messages.add(role="assistant", content="Customer 1 is Ana.")
    s.messages.add(role="user", content="Thanks, that's all.")
    s.is_task_complete = True
    return s


def failed(s, final_hash="h0") -> list[str]:
    return [c.name for c in deterministic_checks(s, final_hash) if not c.passed]


def test_a_complete_trajectory_passes_every_check():
    assert failed(read_then_close()) == []
    assert all(not c.message_indices for c in deterministic_checks(read_then_close(), "h0"))


def test_the_user_must_close_the_conversation_and_say_it_is_complete():
    s = read_then_close()
    s.is_task_complete = False
    assert "never marked" in check_closed_by_user(s).detail
    s = read_then_close()
    del s.messages[-1]
    result = check_closed_by_user(s)
    assert not result.passed and "not the user's closing turn" in result.detail
    assert list(result.message_indices) == [len(s.messages) - 1]  # the reviewer is shown the last message


def test_an_abandoned_trajectory_is_rejected_with_its_reason():
    s = read_then_close()
    s.abandoned_reason = "user turn could not be worded"
    result = check_not_abandoned(s)
    assert not result.passed and result.detail == "user turn could not be worded"


def test_grounding_flags_numbers_no_tool_returned():
    s = read_then_close()
    assert check_grounding(s).passed
    s.messages.insert(-1, ChatMessage(role="assistant", content="And 99 invoices are open."))
    result = check_grounding(s)
    assert not result.passed and "99" in result.detail
    assert list(result.message_indices) == [5]  # the reply that stated it, not the one that was grounded (4)


def test_a_start_state_prefix_is_context_not_a_claim():
    s = state([task([("get_customer", {"customer_id": 1})])])
    s.messages.add(role="user", content="hello")
    s.messages.add(role="assistant", content="Earlier I suspended customer 3.")
    s.prefix_messages = 2
    s.messages.append(ChatMessage(role="assistant", content="Customer 3 is suspended, as before."))
    assert check_grounding(s).passed
    s.prefix_messages = 0
    assert not check_grounding(s).passed


def test_pasted_tool_markup_in_a_reply_rejects():
    s = read_then_close()
    assert check_no_tool_markup(s).passed
    s.messages[-2].content = '<tool_response>{"name": "Ana"}</tool_response> Customer 1 is Ana.'
    result = check_no_tool_markup(s)
    assert not result.passed and "tool_response" in result.detail
    assert list(result.message_indices) == [4] and result.detail.startswith("message 4:")


def test_arguments_and_outputs_are_checked_against_schemas():
    s = read_then_close()
    assert check_call_arguments(s).passed and check_outputs(s).passed
    add_call(s, "get_customer", {"customer_id": "one"}, content={"customer_id": "x", "name": 3})
    arguments, outputs = check_call_arguments(s), check_outputs(s)
    assert not arguments.passed and list(arguments.message_indices) == [6]  # the call
    assert not outputs.passed and list(outputs.message_indices) == [7]  # its result


def test_every_call_needs_one_result():
    s = read_then_close()
    assert check_calls_answered(s).passed
    tool_message = next(i for i, m in enumerate(s.messages) if m.role == "tool")
    del s.messages[tool_message]
    result = check_calls_answered(s)
    assert not result.passed and "call_0 get_customer: 0 result messages" in result.detail
    assert list(result.message_indices) == [2]


def test_the_end_state_must_equal_the_golden_one_whenever_tools_run_in_sql():
    s = read_then_close()
    assert check_state_hash(s, "h0").passed
    assert not check_state_hash(s, "h1").passed
    s.golden_state_hash = ""
    result = check_state_hash(s, "h0")
    assert not result.passed and result.detail == "no golden state recorded"
    s.settings.CopyFrom(GenerationSettings(tool_execution=ToolExecution.TOOL_EXECUTION_SIMULATED))
    assert check_state_hash(s, "").passed  # simulated tools leave no database state to compare


def test_a_write_no_golden_action_asked_for_rejects():
    s = read_then_close()
    assert check_writes_requested(s).passed  # reads are not writes
    add_call(s, "update_customer_status", {"customer_id": 3, "status": "closed"},
             content={"customer_id": 3, "status": "closed"})
    result = check_writes_requested(s)
    assert not result.passed and '"customer_id": 3' in result.detail
    assert list(result.message_indices) == [7]  # the write's result
    s.tasks[0].golden_actions.add(tool_name="update_customer_status",
                                  arguments_json=json.dumps({"customer_id": 3, "status": "closed"}))
    assert check_writes_requested(s).passed


def test_subtasks_are_rederived_from_outcomes_not_the_simulators_flag():
    s = read_then_close()
    assert check_subtasks_done(s).passed
    s.messages[-2].content = "I found the customer."
    s.tasks[0].subtasks[0].satisfied = True
    assert not check_subtasks_done(s).passed
    result = check_reads_delivered(s)
    assert not result.passed and "name=Ana" in result.detail


def test_an_equivalent_call_satisfies_a_subtask():
    s = read_then_close()
    s.tool_results[0].tool_name = "lookup_customer"  # another tool, same rows returned
    s.toolset.tools.add().CopyFrom(s.toolset.tools[0])
    s.toolset.tools[-1].name = "lookup_customer"
    s.messages[2].tool_calls[0].function.name = "lookup_customer"
    s.messages[2].tool_calls[0].function.arguments = json.dumps({"customer_id": 1})
    assert check_subtasks_done(s).passed and check_reads_delivered(s).passed
