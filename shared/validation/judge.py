"""The rubric judge (the paper's policy): each rubric item gets a category, and the trajectory is invalid exactly when
a Critical item is unsatisfied. That rule is applied here to the items; the model's own valid/invalid label and its
reasoning are kept as record only.

The judge sees facts, not conclusions: the goal, the rubric and the conversation with each call's result in brief.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from shared.contracts import RubricCategory, RubricJudgement, TrajectoryState
from shared.env import outcomes
from shared.env.trajectory import record_usage
from shared.runtime.llm import LLMClient, ModelCall

CATEGORIES = {"Critical": RubricCategory.RUBRIC_CATEGORY_CRITICAL,
              "Structural": RubricCategory.RUBRIC_CATEGORY_STRUCTURAL,
              "NonCritical": RubricCategory.RUBRIC_CATEGORY_NON_CRITICAL,
              "InvalidRubric": RubricCategory.RUBRIC_CATEGORY_INVALID_RUBRIC}

JUDGE_SYSTEM = (
    "You check whether an assistant achieved a user's goal, using the goal's rubric as guidance, not law. "
    "First give every rubric item a category: Critical (a requirement the goal itself states), Structural (tool "
    "order, dependencies, placeholders: equivalent sequences are fine), NonCritical (format or style the goal did "
    "not ask for) or InvalidRubric (adds goals or cannot be verified). Then say whether each item was satisfied, "
    "judging from the tool results and the assistant's words in the conversation. "
    "Claims must be backed by tool results; a tool error reported honestly with a sensible next step is fine. "
    "The judgment is invalid only if a Critical item failed; say which in the reasoning."
)

RESULT_BRIEF = 300  # characters of a tool result the judge reads inline
TRANSCRIPT_LIMIT = 8000


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
    """The items the judge reads. Expected tool use is not among them: execution settles it (tool_use_judgements)."""
    items = []
    for task in state.tasks:
        items += list(task.rubric.success_criteria) + list(task.rubric.checkpoints)
    return items


def tool_use_judgements(state: TrajectoryState) -> list[RubricJudgement]:
    """Expected tool use is Structural, and whether it happened is re-derived from the outcomes of the calls."""
    calls = outcomes.successful_calls(state)
    return [RubricJudgement(item=pattern, category=RubricCategory.RUBRIC_CATEGORY_STRUCTURAL,
                            satisfied=outcomes.subtask_done(state, task, sub, calls))
            for task in state.tasks for pattern, sub in zip(task.rubric.expected_tool_use, task.subtasks)]


def _brief(text: str) -> str:
    return text if len(text) <= RESULT_BRIEF else text[:RESULT_BRIEF] + " …"


def transcript(state: TrajectoryState, limit: int = TRANSCRIPT_LIMIT) -> str:
    """The conversation after the system prompt: what each side said, which calls ran and what each returned."""
    results = {r.call_id: r for r in state.tool_results}
    lines = []
    for m in state.messages[1:]:
        if m.role == "tool":
            r = results.get(m.tool_call_id)
            outcome = f"error: {r.error}" if r is not None and not r.ok else f"returned {_brief(m.content)}"
            lines.append(f"tool {m.name or m.tool_call_id} {outcome}")
            continue
        if m.content:
            lines.append(f"{m.role}: {m.content}")
        if m.tool_calls:
            lines.append("assistant calls: " + "; ".join(f"{c.function.name}({c.function.arguments})"
                                                         for c in m.tool_calls))
    text = "\n".join(lines)
    return text if len(text) <= limit else text[-limit:]


def judge_request(state: TrajectoryState, items: list[str]) -> str:
    goals = "\n".join(f"- {t.description}" for t in state.tasks)
    numbered = "\n".join(f"{i + 1}. {item}" for i, item in enumerate(items))
    return f"Goal:\n{goals}\n\nRubric items:\n{numbered}\n\nConversation:\n{transcript(state)}"


def to_judgements(items: list[str], answer: dict) -> list[RubricJudgement]:
    return [RubricJudgement(item=item, category=CATEGORIES[a["category"]], satisfied=bool(a["satisfied"]))
            for item, a in zip(items, answer["items"])]


def critical_failures(judgements: list[RubricJudgement]) -> list[str]:
    return [j.item for j in judgements if j.category == RubricCategory.RUBRIC_CATEGORY_CRITICAL and not j.satisfied]


@dataclass
class Judgment:
    rubric: list[RubricJudgement]  # the model's category and verdict per item, in the items' order
    label: str  # the model's own "valid" | "invalid": a record, not the decision
    reasoning: str

    @property
    def critical_failures(self) -> list[str]:
        return critical_failures(self.rubric)

    @property
    def decision(self) -> str:
        """The policy's reading of the items: invalid exactly when a Critical item is unsatisfied."""
        return "invalid" if self.critical_failures else "valid"


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


# Asks the judge about a trajectory's rubric items (never empty).
JudgeCall = Callable[[TrajectoryState, list[str]], Judgment]


def model_judge(client_for: Callable[[TrajectoryState], LLMClient]) -> JudgeCall:
    """A JudgeCall asking the model `client_for` picks for each trajectory, counting its usage on the trajectory."""
    def ask(state: TrajectoryState, items: list[str]) -> Judgment:
        answer = Judge(state, items).ask(client_for(state))
        record_usage(state, answer.chat)
        return answer.value
    return ask
