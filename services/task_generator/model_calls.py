"""task-generator's model calls: phrasing a descriptive task around its golden actions, and inventing a tool
call's arguments when there is no database to take them from."""
from __future__ import annotations


from services.task_generator import logic
from services.task_generator.planning import PlannedTask
from shared.contracts import Tool, Toolset
from shared.env.dbschema import DatabaseSchema
from shared.env.tool_spec import tool_parameters
from shared.runtime.llm import ModelCall

DIFFICULTY_WORDS = {1: "easy", 2: "medium", 3: "hard"}

TASK_SYSTEM = (
    "You write goals for people who use an assistant connected to a {domain} database. A goal is a short "
    "declarative statement of what the person wants to achieve, written in the third person, self-contained, "
    "not a question (e.g. 'The customer wants to know ... and then change ...'). Mention the concrete ids and "
    "values given. Facts the record does not show must be phrased as things to look up or confirm. Then list "
    "how to judge success and the checkpoints on the way."
)

TASK_REQUEST = (
    "Database: {db_description}\n"
    "The person's record and related records:\n{data_view}\n"
    "What must get done, in order:\n{actions}\n"
    "Difficulty: {difficulty}.{extension}\n"
    "Write the goal, the success criteria and the checkpoints."
)

TASK_SCHEMA = {
    "type": "object",
    "properties": {
        "description": {"type": "string", "minLength": 20, "maxLength": 600},
        "success_criteria": {"type": "array", "minItems": 1, "maxItems": 4,
                             "items": {"type": "string", "minLength": 5, "maxLength": 200}},
        "checkpoints": {"type": "array", "minItems": 1, "maxItems": 3,
                        "items": {"type": "string", "minLength": 5, "maxLength": 200}},
    },
    "required": ["description", "success_criteria", "checkpoints"],
}

ARGUMENTS_SYSTEM = (
    "You invent the arguments of one realistic call of a {domain} tool, as a specific user would need it: real-"
    "looking names, dates, amounts and ids, not placeholders. Answer with the arguments as JSON."
)


class TaskPhrasing(ModelCall[dict]):
    """The answer is the task's description, success criteria and checkpoints."""

    name = "task_spec"

    def __init__(self, domain: str, db_schema: DatabaseSchema | None, toolset: Toolset, planned: PlannedTask,
                 extension: bool):
        self.domain = domain
        self.db_schema = db_schema
        self.toolset = toolset
        self.planned = planned
        self.extension = extension  # it follows on from the trajectory's previous task

    def messages(self) -> list[dict]:
        steps = "\n".join(f"{i + 1}. {logic.describe_action(a, self.toolset)}"
                          for i, a in enumerate(self.planned.actions))
        request = TASK_REQUEST.format(
            db_description=self.db_schema.description if self.db_schema else "none (tools only)",
            data_view=self.planned.view.as_json() if self.db_schema else "none", actions=steps,
            difficulty=DIFFICULTY_WORDS[self.planned.difficulty],
            extension=" It follows on from the previous goal." if self.extension else "")
        return [{"role": "system", "content": TASK_SYSTEM.format(domain=self.domain)},
                {"role": "user", "content": request}]

    def schema(self) -> dict:
        return TASK_SCHEMA


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
