"""The rubric judge (the paper's policy): each rubric item gets a category; only a failed Critical item rejects."""
from __future__ import annotations

from dataclasses import dataclass

from shared.contracts import RubricCategory, RubricJudgement, TrajectoryState
from shared.runtime.llm import ModelCall

CATEGORIES = {"Critical": RubricCategory.RUBRIC_CATEGORY_CRITICAL,
              "Structural": RubricCategory.RUBRIC_CATEGORY_STRUCTURAL,
              "NonCritical": RubricCategory.RUBRIC_CATEGORY_NON_CRITICAL,
              "InvalidRubric": RubricCategory.RUBRIC_CATEGORY_INVALID_RUBRIC}

JUDGE_SYSTEM = (
    "You check whether an assistant achieved a user's goal, using the goal's rubric as guidance, not law. "
    "First give every rubric item a category: Critical (a requirement the goal itself states), Structural (tool "
    "order, dependencies, placeholders: equivalent sequences are fine), NonCritical (format or style the goal did "
    "not ask for) or InvalidRubric (adds goals or cannot be verified). Then say whether each item was satisfied. "
    "Claims must be backed by tool results; a tool error reported honestly with a sensible next step is fine. "
    "The judgment is invalid only if a Critical item failed; say which in the reasoning."
)


def judge_schema(n_items: int) -> dict:
    return {
        "type": "object",
        "properties": {
            "items": {"type": "array", "minItems": n_items, "maxItems": n_items,
                      "items": {"type": "object",
                                "properties": {"category": {"type": "string", "enum": list(CATEGORIES)},
                                               "satisfied": {"type": "boolean"}},
                                "required": ["category", "satisfied"]}},
            "judgment": {"type": "string", "enum": ["valid", "invalid"]},
            "reasoning": {"type": "string", "maxLength": 600},
        },
        "required": ["items", "judgment", "reasoning"],
    }


def rubric_items(state: TrajectoryState) -> list[str]:
    """The items the judge reads. Expected tool use is not among them: execution already settled it."""
    items = []
    for task in state.tasks:
        items += list(task.rubric.success_criteria) + list(task.rubric.checkpoints)
    return items


def tool_use_judgements(state: TrajectoryState) -> list[RubricJudgement]:
    """Expected tool use is Structural, and whether it happened is a fact the simulator's state already holds."""
    out = []
    for task in state.tasks:
        for pattern, sub in zip(task.rubric.expected_tool_use, task.subtasks):
            out.append(RubricJudgement(item=pattern, category=RubricCategory.RUBRIC_CATEGORY_STRUCTURAL,
                                       satisfied=sub.satisfied))
    return out


def execution_evidence(state: TrajectoryState) -> str:
    done = [s.description for t in state.tasks for s in t.subtasks if s.satisfied]
    errors = sum(1 for r in state.tool_results if not r.ok)
    return ("Checked by execution: every subtask below was done by a successful tool call, and every number the "
            f"assistant stated appears in a tool result.\n" + "\n".join(f"- {d}" for d in done)
            + (f"\n{errors} tool call(s) returned an error." if errors else ""))


def transcript(state: TrajectoryState, limit: int = 6000) -> str:
    lines = []
    for m in state.messages[1:]:
        if m.tool_calls:
            lines.append("assistant calls: " + "; ".join(f"{c.function.name}({c.function.arguments})" for c in m.tool_calls))
        elif m.content:
            lines.append(f"{m.role}: {m.content}")
    text = "\n".join(lines)
    return text if len(text) <= limit else text[-limit:]


def judge_request(state: TrajectoryState, items: list[str]) -> str:
    goals = "\n".join(f"- {t.description}" for t in state.tasks)
    numbered = "\n".join(f"{i + 1}. {item}" for i, item in enumerate(items))
    return (f"Goal:\n{goals}\n\nRubric items:\n{numbered}\n\n{execution_evidence(state)}\n\n"
            f"Conversation:\n{transcript(state)}")


def to_judgements(items: list[str], answer: dict) -> list[RubricJudgement]:
    return [RubricJudgement(item=item, category=CATEGORIES[a["category"]], satisfied=bool(a["satisfied"]))
            for item, a in zip(items, answer["items"])]


def critical_failures(judgements: list[RubricJudgement]) -> list[str]:
    return [j.item for j in judgements if j.category == RubricCategory.RUBRIC_CATEGORY_CRITICAL and not j.satisfied]


@dataclass
class Judgment:
    rubric: list[RubricJudgement]  # the model's category and verdict per item, in the items' order
    judgment: str  # "valid" | "invalid"
    reasoning: str


class Judge(ModelCall[Judgment]):
    name = "judge_verdict"
    temperature = 0.0

    def __init__(self, state: TrajectoryState, items: list[str]):
        self.state = state
        self.items = items

    def messages(self) -> list[dict]:
        return [{"role": "system", "content": JUDGE_SYSTEM},
                {"role": "user", "content": judge_request(self.state, self.items)}]

    def schema(self) -> dict:
        return judge_schema(len(self.items))

    def parse(self, data: dict) -> Judgment:
        return Judgment(to_judgements(self.items, data), data["judgment"], data["reasoning"])
