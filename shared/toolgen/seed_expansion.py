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

from shared.toolgen.prompts import (COMPLEMENT_SCHEMA, COMPLEMENT_SYSTEM, QUESTIONS_SCHEMA, QUESTIONS_SYSTEM,
                                         TOOL_SPECS_SCHEMA, TOOL_SPECS_SYSTEM, complement_request, questions_request,
                                         tool_specs_request)
from shared.contracts import Tool
from shared.env.tool_spec import VERB_GROUPS, effect_of_seed_tool, name_words, tool_parameters, verb_group
from shared.runtime.errors import PermanentError, TransientError

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

    def ask(system: str, user: str, schema: dict, name: str, max_tokens: int):
        expansion.llm_calls += 1
        try:
            return llm.chat([{"role": "system", "content": system.format(domain=domain)},
                             {"role": "user", "content": user}],
                            schema=schema, schema_name=name, max_tokens=max_tokens, temperature=0.7).data
        except (PermanentError, TransientError) as e:  # a lost call costs its proposals, not the toolset
            expansion.failed_calls.append(f"{name}: {e}")
            return None

    count = min(max(questions, 20), 30)
    # In batches: a small model's long answer is often cut off at the token limit, which loses all of it.
    answers: list[str] = []
    for batch in range(-(-count // QUESTION_BATCH)):
        size = min(QUESTION_BATCH, count - batch * QUESTION_BATCH)
        schema = json.loads(json.dumps(QUESTIONS_SCHEMA))
        schema["properties"]["questions"].update(minItems=size, maxItems=size)
        answer = ask(QUESTIONS_SYSTEM, questions_request(tools_text(seeds), size), schema, "questions", 90 * size)
        answers += (answer or {}).get("questions", [])
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
        answer = ask(TOOL_SPECS_SYSTEM, tool_specs_request(question, examples), TOOL_SPECS_SCHEMA, "tool_specs", 500)
        _take(answer, "question", (style, param_style, verbs), toolset, expansion)
    answer = ask(COMPLEMENT_SYSTEM, complement_request(tools_text(toolset.tools, 40)), COMPLEMENT_SCHEMA,
                 "complementary_tools", 900)
    _take(answer, "complement", (style, param_style, verbs), toolset, expansion, limit=MAX_COMPLEMENTARY)
    expansion.tools = toolset.tools
    return expansion


def _take(answer, stage: str, styles: tuple[str, str, set[str]], toolset: _Toolset, expansion: Expansion, limit: int = 0) -> None:
    specs = (answer or {}).get("tools", [])
    if limit:
        specs = specs[:limit]
    for spec in specs:
        expansion.proposed += 1
        expansion.proposed_by_stage[stage] = expansion.proposed_by_stage.get(stage, 0) + 1
        try:
            tool = spec_to_tool(spec, *styles)
        except (ValueError, KeyError, jsonschema.SchemaError) as e:
            expansion.rejected.append(SpecRejection(str(spec.get("name", ""))[:64], stage, str(e)))
            continue
        toolset.offer(tool, stage)
