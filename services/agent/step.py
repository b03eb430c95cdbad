"""The agent's model call: one step, which is tool calls or a reply, never both.

Two ways to ask, chosen per endpoint (`tool_calling`):
- json_schema: the model answers one JSON object, either {"tool_calls": [...]} (each call constrained to one tool's
  own argument schema) or {"reply": "..."}; any server with JSON-schema decoding serves it (llama.cpp, vLLM).
- native: the tools go as `tools=` and the server's own `tool_calls` come back (vLLM with a tool-call parser,
  OpenAI); a call naming an unknown tool or carrying arguments its schema refuses is asked again.
Either way the decision is the same dict, and the dataset records standard OpenAI `tool_calls`.
"""
from __future__ import annotations

import json

import jsonschema

from shared.contracts import Toolset, TrajectoryState
from shared.env.tool_spec import tool_parameters
from shared.env.trajectory import openai_messages, openai_tools, tool_by_name
from shared.runtime.llm import Answer, ChatResult, InvalidModelOutput, LLMClient, ModelCall, Usage

MAX_CALLS_PER_STEP = 3
REPLY = {"type": "string", "minLength": 1, "maxLength": 800}
REPLY_STEP = {"type": "object", "properties": {"reply": REPLY}, "required": ["reply"], "additionalProperties": False}

JSON_STEP_RULES = ('Answer with one JSON object, one of two kinds: {"tool_calls": [{"name": ..., "arguments": '
                   '{...}}]} to use tools, or {"reply": "..."} to answer the user. Never both: call the tools first, '
                   "and reply once their results are in.")
REPLY_ONLY = "You have used the tool steps for this turn: answer the user now with what you have."


def tool_catalogue(toolset: Toolset) -> str:
    """The tools as the model reads them: structured output carries names and argument types, not meaning."""
    lines = []
    for t in toolset.tools:
        params = tool_parameters(t).get("properties", {})
        signature = ", ".join(f"{name}: {spec.get('type', 'any')}" for name, spec in params.items())
        lines.append(f"- {t.name}({signature}): {t.description}")
    return "Tools:\n" + "\n".join(lines)


def step_schema(toolset: Toolset, allow_tools: bool) -> dict:
    """Either tool calls (at least one) or a reply; closed objects, so an answer with both matches neither."""
    if not allow_tools:
        return REPLY_STEP
    options = [
        {"type": "object",
         "properties": {"name": {"const": t.name}, "arguments": tool_parameters(t)},
         "required": ["name", "arguments"], "additionalProperties": False}
        for t in toolset.tools
    ]
    calls = {"type": "object",
             "properties": {"tool_calls": {"type": "array", "minItems": 1, "maxItems": MAX_CALLS_PER_STEP,
                                           "items": {"anyOf": options}}},
             "required": ["tool_calls"], "additionalProperties": False}
    return {"anyOf": [calls, REPLY_STEP]}


def native_decision(chat: ChatResult, toolset: Toolset, allow_tools: bool) -> dict:
    """The server's tool calls (checked as the JSON step's schema would have constrained them), else its text."""
    if chat.tool_calls and allow_tools:
        calls = []
        for call in chat.tool_calls[:MAX_CALLS_PER_STEP]:
            name = call["function"]["name"]
            tool = tool_by_name(toolset, name)
            if tool is None:
                raise InvalidModelOutput(f"call to unknown tool {name!r}")
            try:
                arguments = json.loads(call["function"]["arguments"] or "{}")
                jsonschema.validate(arguments, tool_parameters(tool))
            except json.JSONDecodeError as e:
                raise InvalidModelOutput(f"{name}: arguments are not JSON ({e.msg})") from e
            except jsonschema.ValidationError as e:
                raise InvalidModelOutput(f"{name}: arguments do not match its schema: {e.message}") from e
            calls.append({"name": name, "arguments": arguments})
        return {"tool_calls": calls}
    reply = chat.content.strip()
    if not reply:
        raise InvalidModelOutput("neither a tool call nor a reply")
    return {"reply": reply[:REPLY["maxLength"]]}


class AgentStep(ModelCall[dict]):
    """The answer is the step's decision: {"tool_calls": [{"name", "arguments"}...]} or {"reply": text}.

    `correction` says why the previous answer to this same step was not used; it goes to the model with this
    request only, never into the conversation."""

    name = "agent_step"
    temperature = 0.2  # tool calls want precision more than variety; the user simulator supplies the variety

    def __init__(self, state: TrajectoryState, allow_tools: bool, correction: str = ""):
        self.state = state
        self.allow_tools = allow_tools
        self.correction = correction

    def ask(self, llm: LLMClient) -> Answer[dict]:
        if llm.endpoint.tool_calling == "native":
            return self.ask_native(llm)
        return super().ask(llm)

    def messages(self) -> list[dict]:
        """The conversation, its system prompt extended with the tool catalogue and how to answer in JSON."""
        rules = JSON_STEP_RULES if self.allow_tools else REPLY_ONLY
        return self._with_system_notes([tool_catalogue(self.state.toolset), rules])

    def schema(self) -> dict:
        return step_schema(self.state.toolset, self.allow_tools)

    def ask_native(self, llm: LLMClient) -> Answer[dict]:
        """Native tool calling; an unusable answer is asked again, as an invalid JSON answer would be."""
        notes = [] if self.allow_tools else [REPLY_ONLY]
        messages = self._with_system_notes(notes)
        usage, calls = Usage(), 0
        attempts = max(1, llm.config.invalid_json_attempts)
        for _ in range(attempts):
            chat = llm.chat(messages, tools=openai_tools(self.state.toolset),
                            tool_choice="auto" if self.allow_tools else "none",
                            temperature=self.temperature, max_tokens=self.max_tokens)
            usage.add(chat.usage)
            calls += chat.calls
            chat.usage, chat.calls = usage, calls
            try:
                return Answer(native_decision(chat, self.state.toolset, self.allow_tools), chat)
            except InvalidModelOutput as e:
                error = e
        raise InvalidModelOutput(f"agent: no usable step after {attempts} answers: {error}")

    def _with_system_notes(self, notes: list[str]) -> list[dict]:
        """The stored conversation with `notes` (and any correction) added to the system prompt, which the state
        does not keep: a note placed later in the conversation would break some chat templates."""
        messages = openai_messages(self.state)
        extra = "\n\n".join(n for n in notes + [self.correction] if n)
        if not extra:
            return messages
        if messages and messages[0]["role"] == "system":
            messages[0] = {"role": "system", "content": messages[0]["content"] + "\n\n" + extra}
        else:
            messages.insert(0, {"role": "system", "content": extra})
        return messages
