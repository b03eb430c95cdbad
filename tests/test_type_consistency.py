"""Output schemas and type consistency: multi-turn prediction, the mechanical repair, and truth comparisons."""
from __future__ import annotations

import json
import os
import random
from pathlib import Path
from types import SimpleNamespace

import pytest

from shared.toolgen.type_repair import enforce_type_consistency, name_clashes, sql_field_entity
from shared.toolgen.output_prediction import (PredictionLog, agreement_with_truth, declared_shape,
                                                  output_fields, predict_output_schemas)
from shared.contracts import Tool
from shared.data.seed_tools import load_seed_responses, load_seed_tools
from shared.env.tool_spec import effect_of_seed_tool, tool_parameters

SEAL = Path(os.environ.get("TURNFORGE_SEED_TOOLS", Path(__file__).resolve().parents[2] / "shared" / "data" /
                           "seed-tools" / "seal_tools_subset.jsonl"))
SEAL_FIELDS = ["Telecommunications", "Healthcare", "Finance", "Insurance", "Hospitality", "Sports"]


def tool(name: str, params: dict[str, str]) -> Tool:
    return Tool(name=name, description=f"{name} tool",
                parameters_json=json.dumps({"type": "object", "properties": {p: {"type": t} for p, t in params.items()}}),
                effect=effect_of_seed_tool(name))


class PredictingModel:
    """Scripted predictor: answers each output-schema request with the next scripted prediction."""

    def __init__(self, predictions):
        self.predictions = list(predictions)
        self.requests = []

    def chat(self, messages, **_):
        self.requests.append(messages)
        return SimpleNamespace(data=self.predictions.pop(0))


def test_prediction_is_multi_turn_and_repaired_to_one_type_per_field():
    tools = [tool("getCustomer", {"customer_id": "integer"}), tool("searchOrders", {"customer_id": "integer"})]
    model = PredictingModel([
        {"returns": "one_record", "fields": [{"name": "customer_id", "type": "string"},
                                             {"name": "Full Name", "type": "string"}]},
        {"returns": "one_record", "fields": [{"name": "order_id", "type": "integer"},
                                             {"name": "full_name", "type": "integer"}]},
    ])
    log = PredictionLog()
    schemas = predict_output_schemas(model, "retail", tools, log)
    # the second request sees the first exchange and the fields decided so far
    second = model.requests[1]
    assert any(m["role"] == "assistant" for m in second)
    assert "customer_id: integer" in second[-1]["content"] and "full_name: string" in second[-1]["content"]
    assert schemas[1]["type"] == "array" and log.shape_repaired == ["searchOrders"]  # a search returns a list
    repaired, conflicts = enforce_type_consistency(
        [(t.name, tool_parameters(t), s) for t, s in zip(tools, schemas)])
    assert {(c.tool, c.field, c.found, c.canonical) for c in conflicts} == {
        ("getCustomer", "customer_id", "string", "integer"), ("searchOrders", "full_name", "integer", "string")}
    assert output_fields(repaired[0][2]) == {"customer_id": "integer", "full_name": "string"}
    _, again = enforce_type_consistency(repaired)
    assert again == []


def test_a_failed_prediction_is_recorded_not_fatal():
    from shared.runtime.llm import InvalidModelOutput

    class Failing:
        def chat(self, *_, **__):
            raise InvalidModelOutput("no JSON")

    log = PredictionLog()
    [schema] = predict_output_schemas(Failing(), "x", [tool("deleteBooking", {"booking_id": "integer"})], log)
    assert log.failed == ["deleteBooking"] and schema["type"] == "object"


def test_sql_fields_are_one_entity_per_table_column():
    countries = ("list_countries", {"type": "object", "properties": {"continent": {"type": "integer"}}},
                 {"type": "array", "items": {"type": "object", "properties": {"continent": {"type": "integer"}}}})
    continents = ("get_continent", {"type": "object", "properties": {"cont_id": {"type": "integer"}}},
                  {"type": "object", "properties": {"continent": {"type": "string"}}})
    columns_of = {"list_countries": ({"continent": "countries.continent"}, {"continent": "countries.continent"}),
                  "get_continent": ({"cont_id": "continents.cont_id"}, {"continent": "continents.continent"})}
    _, conflicts = enforce_type_consistency([countries, continents], sql_field_entity(columns_of))
    assert conflicts == []  # one name, two columns: the database says each type
    assert name_clashes([countries, continents]) == {"continent": ["number", "string"]}
    broken = ("update_country", {"type": "object", "properties": {"continent": {"type": "string"}}}, {})
    columns_of["update_country"] = ({"continent": "countries.continent"}, {})
    _, conflicts = enforce_type_consistency([countries, continents, broken], sql_field_entity(columns_of))
    assert [(c.tool, c.field) for c in conflicts] == [("update_country", "continent")]


def test_agreement_with_known_outputs():
    predicted = {"getScore": {"type": "object", "properties": {"team_score": {"type": "integer"},
                                                               "venue": {"type": "string"}}},
                 "listGames": {"type": "array", "items": {"type": "object",
                                                          "properties": {"GameId": {"type": "string"}}}}}
    truth = {"getScore": {"team_score": "integer", "opponent_score": "integer"},
             "listGames": {"game_id": "integer"}, "notPredicted": {"x": "string"}}
    figures = agreement_with_truth(predicted, truth)
    assert figures == {"tools_with_known_outputs": 2, "known_fields": 3, "recalled_fields": 2,
                       "field_name_recall": 0.667, "type_agreement": 0.5}
    assert declared_shape(tool("searchHotels", {})) == "list_of_records"
    assert declared_shape(tool("bookRoom", {})) == "one_record"
    assert declared_shape(tool("estimateRisk", {})) is None


@pytest.mark.parametrize("field", SEAL_FIELDS)
def test_every_seed_toolset_is_type_consistent_after_repair(field):
    """Random (deliberately inconsistent) predictions over each Seal-Tools field: after the mechanical pass no
    field has two types, inputs and outputs alike."""
    if not SEAL.is_file():
        pytest.skip(f"no Seal-Tools subset at {SEAL}")
    tools = load_seed_tools(SEAL, field=field)
    truth = load_seed_responses(SEAL, field=field)
    assert truth and set(truth) <= {t.name for t in tools}
    rng = random.Random(field)
    names = sorted({f for fields in truth.values() for f in fields} | {"id", "status"})
    predictions = [{"returns": rng.choice(["one_record", "list_of_records"]),
                    "fields": [{"name": rng.choice(names), "type": rng.choice(["string", "integer", "boolean"])}
                               for _ in range(4)]} for _ in tools]
    schemas = predict_output_schemas(PredictingModel(predictions), field, tools)
    repaired, conflicts = enforce_type_consistency(
        [(t.name, tool_parameters(t), s) for t, s in zip(tools, schemas)])
    assert conflicts  # random types do clash
    _, remaining = enforce_type_consistency(repaired)
    assert remaining == [] and name_clashes(repaired) == {}
