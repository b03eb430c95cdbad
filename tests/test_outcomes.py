"""A subtask is done by its outcome: what came back and what the user was told, not which call was made."""
from __future__ import annotations

import json

from shared.contracts import ChatMessage
from shared.env import outcomes
from tests.factories import add_call, state, task

ANA = {"customer_id": 42, "name": "Ana", "status": "active"}


def read_task(expected: dict):
    t = task([("get_customer", {"customer_id": 42})])
    t.golden_actions[0].result_json = json.dumps(ANA)
    t.subtasks[0].expected_values_json = json.dumps(expected)
    return t


def test_a_read_is_done_once_its_values_reach_the_user_after_the_call():
    t = read_task({"status": "active"})
    s = state([t])
    s.messages.append(ChatMessage(role="assistant", content="Customer 42's status is active."))  # before any call
    add_call(s, "get_customer", {"customer_id": 42}, content=ANA)
    assert not outcomes.subtask_done(s, t, t.subtasks[0])
    assert outcomes.undelivered(s, t, t.subtasks[0]) == ["status=active"]
    s.messages.append(ChatMessage(role="assistant", content="Her account is active."))
    assert outcomes.subtask_done(s, t, t.subtasks[0])
    assert outcomes.undelivered(s, t, t.subtasks[0]) == []


def test_another_call_that_returns_the_same_rows_satisfies_a_read():
    t = read_task({"name": "Ana"})
    s = state([t])
    add_call(s, "search_customers", {"name": "Ana"}, content=[ANA])  # not the golden tool, same row
    s.messages.append(ChatMessage(role="assistant", content="That is Ana."))
    assert outcomes.subtask_done(s, t, t.subtasks[0])


def test_a_call_with_other_rows_does_not_satisfy_a_read():
    t = read_task({"name": "Ana"})
    s = state([t])
    add_call(s, "get_customer", {"customer_id": 43}, content={**ANA, "customer_id": 43, "name": "Bo"})
    s.messages.append(ChatMessage(role="assistant", content="That is Bo, not Ana."))
    assert not outcomes.subtask_done(s, t, t.subtasks[0])


def test_a_write_is_done_by_a_call_that_leaves_the_same_row_in_the_same_table():
    t = task([("update_customer_status", {"customer_id": 42, "status": "suspended"})])
    t.golden_actions[0].result_json = json.dumps({**ANA, "status": "suspended"})
    s = state([t])
    add_call(s, "update_customer_status", {"customer_id": 42, "status": "paused"},
             content={**ANA, "status": "paused"})
    assert not outcomes.subtask_done(s, t, t.subtasks[0])
    add_call(s, "update_customer_status", {"customer_id": "42", "status": "Suspended"},
             content={**ANA, "status": "suspended"})
    assert outcomes.subtask_done(s, t, t.subtasks[0])


def test_a_failed_call_does_nothing():
    t = read_task({})
    s = state([t])
    add_call(s, "get_customer", {"customer_id": 42}, ok=False, content={"error": "timeout"})
    assert not outcomes.subtask_done(s, t, t.subtasks[0])
