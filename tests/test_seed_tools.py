import json

from shared.data.seed_tools import load_seed_tools


def test_seal_tools_and_openai_specs_load_as_tools(tmp_path):
    seal = {"api_name": "getPlanUsage", "api_description": "Usage of a mobile plan", "field": "Telecommunications/x",
            "parameters": {"phone_number": {"type": "str", "description": "The line"}, "months": {"type": "int"}},
            "required": ["phone_number", "unknown"], "responses": {"usage": {"type": "float"}}}
    other = dict(seal, api_name="getScore", field="Sports/Basketball")
    path = tmp_path / "seal.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in (seal, other)))
    [tool] = load_seed_tools(path, field="Telecommunications")
    params = json.loads(tool.parameters_json)
    assert tool.name == "getPlanUsage"
    assert params["properties"]["months"] == {"type": "integer"}
    assert params["required"] == ["phone_number"]  # names that are not parameters are dropped

    spec = tmp_path / "openai.json"
    spec.write_text(json.dumps([{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]))
    assert [t.name for t in load_seed_tools(spec)] == ["f"]
