"""Prompt and answer schema for phrasing a descriptive task around its golden actions."""
from __future__ import annotations

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
