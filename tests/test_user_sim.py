"""The user simulator's rules, as state: piecemeal reveals, no early end, no talking past the end."""
import json

from services.user_sim import logic
from shared.env import outcomes
from shared.contracts import PipelineMode
from tests.factories import add_call, state, task

READS = [("get_customer", {"customer_id": i}) for i in (1, 2, 3, 4, 5)]


def simulate(s, agent_does_work=True, max_turns=50):
    """Drive the simulator's decisions with an agent that performs whatever was revealed."""
    reveals, turns = [], 0
    while turns < max_turns:
        logic.mark_satisfied(s)
        move = logic.next_move(s)
        if move.kind in ("done", "out_of_turns"):
            return move.kind, reveals
        if move.kind == "reveal":
            reveals.append(len(move.subtasks))
        logic.apply_move(s, move)
        s.counters.user_turns += 1
        turns += 1
        if agent_does_work:
            for ti, si in move.subtasks:
                t = s.tasks[ti]
                g = t.golden_actions[t.subtasks[si].golden_action]
                add_call(s, g.tool_name, json.loads(g.arguments_json))
    raise AssertionError("simulation did not end")


def test_reveals_at_most_two_subtasks_per_turn_and_ends_only_when_all_done():
    s = state([task(READS[:3]), task([("update_customer_status", {"customer_id": 7, "status": "suspended"}),
                                      ("get_customer", {"customer_id": 7})])])
    outcome, reveals = simulate(s)
    assert outcome == "done"
    assert reveals and max(reveals) <= 2
    assert sum(reveals) == 5
    assert all(sub.satisfied for t in s.tasks for sub in t.subtasks)


def test_two_subtasks_are_revealed_together_only_when_neither_tool_writes():
    """What a subtask's tool does is read from its declared effect, not from the words that describe it."""
    change = task([("get_customer", {"customer_id": 7}), ("update_customer_status", {"customer_id": 7, "status": "x"})])
    for sub in change.subtasks:
        sub.description = "Sort out the customer's account"
    assert len(logic.next_move(state([change])).subtasks) == 1
    look = task(READS[:2])
    for sub in look.subtasks:
        sub.description = "Tell me when the customer's plan had its last update"
    assert len(logic.next_move(state([look])).subtasks) == 2


def test_never_ends_while_a_subtask_is_open():
    s = state([task(READS[:2])])
    move = logic.next_move(s)
    logic.apply_move(s, move)
    s.counters.user_turns += 1
    add_call(s, "get_customer", {"customer_id": 999})  # the wrong record: nothing is satisfied
    logic.mark_satisfied(s)
    nxt = logic.next_move(s)
    assert nxt.kind == "follow_up"
    assert not logic.all_satisfied(s)


def test_failed_tool_call_does_not_satisfy():
    s = state([task(READS[:1])])
    logic.apply_move(s, logic.next_move(s))
    add_call(s, "get_customer", {"customer_id": 1}, ok=False)
    assert logic.mark_satisfied(s) == 0


def test_argument_match_tolerates_number_formatting_and_extra_arguments():
    assert outcomes.arguments_match({"customer_id": 7}, {"customer_id": 7.0, "limit": 5})
    assert outcomes.arguments_match({"status": "Suspended"}, {"status": "suspended"})
    assert not outcomes.arguments_match({"customer_id": 7}, {"customer_id": 8})
    assert not outcomes.arguments_match({"customer_id": 7}, {})


def test_task_oriented_baseline_states_everything_at_once():
    s = state([task(READS[:3]), task(READS[3:5])], mode=PipelineMode.PIPELINE_MODE_TASK_ORIENTED)
    outcome, reveals = simulate(s)
    assert outcome == "done"
    assert reveals[0] == 5


def test_out_of_turns_when_the_agent_never_acts():
    s = state([task(READS[:2])], max_user_turns=4)
    outcome, _ = simulate(s, agent_does_work=False)
    assert outcome == "out_of_turns"
    assert s.counters.user_turns == 4


def test_missing_values_are_added_to_the_message():
    request = ["Look up one customer by id (customer_id = 17)"]
    text = logic.ensure_values_mentioned("Can you check my account?", {"customer_id": 17}, request)
    assert text.startswith("Can you check my account?") and "customer_id = 17" in text
    assert logic.ensure_values_mentioned("Customer 17 please", {"customer_id": 17}, request) == "Customer 17 please"


def test_a_value_inside_another_number_does_not_count_as_mentioned():
    text = logic.ensure_values_mentioned("It was 2024-06-30.", {"plan_id": 4}, ["Look up plan (plan_id = 4)"])
    assert "plan_id = 4" in text


def test_expert_persona_states_each_whole_task_at_once():
    from shared.contracts import UserPersona
    s = state([task(READS[:3]), task(READS[3:5])])
    s.settings.user_persona = UserPersona.USER_PERSONA_EXPERT
    outcome, reveals = simulate(s)
    assert outcome == "done" and reveals == [3, 2]
