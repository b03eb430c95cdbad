"""The agent's model call: one step, either tool calls or a reply.

The model answers one JSON object per step: tool calls (each constrained to one tool's own argument schema) or a
reply. Any server with JSON-schema decoding serves it the same way (vLLM, llama.cpp, OpenAI), and the dataset still
records standard OpenAI `tool_calls`.
"""
from __future__ import annotations


from shared.contracts import Toolset, TrajectoryState
from shared.env.tool_spec import tool_parameters
from shared.env.trajectory import openai_messages
from shared.runtime.llm import ModelCall

MAX_CALLS_PER_STEP = 3
REPLY = {"type": "string", "minLength": 1, "maxLength": 800}


def tool_catalogue(toolset: Toolset) -> str:
    """The tools as the model reads them: structured output carries names and argument types, not meaning."""
    lines = []
    for t in toolset.tools:
        params = tool_parameters(t).get("properties", {})
        signature = ", ".join(f"{name}: {spec.get('type', 'any')}" for name, spec in params.items())
        lines.append(f"- {t.name}({signature}): {t.description}")
    return ("Answer with JSON: to use tools, list them in tool_calls; to answer the user, leave tool_calls empty "
            "and write the reply.\nTools:\n" + "\n".join(lines))


class AgentStep(ModelCall[dict]):
    """The answer is the step's decision: {"tool_calls": [{"name", "arguments"}...], "reply"}."""

    name = "agent_step"
    temperature = 0.2  # tool calls want precision more than variety; the user simulator supplies the variety

    def __init__(self, state: TrajectoryState, allow_tools: bool):
        self.state = state
        self.allow_tools = allow_tools

    def messages(self) -> list[dict]:
        """The conversation: the stored system prompt plus the tool catalogue (which the state does not keep)."""
        messages = openai_messages(self.state)
        catalogue = tool_catalogue(self.state.toolset)
        if messages and messages[0]["role"] == "system":
            messages[0] = {"role": "system", "content": messages[0]["content"] + "\n\n" + catalogue}
        else:
            messages.insert(0, {"role": "system", "content": catalogue})
        return messages

    def schema(self) -> dict:
        if not self.allow_tools:  # no tool_calls field at all: llama.cpp's grammar does not enforce maxItems 0
            return {"type": "object", "properties": {"reply": REPLY}, "required": ["reply"],
                    "additionalProperties": False}
        options = [
            {"type": "object",
             "properties": {"name": {"const": t.name}, "arguments": tool_parameters(t)},
             "required": ["name", "arguments"]}
            for t in self.state.toolset.tools
        ]
        return {
            "type": "object",
            "properties": {
                "tool_calls": {"type": "array", "maxItems": MAX_CALLS_PER_STEP, "items": {"anyOf": options}},
                "reply": REPLY,
            },
            "required": ["tool_calls", "reply"],
        }
