"""The user simulator's rules, as state: piecemeal reveals, no early end, no talking past the end."""
import json

import jsonschema

from services.user_sim import logic, message_check, user_turn
from services.user_sim.service import UserSimulator
from services.user_sim.user_turn import UserTurn
from shared.contracts import ChatMessage, PipelineMode, Topics, TrajectoryStatus
from shared.env import outcomes
from shared.runtime.config import Settings
from shared.runtime.llm import ChatResult
from tests.factories import add_call, state, task

READS = [("get_customer", {"customer_id": i}) for i in (1, 2, 3, 4, 5)]


def valid(instance, schema) -> bool:
    try:
        jsonschema.validate(instance, schema)
    except jsonschema.ValidationError:
        return False
    return True


def simulate(s, agent_does_work=True, max_turns=50):
    """Drive the simulator's decisions with an agent that performs whatever was revealed."""
    reveals, turns = [], 0
    while turns < max_turns:
        logic.mark_satisfied(s)
        move = logic.next_move(s)
        if move.kind in ("close", "out_of_turns"):
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
    assert outcome == "close"
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
    assert outcome == "close"
    assert reveals[0] == 5


def test_out_of_turns_when_the_agent_never_acts():
    s = state([task(READS[:2])], max_user_turns=4)
    outcome, _ = simulate(s, agent_does_work=False)
    assert outcome == "out_of_turns"
    assert s.counters.user_turns == 4


def test_expert_persona_states_each_whole_task_at_once():
    from shared.contracts import UserPersona
    s = state([task(READS[:3]), task(READS[3:5])])
    s.settings.user_persona = UserPersona.USER_PERSONA_EXPERT
    outcome, reveals = simulate(s)
    assert outcome == "close" and reveals == [3, 2]


def test_the_first_turn_greets_and_asks_for_the_first_subtask():
    s = state([task(READS[:1])])
    move = logic.next_move(s)
    logic.apply_move(s, move)
    request = UserTurn(s, move).messages()
    assert [m["role"] for m in request] == ["system", "user"]  # nothing made up for it to answer
    direction = request[1]["content"]
    assert "first message: greet" in direction
    assert "Look up" not in direction and "get_customer (customer id 1)" in direction  # fields as a person says them


def test_the_plan_for_the_next_message_follows_the_agents_last_words():
    s = state([task(READS[:2])])
    logic.apply_move(s, logic.next_move(s))
    s.messages.append(ChatMessage(role="user", content="Hi, can you look up customer 1?"))
    s.messages.append(ChatMessage(role="assistant", content="Customer 1 is Ana."))
    s.tasks[0].subtasks[0].satisfied = True
    move = logic.next_move(s, newly_satisfied=1)
    logic.apply_move(s, move)
    request = UserTurn(s, move, correction="Your previous draft was not sent.").messages()
    assert [m["role"] for m in request] == ["system", "assistant", "user"]
    last = request[-1]["content"]
    assert last.startswith("The assistant says: Customer 1 is Ana.")
    assert "thanking the assistant" in last and "Your previous draft was not sent." in last
    assert "Plan" not in request[0]["content"] and "previous draft" not in request[0]["content"]


def test_the_user_model_sees_the_conversation_role_flipped_without_tool_traffic():
    s = state([task(READS[:2])])
    s.messages.append(ChatMessage(role="user", content="Hi, can you look up customer 1?"))
    add_call(s, "get_customer", {"customer_id": 1})
    s.messages.append(ChatMessage(role="assistant", content="Customer 1 is Ana."))
    flipped = user_turn.role_flipped(s)
    assert flipped == [{"role": "assistant", "content": "Hi, can you look up customer 1?"},
                       {"role": "user", "content": "Customer 1 is Ana."}]


def test_a_question_about_an_open_request_is_answered_with_the_plan_details():
    s = state([task([("update_customer_status", {"customer_id": 7, "status": "suspended"})])])
    logic.apply_move(s, logic.next_move(s))
    s.messages.append(ChatMessage(role="user", content="Please suspend customer 7."))
    s.messages.append(ChatMessage(role="assistant", content="Shall I set customer 7 to suspended?"))
    move = logic.next_move(s)
    assert move.kind == "answer" and move.subtasks == [(0, 0)]
    direction = UserTurn(s, move).messages()[-1]["content"]
    assert "say yes, go ahead" in direction and "customer id 7, status suspended" in direction
    # Without a question, an open request is followed up instead.
    s.messages[-1].content = "I can help with many things."
    assert logic.next_move(s).kind == "follow_up"


def test_what_the_agent_just_did_is_acknowledged_before_the_next_request():
    s = state([task(READS[:3])])
    logic.apply_move(s, logic.next_move(s))
    add_call(s, "get_customer", {"customer_id": 1})
    add_call(s, "get_customer", {"customer_id": 2})
    move = logic.next_move(s, newly_satisfied=logic.mark_satisfied(s))
    assert move.kind == "reveal" and move.acknowledge and move.subtasks == [(0, 2)]
    assert UserTurn(s, move).plan().startswith(user_turn.ACKNOWLEDGE)


def test_the_closing_turn_is_recorded_and_marks_the_task_complete():
    s = state([task(READS[:1])])
    logic.apply_move(s, logic.next_move(s))
    logic.say(s, "Hi, could you look up customer 1?")
    add_call(s, "get_customer", {"customer_id": 1})
    logic.mark_satisfied(s)
    move = logic.next_move(s)
    assert move.kind == "close"
    schema = UserTurn(s, move).schema()
    assert not valid({"user_message": "Thanks!", "is_task_complete": False}, schema)
    text, reasons = logic.word(s, move, lambda note: "That's all sorted, thank you!")
    logic.close(s, text)
    assert reasons == [] and s.is_task_complete
    assert s.status == TrajectoryStatus.TRAJECTORY_STATUS_USER_DONE
    assert s.messages[-1].role == "user" and s.messages[-1].content == "That's all sorted, thank you!"


def test_before_every_subtask_is_done_the_model_cannot_say_the_task_is_complete():
    s = state([task(READS[:2])])
    move = logic.next_move(s)
    schema = UserTurn(s, move).schema()
    assert not valid({"user_message": "All done, bye!", "is_task_complete": True}, schema)
    assert valid({"user_message": "Hi, could you look up customer 1?", "is_task_complete": False}, schema)


def test_a_message_failing_the_checks_is_asked_again_with_the_reason():
    s = state([task(READS[:1])])
    move = logic.next_move(s)
    logic.apply_move(s, move)
    drafts = iter(["Please run get_customer for customer 1.", "Hello! Could you look up customer 1 for me?"])
    notes = []
    text, reasons = logic.word(s, move, lambda note: notes.append(note) or next(drafts))
    assert (text, reasons) == ("Hello! Could you look up customer 1 for me?", [])
    assert notes[0] == "" and "copied a tool's name" in notes[1]
    assert dict(s.retries) == {"user_sim/tool_text": 1}


def test_a_request_without_the_values_the_agent_needs_is_asked_again():
    s = state([task(READS[:1])])
    move = logic.next_move(s)
    assert message_check.problems("Hi, can you check my account?", s, logic.required_values(s, move)) == \
        ["missing_values"]
    assert message_check.problems("Hi, can you check customer 1?", s, logic.required_values(s, move)) == []


def test_a_user_turn_that_cannot_be_worded_abandons_the_trajectory():
    s = state([task(READS[:1])])
    move = logic.next_move(s)
    logic.apply_move(s, move)
    text, reasons = logic.word(s, move, lambda note: "My customer_id is 1.")
    assert reasons == ["field_names"]
    assert dict(s.retries) == {"user_sim/field_names": logic.MAX_WORDING_ATTEMPTS - 1}
    logic.abandon(s, reasons)
    assert s.abandoned_reason == "user turn could not be worded: field_names"
    assert not any(m.role == "user" for m in s.messages)  # nothing was sent, and nothing patched


class ScriptedModel:
    """Stands in for the user model's client: answers each request with the next scripted message."""

    def __init__(self, *texts: str):
        self.texts = list(texts)
        self.requests = []

    def chat(self, messages, *, schema, **_):
        self.requests.append(messages)
        complete = schema["properties"]["is_task_complete"]["const"]
        return ChatResult(content="", data={"user_message": self.texts.pop(0), "is_task_complete": complete})


def simulator(model: ScriptedModel) -> UserSimulator:
    sim = UserSimulator(Settings())
    sim.llm.for_role = lambda role, models: model
    return sim


def test_the_service_sends_the_closing_turn_with_the_finished_trajectory():
    s = state([task(READS[:1])])
    logic.apply_move(s, logic.next_move(s))
    logic.say(s, "Hi, could you look up customer 1?")
    add_call(s, "get_customer", {"customer_id": 1})
    s.messages.append(ChatMessage(role="assistant", content="Customer 1 is Ana."))
    [out] = simulator(ScriptedModel("Great, that's all I needed. Thanks!")).handle(s)
    assert out.topic == Topics.TRAJECTORIES_COMPLETE
    assert out.message.is_task_complete and out.message.messages[-1].content == "Great, that's all I needed. Thanks!"


def test_the_service_abandons_a_turn_it_cannot_word():
    s = state([task(READS[:1])])
    model = ScriptedModel(*["Please run get_customer for customer 1."] * logic.MAX_WORDING_ATTEMPTS)
    [out] = simulator(model).handle(s)
    assert out.topic == Topics.TRAJECTORIES_COMPLETE
    assert out.message.abandoned_reason == "user turn could not be worded: tool_text"
    assert not out.message.is_task_complete and len(model.requests) == logic.MAX_WORDING_ATTEMPTS
    assert "copied a tool's name" in model.requests[-1][-1]["content"]  # the model was told what was wrong


def test_the_reference_agents_scripted_user_states_the_instruction_then_ends_without_a_model():
    class NoModel:
        def __getattr__(self, name):
            raise AssertionError("the scripted user asked the model")

    s = state([task(READS[:1])])
    s.instruction = "Which plan does customer 1 have?"
    s.settings.evaluation.scripted_user = True
    sim = simulator(NoModel())
    [out] = sim.handle(s)
    assert out.topic == Topics.TURNS_AGENT and s.messages[-1].content == s.instruction and not s.is_task_complete
    s.messages.append(ChatMessage(role="assistant", content="Customer 1 has Metro Talk."))
    [out] = sim.handle(s)
    assert out.topic == Topics.TRAJECTORIES_COMPLETE and s.is_task_complete
    assert s.status == TrajectoryStatus.TRAJECTORY_STATUS_USER_DONE and s.counters.user_turns == 2
