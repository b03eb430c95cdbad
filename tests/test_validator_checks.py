from services.validator import judge
from services.validator.checks import check_call_arguments, check_grounding, check_outputs, check_state_hash
from shared.contracts import ChatMessage, RubricCategory
from tests.factories import add_call, state, task


def test_grounding_flags_numbers_no_tool_returned():
    s = state([task([("get_customer", {"customer_id": 1})])])
    s.messages.add(role="user", content="customer 1?")
    add_call(s, "get_customer", {"customer_id": 1}, content={"customer_id": 1, "balance": 42.5})
    s.messages.append(ChatMessage(role="assistant", content="Customer 1 owes 42.50."))
    assert check_grounding(s).passed
    s.messages.append(ChatMessage(role="assistant", content="And 99 invoices are open."))
    result = check_grounding(s)
    assert not result.passed and "99" in result.detail


def test_arguments_and_outputs_are_checked_against_schemas():
    s = state([task([("get_customer", {"customer_id": 1})])])
    add_call(s, "get_customer", {"customer_id": 1}, content={"customer_id": 1, "name": "Ana"})
    assert check_call_arguments(s).passed and check_outputs(s).passed
    add_call(s, "get_customer", {"customer_id": "one"}, content={"customer_id": "x", "name": 3})
    assert not check_call_arguments(s).passed
    assert not check_outputs(s).passed


def test_state_hash_must_equal_golden_when_data_changes():
    s = state([task([("get_customer", {"customer_id": 1})])])
    assert check_state_hash(s, "anything").passed  # no golden hash: nothing to compare
    s.golden_state_hash = "abc"
    assert check_state_hash(s, "abc").passed
    assert not check_state_hash(s, "abd").passed


def test_only_failed_critical_items_reject():
    answer = {"items": [{"category": "Critical", "satisfied": True}, {"category": "NonCritical", "satisfied": False},
                        {"category": "InvalidRubric", "satisfied": False}, {"category": "Structural", "satisfied": False}],
              "judgment": "valid", "reasoning": ""}
    judgements = judge.to_judgements(["a", "b", "c", "d"], answer)
    assert judge.critical_failures(judgements) == []
    answer["items"][0]["satisfied"] = False
    assert judge.critical_failures(judge.to_judgements(["a", "b", "c", "d"], answer)) == ["a"]
    assert judgements[1].category == RubricCategory.RUBRIC_CATEGORY_NON_CRITICAL


def test_a_start_state_prefix_is_context_not_a_claim():
    s = state([task([("get_customer", {"customer_id": 1})])])
    s.messages.add(role="user", content="hello")
    s.messages.add(role="assistant", content="Earlier I suspended customer 3.")
    s.prefix_messages = 2
    s.messages.append(ChatMessage(role="assistant", content="Customer 3 is suspended, as before."))
    assert check_grounding(s).passed
    s.prefix_messages = 0
    assert not check_grounding(s).passed
