"""task-generator's check of a task's wording against its golden actions: two judges must agree, a mismatch is
re-phrased with the objections, then dropped and counted; a trajectory without tasks is dead-lettered."""
from __future__ import annotations

import random

import pytest

from services.task_generator.actions import PlannedAction, PlannedRequest
from services.task_generator.planning import PlannedTask
from services.task_generator.service import WORDING_MISMATCH, WORDING_REPHRASED, TaskGenerator
from shared.contracts import GenerationSettings, SeedEvent, SeedToolset, TrajectoryState
from shared.runtime.errors import PermanentError
from shared.runtime.llm import ChatResult
from tests.factories import toolset

GOOD = {"description": "The customer wants their account marked as closed.",
        "subtasks": ["Please mark the account of customer 7 as closed."], "success_criteria": ["It is closed."],
        "checkpoints": ["The change is made."]}


def planned() -> PlannedTask:
    update = toolset().tools[1]
    return PlannedTask(None, "update", [PlannedRequest([PlannedAction(update, {"customer_id": 7, "status": "closed"})])])


class ScriptedModel:
    """Answers each model call by its schema name from a script, and remembers the requests."""

    def __init__(self, **answers: list):
        self.answers = answers
        self.requests: list[tuple[str, list[dict]]] = []

    def chat(self, messages, *, schema_name="output", **_):
        self.requests.append((schema_name, messages))
        return ChatResult(content="", data=self.answers[schema_name].pop(0))


def check(model: ScriptedModel, state: TrajectoryState):
    state.toolset.CopyFrom(toolset())
    return TaskGenerator.checked_phrasing(None, planned(), None, "telecom", False, state,
                                          ask=lambda call: call.ask(model).value,
                                          judge=lambda call: call.ask(model).value)


def test_a_wording_both_judges_agree_on_is_kept():
    model = ScriptedModel(task_spec=[GOOD], wording_check=[{"agrees": True, "problems": []}] * 2)
    state = TrajectoryState()
    assert check(model, state) == GOOD
    assert [name for name, _ in model.requests] == ["task_spec", "wording_check", "wording_check"]
    judges = [m[0]["content"] for name, m in model.requests if name == "wording_check"]
    assert "judge 1 of 2" in judges[0] and "judge 2 of 2" in judges[1]  # asked apart
    assert not state.retries


def test_one_judge_disagreeing_rephrases_with_its_objection():
    model = ScriptedModel(task_spec=[GOOD, GOOD], wording_check=[
        {"agrees": True, "problems": []}, {"agrees": False, "problems": ["the goal asks for a refund too"]},
        {"agrees": True, "problems": []}, {"agrees": True, "problems": []}])
    state = TrajectoryState()
    assert check(model, state) == GOOD
    second_phrasing = [m for name, m in model.requests if name == "task_spec"][1]
    assert "the goal asks for a refund too" in second_phrasing[-1]["content"]
    assert state.retries[WORDING_REPHRASED] == 1


def test_a_wording_the_mechanical_check_rejects_never_reaches_the_judges():
    leaky = {**GOOD, "subtasks": ["Run update_customer_status for customer 7 to closed."]}
    model = ScriptedModel(task_spec=[leaky, leaky], wording_check=[])
    assert check(model, TrajectoryState()) is None
    second_phrasing = [m for name, m in model.requests if name == "task_spec"][1]
    assert "names the tool update_customer_status" in second_phrasing[-1]["content"]


def test_a_trajectory_whose_every_task_is_dropped_is_dead_lettered_with_the_count():
    seed = SeedEvent(seed_id="s", domain="travel", settings=GenerationSettings(tasks_per_trajectory=2))
    seed.settings.difficulty_mix.easy = 1
    prepared = SeedToolset(seed=seed, toolset=toolset())
    prepared.toolset.domain_database = ""
    arguments = {"customer_id": 7, "status": "closed"}
    model = ScriptedModel(tool_arguments=[arguments] * 2, task_spec=[GOOD] * 4,
                          wording_check=[{"agrees": False, "problems": ["no"]}] * 8)
    generator = TaskGenerator.__new__(TaskGenerator)
    generator.llm = type("Clients", (), {"for_role": lambda self, role, models: model})()
    state = TrajectoryState(trajectory_id="t", toolset=prepared.toolset, settings=seed.settings)
    with pytest.raises(PermanentError, match=WORDING_MISMATCH):
        generator.plan_tasks(prepared, None, random.Random(0), model, state)
    assert state.retries[WORDING_MISMATCH] == 2 and not state.tasks
    assert state.retries[WORDING_REPHRASED] == 2  # each task was phrased twice


def test_over_a_database_a_wording_that_keeps_failing_is_built_from_the_actions_instead():
    from services.task_generator import logic
    from services.task_generator.service import WORDING_FROM_RULES
    from shared.env.dbschema import Column, DatabaseSchema, Table

    db_schema = DatabaseSchema(name="telecom", tables=[Table(name="customers", primary_key=["customer_id"], columns=[
        Column(name="customer_id", type="integer"), Column(name="status", type="text")])])
    leaky = {**GOOD, "subtasks": ["Run update_customer_status for customer 7 to closed."]}
    model = ScriptedModel(task_spec=[leaky, leaky], wording_check=[])
    state = TrajectoryState()
    state.toolset.CopyFrom(toolset())
    phrasing = TaskGenerator.checked_phrasing(None, planned(), db_schema, "telecom", False, state,
                                              ask=lambda call: call.ask(model).value,
                                              judge=lambda call: call.ask(model).value)
    assert phrasing["subtasks"] == ["Change the status to closed for the customer with customer id 7."]
    assert logic.wording_problems(phrasing["subtasks"], planned().requests, ["update_customer_status"]) == []
    assert state.retries[WORDING_FROM_RULES] == 1 and state.retries[WORDING_REPHRASED] == 1


def test_a_run_that_words_tasks_by_rules_asks_the_model_nothing():
    from shared.contracts import TaskWording
    from shared.env.dbschema import Column, DatabaseSchema, Table

    db_schema = DatabaseSchema(name="telecom", tables=[Table(name="customers", primary_key=["customer_id"], columns=[
        Column(name="customer_id", type="integer"), Column(name="status", type="text")])])
    model = ScriptedModel(task_spec=[], wording_check=[])  # any call would find its script empty and fail
    state = TrajectoryState()
    state.toolset.CopyFrom(toolset())
    state.settings.task_wording = TaskWording.TASK_WORDING_RULES
    phrasing = TaskGenerator.checked_phrasing(None, planned(), db_schema, "telecom", False, state,
                                              ask=lambda call: call.ask(model).value,
                                              judge=lambda call: call.ask(model).value)
    assert phrasing["subtasks"] == ["Change the status to closed for the customer with customer id 7."]
    assert model.requests == [] and not state.retries


def test_a_trajectory_that_cannot_be_planned_is_saved_as_its_dead_letter_and_sent_again_without_model_calls():
    """A redelivered trajectory must not pay again for a plan that failed for good."""
    from shared.contracts import DeadLetter, SeededTrajectory, Topics

    class Registry:
        def __init__(self):
            self.saved = {}

        def planned(self, trajectory_id):
            return self.saved.get(trajectory_id)

        def save_planned(self, trajectory_id, topic, message, carrier):
            self.saved[trajectory_id] = (topic, message, carrier)

    generator = TaskGenerator.__new__(TaskGenerator)
    generator.registry = Registry()
    attempts = []

    def fails_for_good(*_):
        attempts.append(1)
        raise PermanentError("context overflow")

    generator.new_trajectory = fails_for_good
    prepared = SeedToolset(seed=SeedEvent(seed_id="s", domain="travel"), toolset=toolset())
    seeded = SeededTrajectory(seed_id="s", trajectory_id="s-t0000", index=0, deadline=1e12)
    first = generator.planned_or_new_trajectory(prepared, None, seeded, None)
    again = generator.planned_or_new_trajectory(prepared, None, seeded, None)
    assert first.topic == again.topic == Topics.DEAD_LETTER and len(attempts) == 1
    assert isinstance(again.message, DeadLetter) and again.message == first.message
    assert "context overflow" in again.message.reason and again.message.trajectory_id == "s-t0000"
    assert again.message.seed_id == "s" and again.message.source_topic == Topics.TRAJECTORIES_SEEDED
