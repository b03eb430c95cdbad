"""The simulated-tools path: seed tools -> user questions -> tool specs per question -> complementary tools.

Every proposed spec is checked mechanically before it joins the toolset: a valid function name (rewritten to the
seed tools' naming style), a description, parameters that form a valid JSON Schema, enums only on closed sets, no
trivial helper (math, sorting, formatting). Tools with the same purpose under different names are merged (the
first one stays), and names stay unique. A weak model's proposals mostly fail these checks; every rejection and
merge is recorded with its reason.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import jsonschema

from shared.contracts import Tool
from shared.env.tool_spec import VERB_GROUPS, effect_of_seed_tool, name_words, tool_parameters, verb_group
from shared.runtime.errors import PermanentError, TransientError
from shared.runtime.llm import ModelCall

MAX_COMPLEMENTARY = 10
MIN_QUESTION_WORDS = 4
QUESTION_BATCH = 10
MAX_TOOLS_IN_PROMPT = 25
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{2,63}$")
TRIVIAL_WORDS = {"calculate_sum", "sum", "average", "mean", "max", "min", "sort", "format", "convert", "round",
                 "add_numbers", "multiply", "divide", "subtract", "uppercase", "lowercase", "concat", "parse"}
FREE_TEXT_HINTS = ("name", "description", "text", "message", "query", "title", "address", "comment", "note",
                   "email", "phone", "date", "time", "id")


@dataclass
class SpecRejection:
    name: str
    stage: str  # "question" | "complement"
    reason: str


@dataclass
class Expansion:
    tools: list[Tool]  # seed tools first, then kept proposals
    questions: list[str] = field(default_factory=list)
    discarded_questions: int = 0  # answers too short to be a user request (a bare tool name)
    proposed: int = 0
    proposed_by_stage: dict[str, int] = field(default_factory=dict)
    added_by_stage: dict[str, int] = field(default_factory=dict)
    rejected: list[SpecRejection] = field(default_factory=list)
    merged: list[tuple[str, str]] = field(default_factory=list)  # (dropped proposal, tool it duplicates)
    failed_calls: list[str] = field(default_factory=list)
    llm_calls: int = 0


# --- naming ---------------------------------------------------------------------------------------


def naming_style(names: list[str]) -> str:
    camel = sum(1 for n in names if re.search(r"[a-z][A-Z]", n) and "_" not in n)
    return "camel" if camel > len(names) / 2 else "snake"


def styled(words: list[str], style: str) -> str:
    if style == "camel":
        return words[0] + "".join(w.capitalize() for w in words[1:])
    return "_".join(words)


def _singular(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) > 3:
        return word[:-1]
    return word


def purpose_key(name: str) -> tuple[str, frozenset[str]]:
    """(canonical verb, object words) — getCustomerBill and fetch_customer_bills share one purpose."""
    words = [_singular(w) for w in name_words(name)]
    verb = words[0] if words else ""
    group = verb_group(verb)
    if group is not None:
        verb = group.verbs[0]
    return verb, frozenset(w for w in words[1:] if w not in ("by", "for", "of", "the", "a", "info", "details",
                                                                     "detail", "information", "data"))


def _param_set(tool: Tool) -> set[str]:
    props = tool_parameters(tool).get("properties", {})
    return {"".join(name_words(p)) for p in props}


def same_purpose(a: Tool, b: Tool) -> bool:
    """Near-duplicates: one purpose (verb and object) and mostly the same parameters, or the same name."""
    if "".join(name_words(a.name)) == "".join(name_words(b.name)):
        return True
    ka, kb = purpose_key(a.name), purpose_key(b.name)
    if ka[0] != kb[0] or not ka[1] or not kb[1]:
        return False
    objects = len(ka[1] & kb[1]) / len(ka[1] | kb[1])
    pa, pb = _param_set(a), _param_set(b)
    params = len(pa & pb) / len(pa | pb) if pa | pb else 1.0
    return objects >= 0.5 and params >= 0.5


# --- checking one proposed spec ---------------------------------------------------------------------


ACTION_VERBS = {v for group in VERB_GROUPS for v in group.verbs}


def spec_to_tool(spec: dict, style: str, param_style: str = "snake", verbs: set[str] = frozenset()) -> Tool:
    """A model's flat spec as a Tool with an OpenAI-style parameters schema; raises ValueError with the reason."""
    raw_name = (spec.get("name") or "").strip()
    words = name_words(raw_name)
    if not words or not NAME_RE.match(raw_name.replace(" ", "_")):
        raise ValueError(f"not a function name: {raw_name[:40]!r}")
    if len(words) < 2:
        raise ValueError(f"name says no action and object: {raw_name!r}")
    name = styled(words, style)[:64]
    if any(w in TRIVIAL_WORDS for w in words) or "_".join(words) in TRIVIAL_WORDS:
        raise ValueError("a trivial helper (math, sorting or formatting)")
    if words[0] not in ACTION_VERBS | set(verbs):  # get_/search_/create_/update_/delete_ and the seeds' own verbs
        raise ValueError(f"name does not start with an action verb: {raw_name!r}")
    description = " ".join((spec.get("description") or "").split())
    if len(description) < 12:
        raise ValueError("no real description")
    properties, required = {}, []
    for p in spec.get("parameters") or []:
        pwords = name_words(p.get("name", ""))
        if not pwords:
            raise ValueError(f"parameter without a name: {p.get('name')!r}")
        pname = styled(pwords, param_style)
        if pname in properties:
            continue
        prop: dict = {"type": p["type"], "description": " ".join((p.get("description") or "").split())}
        options = [o for o in dict.fromkeys(p.get("enum") or []) if isinstance(o, str) and o.strip()]
        # An enum belongs to a closed set (a status, a category), never to names, dates, ids or free text.
        if options and p["type"] == "string" and 2 <= len(options) <= 8 \
                and not any(h in pwords for h in FREE_TEXT_HINTS):
            prop["enum"] = options
        properties[pname] = prop
        if p.get("required"):
            required.append(pname)
    parameters = {"type": "object", "properties": properties, "required": required}
    jsonschema.Draft202012Validator.check_schema(parameters)
    return Tool(name=name, description=description[:400], parameters_json=json.dumps(parameters),
                effect=effect_of_seed_tool(name))


def tools_text(tools: list[Tool], limit: int = MAX_TOOLS_IN_PROMPT) -> str:
    lines = []
    for t in tools[:limit]:
        params = ", ".join(tool_parameters(t).get("properties", {}))
        lines.append(f"- {t.name}({params}): {t.description[:90]}")
    if len(tools) > limit:
        lines.append(f"... and {len(tools) - limit} more")
    return "\n".join(lines)


# --- the model calls ------------------------------------------------------------------------------


class SeedToolQuestions(ModelCall[list[str]]):
    """Realistic user requests that tools like the seed tools would answer."""

    name = "questions"
    temperature = 0.7
    TOKENS_PER_QUESTION = 90

    SYSTEM = (
        "You write realistic requests that users of a {domain} service send to an assistant with tools. Each request "
        "names concrete things: people, places, dates, amounts, ids. Mix short single-step requests with requests "
        "that need several steps, and write as different kinds of users (customers, staff, managers)."
    )

    def __init__(self, domain: str, seeds: list[Tool], count: int):
        self.domain = domain
        self.seeds = seeds
        self.count = count
        self.max_tokens = self.TOKENS_PER_QUESTION * count

    def messages(self) -> list[dict]:
        return [{"role": "system", "content": self.SYSTEM.format(domain=self.domain)},
                {"role": "user", "content": f"Tools the service already has:\n{tools_text(self.seeds)}\n\nWrite "
                                            f"{self.count} different user requests that such tools (or close "
                                            "relatives of them) would answer."}]

    def schema(self) -> dict:
        return {
            "type": "object",
            "properties": {"questions": {"type": "array", "minItems": self.count, "maxItems": self.count,
                                         "items": {"type": "string"}}},
            "required": ["questions"],
        }

    def parse(self, data: dict) -> list[str]:
        return data["questions"]


PARAM_TYPES = ["string", "integer", "number", "boolean"]

SPEC_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "description": {"type": "string"},
        "parameters": {"type": "array", "maxItems": 6, "items": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "type": {"type": "string", "enum": PARAM_TYPES},
                "description": {"type": "string"},
                "required": {"type": "boolean"},
                "enum": {"type": "array", "maxItems": 8, "items": {"type": "string"}},
            },
            "required": ["name", "type", "description", "required"],
        }},
    },
    "required": ["name", "description", "parameters"],
}


class ToolSpecsForQuestion(ModelCall[list[dict]]):
    """The functions (flat specs, checked by spec_to_tool) that solve one user request."""

    name = "tool_specs"
    temperature = 0.7
    max_tokens = 500

    SYSTEM = (
        "You specify the functions an assistant needs to solve a user's request in a {domain} service. Give each "
        "function a clear name in the style of the existing tools, a description of what it does and returns, and "
        "typed parameters. Break the request into functions that chain: a later function takes an id that an "
        "earlier one returns. Use an enum only for a small closed set of values (a status, a category), never for "
        "names or free text."
    )

    def __init__(self, domain: str, question: str, convention_examples: list[str]):
        self.domain = domain
        self.question = question
        self.convention_examples = convention_examples

    def messages(self) -> list[dict]:
        return [{"role": "system", "content": self.SYSTEM.format(domain=self.domain)},
                {"role": "user", "content": f"Existing tool names (follow their naming style): "
                                            f"{', '.join(self.convention_examples)}\n"
                                            f"User request: {self.question}\nWhich functions solve it?"}]

    def schema(self) -> dict:
        return {"type": "object",
                "properties": {"tools": {"type": "array", "minItems": 1, "maxItems": 3, "items": SPEC_SCHEMA}},
                "required": ["tools"]}

    def parse(self, data: dict) -> list[dict]:
        return data["tools"]


class ComplementaryTools(ModelCall[list[dict]]):
    """Tools (flat specs) that fill the gaps of a toolset."""

    name = "complementary_tools"
    temperature = 0.7
    max_tokens = 900
    TOOLS_SHOWN = 40

    SYSTEM = (
        "You extend a toolset of a {domain} service. Find what it cannot do yet (missing operations on its entities, "
        "missing links between entities, missing workflows) and propose up to ten new tools that fill those gaps, in "
        "the same naming and parameter style. Do not propose math, sorting or formatting helpers, or tools that only "
        "repeat an existing tool with another parameter."
    )

    def __init__(self, domain: str, tools: list[Tool]):
        self.domain = domain
        self.tools = tools

    def messages(self) -> list[dict]:
        return [{"role": "system", "content": self.SYSTEM.format(domain=self.domain)},
                {"role": "user", "content": f"Current toolset:\n{tools_text(self.tools, self.TOOLS_SHOWN)}\n\n"
                                            "Propose the complementary tools."}]

    def schema(self) -> dict:
        return {"type": "object",
                "properties": {"tools": {"type": "array", "maxItems": MAX_COMPLEMENTARY, "items": SPEC_SCHEMA}},
                "required": ["tools"]}

    def parse(self, data: dict) -> list[dict]:
        return data["tools"]


# --- the expansion --------------------------------------------------------------------------------


class _Toolset:
    """Seed tools plus accepted proposals, merging near-duplicates and keeping names unique."""

    def __init__(self, seeds: list[Tool], expansion: Expansion):
        self.tools = list(seeds)
        self.expansion = expansion

    def offer(self, tool: Tool, stage: str) -> None:
        for existing in self.tools:
            if same_purpose(tool, existing):
                self.expansion.merged.append((tool.name, existing.name))
                return
        self.tools.append(tool)
        self.expansion.added_by_stage[stage] = self.expansion.added_by_stage.get(stage, 0) + 1


def expand_seed_tools(llm, domain: str, seeds: list[Tool], *, questions: int = 20,
                      expand_questions: int = 0) -> Expansion:
    """questions: how many to ask for (20-30); expand_questions: turn only the first N into specs (0: all)."""
    expansion = Expansion(tools=[])
    style = naming_style([t.name for t in seeds])
    param_style = naming_style([p for t in seeds for p in tool_parameters(t).get("properties", {})])
    verbs = {name_words(t.name)[0] for t in seeds if name_words(t.name)}
    toolset = _Toolset(seeds, expansion)
    examples = [t.name for t in seeds[:6]]

    def ask(call: ModelCall) -> list:
        expansion.llm_calls += 1
        try:
            return call.ask(llm).value
        except (PermanentError, TransientError) as e:  # a lost call costs its proposals, not the toolset
            expansion.failed_calls.append(f"{call.name}: {e}")
            return []

    count = min(max(questions, 20), 30)
    # In batches: a small model's long answer is often cut off at the token limit, which loses all of it.
    answers: list[str] = []
    for batch in range(-(-count // QUESTION_BATCH)):
        size = min(QUESTION_BATCH, count - batch * QUESTION_BATCH)
        answers += ask(SeedToolQuestions(domain, seeds, size))
    seen: set[str] = set()
    for q in answers:
        text = " ".join(q.split())
        if len(text.split()) < MIN_QUESTION_WORDS:  # a bare tool name or a fragment is no user request
            expansion.discarded_questions += 1
        elif text.lower() not in seen:
            seen.add(text.lower())
            expansion.questions.append(text)
    chosen = expansion.questions[:expand_questions] if expand_questions else expansion.questions
    for question in chosen:
        _take(ask(ToolSpecsForQuestion(domain, question, examples)), "question", (style, param_style, verbs),
              toolset, expansion)
    _take(ask(ComplementaryTools(domain, toolset.tools)), "complement", (style, param_style, verbs), toolset, expansion)
    expansion.tools = toolset.tools
    return expansion


def _take(specs: list[dict], stage: str, styles: tuple[str, str, set[str]], toolset: _Toolset,
          expansion: Expansion) -> None:
    for spec in specs:
        expansion.proposed += 1
        expansion.proposed_by_stage[stage] = expansion.proposed_by_stage.get(stage, 0) + 1
        try:
            tool = spec_to_tool(spec, *styles)
        except (ValueError, KeyError, jsonschema.SchemaError) as e:
            expansion.rejected.append(SpecRejection(str(spec.get("name", ""))[:64], stage, str(e)))
            continue
        toolset.offer(tool, stage)
