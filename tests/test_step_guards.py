"""The agent's step guard and the user message check: what each lets through and what it sends back."""
from __future__ import annotations

from services.agent import reply_guard
from services.user_sim import message_check
from shared.contracts import ChatMessage
from tests.factories import add_call, state, task


def conversation(user_text: str = "Hi, could you look up customer 42 for me?"):
    s = state([task([("get_customer", {"customer_id": 42})])])
    s.messages.append(ChatMessage(role="user", content=user_text))
    return s


def test_a_reply_built_from_the_tool_result_passes():
    s = conversation()
    add_call(s, "get_customer", {"customer_id": 42}, content={"customer_id": 42, "name": "Ana", "balance": 17.5})
    assert reply_guard.problems("Customer 42 is Ana; her balance is 17.50.", s) == []


def test_values_no_tool_returned_are_sent_back():
    s = conversation()
    assert reply_guard.problems("The phone number for customer 42 is +15678901234.", s) == ["ungrounded_values"]


def test_pasted_tool_markup_is_sent_back():
    s = conversation()
    add_call(s, "get_customer", {"customer_id": 42})
    reply = '<tool_response>{"customer_id": 42, "name": "Ana"}</tool_response>'
    assert "pasted_tool_markup" in reply_guard.problems(reply, s)


def test_a_claimed_change_needs_a_write_this_turn():
    s = conversation("Please set customer 42 to active.")
    add_call(s, "get_customer", {"customer_id": 42})
    assert reply_guard.problems("I've updated customer 42 to active.", s) == ["claims_unperformed_write"]
    add_call(s, "update_customer_status", {"customer_id": 42, "status": "active"})
    assert reply_guard.problems("I've updated customer 42 to active.", s) == []


def test_a_write_from_an_earlier_turn_does_not_back_a_new_claim():
    s = conversation("Please set customer 42 to active.")
    add_call(s, "update_customer_status", {"customer_id": 42, "status": "active"})
    s.messages.append(ChatMessage(role="assistant", content="Done: customer 42 is active."))
    s.messages.append(ChatMessage(role="user", content="Now make it inactive, please."))
    assert reply_guard.problems("Customer 42 has been updated to inactive.", s) == ["claims_unperformed_write"]


def test_saying_the_users_words_back_is_sent_back():
    s = conversation("Can you please help me find the phone number for my device?")
    assert reply_guard.problems("Can you please help me find the phone number for my device?", s) == ["repeats_user"]


def test_a_natural_user_message_passes():
    s = conversation()
    assert message_check.problems("Hello! Could you tell me the name on the account for customer 42?", s) == []


def test_meta_text_is_refused():
    s = conversation()
    assert "meta_text" in message_check.problems("The assistant has not looked up any invoice by its id.", s)
    assert "meta_text" in message_check.problems("My next task is to update the status.", s)


def test_echoing_the_assistant_is_refused():
    s = conversation()
    s.messages.append(ChatMessage(role="assistant", content="I'm sorry, I don't have the ability to view your response."))
    assert "echoes_assistant" in message_check.problems("You're sorry, I don't have the ability to view it.", s)
    assert "echoes_assistant" in message_check.problems("I'm sorry, I don't have the ability to view your response.", s)


def test_a_user_who_offers_help_like_the_assistant_is_refused():
    s = conversation()
    assert message_check.problems("Hello! How can I assist you today?", s) == ["speaks_as_assistant"]
    assert message_check.problems("Hello! How can I help you find the subscription?", s) == ["speaks_as_assistant"]
    assert message_check.problems("Sure, I'll find Metro Talk and tell you its status.", s) == ["speaks_as_assistant"]
    assert message_check.problems("What would you like to know about the subscription with phone number "
                                  "+1-555-309-7283?", s) == ["speaks_as_assistant"]
    assert message_check.problems("Would you like me to look up Metro Talk?", s) == ["speaks_as_assistant"]
    assert message_check.problems("Hello! Can you help me find my subscription?", s) == []
    assert message_check.problems("I would like to know the status of Metro Talk.", s) == []
    assert message_check.problems("Do you need the phone number? It is +1-555-309-7283.", s) == []
    assert message_check.problems("Sure, go ahead. I'll wait for the result.", s) == []


def test_tool_descriptions_and_field_names_are_refused():
    s = conversation()
    assert "tool_text" in message_check.problems("To be clear: look up one customer by id, please.", s)
    assert "tool_text" in message_check.problems("Please run get_customer for me.", s)
    assert "field_names" in message_check.problems("I need the record where customer_id = 42.", s)
    assert "field_names" in message_check.problems("My customer_id is 42.", s)


def test_call_values_count_as_given_when_a_person_said_them_in_their_own_way():
    from shared.env.grounding import ungrounded_arguments

    said = ["Please suspend my line +1 555 0100 and put ticket 12 on hold."]
    assert ungrounded_arguments({"status": "suspended", "phone_number": "+1-555-0100"}, said) == []
    assert ungrounded_arguments({"ticket_id": 12, "state": "on_hold", "urgent": True}, said) == []
    assert ungrounded_arguments({"ticket_id": 13, "status": "closed", "plan": "mobile"}, said) == [
        "ticket_id=13", "status='closed'", "plan='mobile'"]
