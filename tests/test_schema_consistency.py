from shared.toolgen.type_repair import enforce_type_consistency
from shared.env.output_schema import json_schema_for_result


def test_shared_field_keeps_the_type_of_its_first_input():
    tools = [
        ("get_order", {"type": "object", "properties": {"order_id": {"type": "integer"}}},
         {"type": "object", "properties": {"order_id": {"type": "integer"}, "placed_at": {"type": "string"}}}),
        ("list_orders", {"type": "object", "properties": {}},
         {"type": "array", "items": {"type": "object", "properties": {"order_id": {"type": "string"},
                                                                       "placed_at": {"type": "integer"}}}}),
    ]
    repaired, conflicts = enforce_type_consistency(tools)
    items = repaired[1][2]["items"]["properties"]
    assert items["order_id"]["type"] == "integer"
    assert items["placed_at"]["type"] == "string"
    assert {(c.tool, c.field) for c in conflicts} == {("list_orders", "order_id"), ("list_orders", "placed_at")}
    assert tools[1][2]["items"]["properties"]["order_id"]["type"] == "string"  # inputs are not mutated


def test_integer_and_number_are_compatible_and_nullable_types_compare_by_their_base():
    tools = [("a", {"properties": {"amount": {"type": "integer"}}}, {"properties": {"amount": {"type": ["number", "null"]}}})]
    _, conflicts = enforce_type_consistency(tools)
    assert conflicts == []


def test_sql_output_schema_follows_result_columns():
    listing = json_schema_for_result([("customer_id", "int4"), ("joined", "date")])
    assert listing["type"] == "array"
    assert listing["items"]["properties"]["customer_id"]["type"] == ["integer", "null"]
    assert listing["items"]["properties"]["joined"]["format"] == "date"
    single = json_schema_for_result([("balance", "numeric")], single_row=True)
    assert single["type"] == "object" and single["properties"]["balance"]["type"] == ["number", "null"]
    assert single["properties"]["found"] == {"type": "boolean"}  # a lookup that finds nothing stays valid
