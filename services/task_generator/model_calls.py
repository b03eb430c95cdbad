"""task-generator's model calls: phrasing a descriptive task and its subtasks around the golden actions, two
judges checking that wording against them, and inventing a tool call's arguments when there is no database."""
from __future__ import annotations

from services.task_generator import logic
from services.task_generator.planning import PlannedTask
from shared.contracts import Tool
from shared.env.dbschema import DatabaseSchema
from shared.env.tool_spec import tool_parameters
from shared.runtime.llm import ModelCall

TASK_SYSTEM = (
    "You write goals for people who use an assistant connected to a {domain} database. A goal is a short "
    "declarative statement of what the person wants to achieve, written in the third person, self-contained, "
    "not a question (e.g. 'The customer wants to know ... and then change ...'). Then write one subtask per request, "
    "in order: what the person says they want, in their own plain words, with the values they give and naming the "
    "record the way the request says they mean it. A person names no tools and no column names, and never states "
    "an id the assistant finds on its own; they ask for exactly what the request does, nothing more. Then list how "
    "to judge success and the checkpoints on the way."
)

TASK_REQUEST = (
    "Database: {db_description}\n"
    "The records the task is about:\n{records}\n"
    "Requests, in order:\n{steps}\n"
    "Difficulty: {difficulty}.{extension}{feedback}\n"
    "Write the goal, exactly {n} subtasks, the success criteria and the checkpoints."
)

DIFFICULTY_WORDS = {1: "easy", 2: "medium", 3: "hard"}


def task_schema(n_subtasks: int) -> dict:
    return {
        "type": "object",
        "properties": {
            "description": {"type": "string", "minLength": 20, "maxLength": 600},
            "subtasks": {"type": "array", "minItems": n_subtasks, "maxItems": n_subtasks,
                         "items": {"type": "string", "minLength": 5, "maxLength": 300}},
            "success_criteria": {"type": "array", "minItems": 1, "maxItems": 4,
                                 "items": {"type": "string", "minLength": 5, "maxLength": 200}},
            "checkpoints": {"type": "array", "minItems": 1, "maxItems": 3,
                            "items": {"type": "string", "minLength": 5, "maxLength": 200}},
        },
        "required": ["description", "subtasks", "success_criteria", "checkpoints"],
    }


class TaskPhrasing(ModelCall[dict]):
    """The answer is the task's description, one subtask per request, success criteria and checkpoints."""

    name = "task_spec"

    def __init__(self, domain: str, db_schema: DatabaseSchema | None, planned: PlannedTask, extension: bool,
                 problems: list[str] | None = None):
        self.domain = domain
        self.db_schema = db_schema
        self.planned = planned
        self.extension = extension  # it follows on from the trajectory's previous task
        self.problems = problems or []  # what was wrong with the last wording of this task

    def messages(self) -> list[dict]:
        feedback = ("\nA previous wording was rejected: " + "; ".join(self.problems) + ". Fix that."
                    if self.problems else "")
        request = TASK_REQUEST.format(
            db_description=self.db_schema.description if self.db_schema else "none (tools only)",
            records=self.planned.records_json() if self.planned.tree else "none",
            steps=logic.describe_requests(self.planned, self.db_schema),
            difficulty=DIFFICULTY_WORDS[self.planned.difficulty],
            extension=" It follows on from the previous goal." if self.extension else "", feedback=feedback,
            n=len(self.planned.requests))
        return [{"role": "system", "content": TASK_SYSTEM.format(domain=self.domain)},
                {"role": "user", "content": request}]

    def schema(self) -> dict:
        return task_schema(len(self.planned.requests))


WORDING_SYSTEM = (
    "You check generated training tasks before they are used (judge {judge} of 2, deciding on your own). You get "
    "the requests a simulated person will make, with their exact values, and the wording that person will follow. "
    "Agree only if the goal and the subtasks ask for exactly what the requests do: every request asked for, in "
    "order, with the same values and the same record; nothing asked that no request does; no tool names, column "
    "names or ids the assistant finds on its own. List each problem you find."
)

WORDING_REQUEST = "Requests:\n{steps}\n\nGoal: {description}\nSubtasks:\n{subtasks}"

WORDING_SCHEMA = {
    "type": "object",
    "properties": {
        "agrees": {"type": "boolean"},
        "problems": {"type": "array", "maxItems": 5, "items": {"type": "string", "maxLength": 200}},
    },
    "required": ["agrees", "problems"],
}


class WordingCheck(ModelCall[dict]):
    """A judge's verdict on whether a task's wording asks for exactly what its golden actions do (DySQL-Bench's
    verification before use); the task is kept only when two judges, asked apart, both agree."""

    name = "wording_check"
    temperature = 0.7  # two judges that sample apart, not one answer twice

    def __init__(self, judge: int, planned: PlannedTask, phrasing: dict, db_schema: DatabaseSchema | None = None):
        self.judge = judge
        self.planned = planned
        self.phrasing = phrasing
        self.db_schema = db_schema

    def messages(self) -> list[dict]:
        subtasks = "\n".join(f"{i + 1}. {s}" for i, s in enumerate(self.phrasing["subtasks"]))
        request = WORDING_REQUEST.format(steps=logic.describe_requests(self.planned, self.db_schema),
                                         description=self.phrasing["description"], subtasks=subtasks)
        return [{"role": "system", "content": WORDING_SYSTEM.format(judge=self.judge)},
                {"role": "user", "content": request}]

    def schema(self) -> dict:
        return WORDING_SCHEMA


ARGUMENTS_SYSTEM = (
    "You invent the arguments of one realistic call of a {domain} tool, as a specific user would need it: real-"
    "looking names, dates, amounts and ids, not placeholders. Answer with the arguments as JSON."
)


class ToolArguments(ModelCall[dict]):
    """The answer is one call's arguments, constrained to the tool's parameter schema."""

    name = "tool_arguments"

    def __init__(self, domain: str, tool: Tool):
        self.domain = domain
        self.tool = tool

    def messages(self) -> list[dict]:
        return [{"role": "system", "content": ARGUMENTS_SYSTEM.format(domain=self.domain)},
                {"role": "user", "content": f"Tool {self.tool.name}: {self.tool.description}"}]

    def schema(self) -> dict:
        return tool_parameters(self.tool)
