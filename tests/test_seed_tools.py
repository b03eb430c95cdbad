import json

import pytest

from shared.contracts import EffectKind, SqlBinding, Tool, ToolEffect
from shared.data.seed_tools import load_seed_tools
from shared.env.tool_spec import effect_of_seed_tool, mutates, tool_parameters

READ, INSERT, UPDATE, DELETE = (EffectKind.EFFECT_KIND_READ, EffectKind.EFFECT_KIND_INSERT,
                                EffectKind.EFFECT_KIND_UPDATE, EffectKind.EFFECT_KIND_DELETE)


def test_seal_tools_and_openai_specs_load_as_tools(tmp_path):
    seal = {"api_name": "getPlanUsage", "api_description": "Usage of a mobile plan", "field": "Telecommunications/x",
            "parameters": {"phone_number": {"type": "str", "description": "The line"}, "months": {"type": "int"}},
            "required": ["phone_number", "unknown"], "responses": {"usage": {"type": "float"}}}
    other = dict(seal, api_name="getScore", field="Sports/Basketball")
    path = tmp_path / "seal.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in (seal, other)))
    [tool] = load_seed_tools(path, field="Telecommunications")
    params = tool_parameters(tool)
    assert tool.name == "getPlanUsage"
    assert params["properties"]["months"] == {"type": "integer"}
    assert params["required"] == ["phone_number"]  # names that are not parameters are dropped
    assert tool.effect == ToolEffect(kind=READ, single_row=True)

    spec = tmp_path / "openai.json"
    spec.write_text(json.dumps([{"type": "function", "function": {"name": "cancel_order",
                                                                  "parameters": {"type": "object"}}}]))
    [loaded] = load_seed_tools(spec)
    assert loaded.name == "cancel_order" and loaded.effect.kind == DELETE


@pytest.mark.parametrize("name,kind,single_row", [
    ("getCustomerBill", READ, True), ("search_hotels", READ, False), ("findRestaurants", READ, False),
    ("bookRoom", INSERT, True), ("reschedule_appointment", UPDATE, True), ("cancelSubscription", DELETE, True),
    ("estimateRisk", EffectKind.EFFECT_KIND_UNSPECIFIED, False), ("", EffectKind.EFFECT_KIND_UNSPECIFIED, False),
])
def test_a_seed_tools_effect_is_read_from_the_verb_of_its_name(name, kind, single_row):
    assert effect_of_seed_tool(name) == ToolEffect(kind=kind, single_row=single_row)


def test_only_a_declared_read_does_not_mutate():
    assert not mutates(Tool(effect=ToolEffect(kind=READ)))
    assert mutates(Tool(effect=ToolEffect(kind=UPDATE)))
    # an unknown effect may change data, whatever the tool's SQL or name suggests
    assert mutates(Tool(name="get_customer", sql=SqlBinding(statement="SELECT 1")))
