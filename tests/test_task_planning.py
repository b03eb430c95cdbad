"""task-generator's planning on a small in-memory schema: entity trees, the action mix, chained lookups, deletes
and inserts that can run, difficulty from length and hops, expected values and the wording check."""
from __future__ import annotations

import json
import random
from collections import Counter

import pytest
import sqlglot
from sqlglot import exp

from services.task_generator import actions as golden
from services.task_generator import logic
from services.task_generator.actions import Grounding, PlannedAction
from services.task_generator.entity_tree import MAX_CHILDREN, build_tree
from services.task_generator.planning import PlannedTask, TrajectoryEdits
from services.task_generator.tool_catalog import ToolCatalog
from shared.contracts import ActionMix, Difficulty, GenerationSettings, SeedEvent
from shared.env.dbschema import Column, DatabaseSchema, ForeignKey, Table
from shared.toolgen.templates import synthesize_template_tools
from shared.toolgen.toolset import toolset_from_verifications
from shared.toolgen.verify import Verification, _acted_on_table, _is_single_row_lookup

SCHEMA = DatabaseSchema(name="shop", tables=[
    Table(name="customers", primary_key=["customer_id"], unique_keys=[["email"]], columns=[
        Column(name="customer_id", type="integer", nullable=False), Column(name="full_name", type="text"),
        Column(name="email", type="text"), Column(name="status", type="text")]),
    Table(name="subscriptions", primary_key=["subscription_id"],
          foreign_keys=[ForeignKey(columns=["customer_id"], ref_table="customers", ref_columns=["customer_id"])],
          columns=[Column(name="subscription_id", type="integer", nullable=False),
                   Column(name="customer_id", type="integer", nullable=False), Column(name="status", type="text"),
                   Column(name="monthly_price", type="numeric")]),
    Table(name="invoices", primary_key=["invoice_id"],
          foreign_keys=[ForeignKey(columns=["subscription_id"], ref_table="subscriptions",
                                   ref_columns=["subscription_id"])],
          columns=[Column(name="invoice_id", type="integer", nullable=False),
                   Column(name="subscription_id", type="integer", nullable=False),
                   Column(name="amount_due", type="numeric"), Column(name="status", type="text")]),
])


def rows() -> dict[str, list[dict]]:
    customers = [{"customer_id": i, "full_name": f"Person {name}", "email": f"{name.lower()}@mail.test",
                  "status": "active"} for i, name in enumerate(["Ana", "Bo", "Cy"], start=1)]
    subscriptions = [{"subscription_id": 10 + i, "customer_id": 1, "status": "active", "monthly_price": 20.0 + i}
                     for i in range(7)] + [{"subscription_id": 30, "customer_id": 2, "status": "active",
                                            "monthly_price": 9.5}]
    invoices = [{"invoice_id": 100 + i, "subscription_id": 10 + i % 2, "amount_due": 20.0, "status": "open"}
                for i in range(4)]
    return {"customers": customers, "subscriptions": subscriptions, "invoices": invoices}


class MemoryRows:
    """The RowSource planning reads, over dicts."""

    def __init__(self, data: dict[str, list[dict]]):
        self.data = data

    def random_row(self, table, rng):
        return dict(rng.choice(self.data[table])) if self.data[table] else None

    def row_by_key(self, table, column, value):
        return next((dict(r) for r in self.data[table] if r[column] == value), None)

    def referencing_rows(self, table, column, value, limit, rng):
        found = [dict(r) for r in self.data[table] if r[column] == value]
        return rng.sample(found, min(limit, len(found))), len(found)

    def count_containing(self, table, column, text):
        return sum(text.lower() in str(r[column]).lower() for r in self.data[table])

    def max_value(self, table, column):
        return max(r[column] for r in self.data[table])

    def column_values(self, table):
        return {c: sorted({r[c] for r in self.data[table]}, key=str) for c in self.data[table][0]}


def output_columns(sql: str, schema: DatabaseSchema) -> list[tuple[str, str, tuple[str, str] | None]]:
    """(name, type, origin) of what a template statement returns, as verification would find it."""
    tree = sqlglot.parse_one(sql, read="postgres")
    table = schema.table(_acted_on_table(tree, schema))
    selects = tree.expressions if isinstance(tree, exp.Select) else tree.args["returning"].expressions
    out = []
    for e in selects:
        if isinstance(e, exp.Star) or (isinstance(e, exp.Column) and isinstance(e.this, exp.Star)):
            out += [(c.name, c.type, (table.name, c.name)) for c in table.columns]
        elif isinstance(e, exp.Column):
            source = next(t for t in schema.tables if any(c.name == e.name for c in t.columns))
            out.append((e.name, "integer", (source.name, e.name)))
        else:
            out.append((e.alias_or_name, "numeric", None))
    return out


def template_toolset(schema: DatabaseSchema = SCHEMA):
    verifications = []
    for c in synthesize_template_tools(schema):
        tree = sqlglot.parse_one(c.sql, read="postgres")
        columns = output_columns(c.sql, schema)
        verifications.append(Verification(c, ok=True, single_row=_is_single_row_lookup(tree, schema),
                                          table=_acted_on_table(tree, schema),
                                          result_columns=[(n, t) for n, t, _ in columns],
                                          result_origins={n: o for n, _, o in columns if o}))
    seed = SeedEvent(seed_id="s", domain="shop")
    seed.database.domain_database = "shop"
    return toolset_from_verifications(seed, verifications, kept=verifications)


def grounding(seed: int = 0, data=None) -> Grounding:
    return Grounding(SCHEMA, ToolCatalog(template_toolset()), MemoryRows(data or rows()), random.Random(seed))


def customer_tree(g: Grounding, customer_id: int = 1):
    source = g.rows
    fixed = next(r for r in source.data["customers"] if r["customer_id"] == customer_id)

    class Rooted(MemoryRows):
        def random_row(self, table, rng):
            return dict(fixed) if table == "customers" else super().random_row(table, rng)
    return build_tree(Rooted(source.data), SCHEMA, "customers", g.rng)


# --- entity trees -----------------------------------------------------------------------------------------------


def test_a_tree_follows_foreign_keys_both_ways_to_depth_two_sampling_children():
    g = grounding()
    tree = build_tree(MemoryRows(rows()), SCHEMA, "invoices", random.Random(1))
    root = tree.root
    [subscription] = root.parents.values()  # the invoice references its subscription ...
    assert subscription.table == "subscriptions" and subscription.depth == 1
    [customer] = subscription.parents.values()  # ... which references its customer: two hops
    assert customer.table == "customers" and customer.depth == 2
    siblings = subscription.children["invoices.subscription_id"]  # and the subscription's other invoices
    assert all(s.row["subscription_id"] == subscription.row["subscription_id"] for s in siblings)
    assert root.row not in [s.row for s in siblings]  # the row we came from is not repeated
    assert customer.child_counts["subscriptions.customer_id"] == 7 and not customer.children  # counted, not read

    tree = customer_tree(g)
    subs = tree.root.children["subscriptions.customer_id"]
    assert len(subs) == MAX_CHILDREN and tree.root.child_counts["subscriptions.customer_id"] == 7
    assert not tree.root.children_all_present  # sampled: two subscriptions are left out
    with_invoices = [s for s in subs if s.child_counts["invoices.subscription_id"]]
    assert all(s.children["invoices.subscription_id"] for s in with_invoices)  # depth 2 reached downwards
    assert json.loads(tree.as_json())["referenced_by"]["subscriptions.customer_id"]["count"] == 7


def test_rows_an_earlier_task_deleted_or_changed_are_seen_as_it_left_them():
    edits = TrajectoryEdits()
    g = grounding()
    tree = customer_tree(g)
    invoice = next(n for n in tree.nodes() if n.table == "invoices")
    catalog = g.catalog
    delete = next(t for t in catalog.deletes("invoices"))
    update = next(t for t in catalog.updates("customers") if t.columns[t.params("new_value")[0]][1] == "status")
    edits.record(SCHEMA, PlannedTask(tree, "delete", [
        PlannedAction(delete.tool, {"invoice_id": invoice.row["invoice_id"]}, invoice),
        PlannedAction(update.tool, {"customer_id": 1, "status": "suspended"}, tree.root)]))
    again = build_tree(MemoryRows(rows()), SCHEMA, "invoices", random.Random(1), edits.apply)
    assert all(n.row["invoice_id"] != invoice.row["invoice_id"] for n in (again.nodes() if again else [])
               if n.table == "invoices")
    assert edits.apply(SCHEMA.table("customers"), rows()["customers"][0])["status"] == "suspended"


# --- the action mix ---------------------------------------------------------------------------------------------


def test_the_action_mix_is_honoured_over_many_draws():
    rng = random.Random(5)
    mix = {"read": 0.3, "insert": 0.1, "update": 0.5, "delete": 0.1}
    drawn = Counter(golden.pick_kind(mix, rng, set(golden.ACTION_KINDS)) for _ in range(5000))
    for kind, weight in mix.items():
        assert abs(drawn[kind] / 5000 - weight) < 0.03, drawn


def test_write_task_share_alone_is_split_as_dysql_splits_writes():
    settings = GenerationSettings(write_task_share=0.7)
    assert golden.action_mix(settings) == pytest.approx({"read": 0.3, "insert": 0.1, "update": 0.5, "delete": 0.1})
    settings.action_mix.CopyFrom(ActionMix(delete=1.0))
    assert golden.action_mix(settings) == {"read": 0.0, "insert": 0.0, "update": 0.0, "delete": 1.0}


def test_a_kind_the_toolset_cannot_do_falls_back_to_reads():
    assert golden.pick_kind({"delete": 1.0}, random.Random(0), {"read", "update"}) == "read"


# --- golden actions ---------------------------------------------------------------------------------------------


def test_an_update_starts_with_a_lookup_by_what_the_person_knows():
    g = grounding(seed=3)
    tree = customer_tree(g)
    tree.root.children.clear()  # only the customer to act on
    tree.root.parents.clear()
    planned = golden.plan_actions("update", tree, g, target=1)
    search, update = planned
    assert search.tool.name in {"search_customers_by_full_name", "search_customers_by_email"}
    assert list(search.arguments.values())[0] in {"Person Ana", "ana@mail.test"}  # unique: finds one customer
    assert update.tool.name.startswith("update_customer_") and update.looked_up == ["customer_id"]
    assert "customer_id" not in update.given
    step = logic.describe_step(1, update, "step 1")
    assert "customer id =" not in step and "not given by the person: customer id" in step


def test_a_value_many_rows_share_is_no_lookup_the_user_can_give():
    data = rows()
    for c in data["customers"]:
        c["full_name"], c["email"] = "Same Name", None
    g = grounding(data=data)
    tree = customer_tree(g)
    tree.root.children.clear()
    planned = golden.plan_actions("update", tree, g, target=1)
    assert [a.tool.name.split("_")[0] for a in planned] == ["update"]
    assert planned[0].looked_up == []  # the user gives the id: no search would single the customer out


def test_a_key_an_earlier_read_returned_is_looked_up_by_the_agent():
    g = grounding()
    tree = customer_tree(g)
    sub = tree.root.children["subscriptions.customer_id"][0]
    get_customer = g.catalog.record_reads("customers")[0]
    get_sub = g.catalog.record_reads("subscriptions")[0]
    actions = [PlannedAction(get_sub.tool, {"subscription_id": sub.row["subscription_id"]}, sub),
               PlannedAction(get_customer.tool, {"customer_id": 1}, tree.root)]
    golden.mark_looked_up(actions, SCHEMA)
    assert actions[0].looked_up == [] and actions[1].looked_up == ["customer_id"]


def test_a_delete_removes_a_row_nothing_references_or_its_children_first():
    for seed in range(20):
        g = grounding(seed)
        tree = customer_tree(g)
        planned = golden.plan_actions("delete", tree, g, target=1)
        deletes = [a for a in planned if a.tool.name.startswith("delete_")]
        assert deletes
        for i, action in enumerate(deletes):
            node = action.node
            later_deleted = {id(a.node) for a in deletes[:i]}
            kids = [c for rs in node.children.values() for c in rs]
            assert node.is_leaf or (node.children_all_present and all(id(k) in later_deleted for k in kids))
    long_plan = golden.plan_actions("delete", customer_tree(grounding(2)), grounding(2), target=3)
    assert [a.tool.name for a in long_plan if a.tool.name.startswith("delete_")][-1] == "delete_subscription"


def test_an_insert_hangs_under_a_tree_record_with_fresh_unique_values():
    for seed in range(10):
        g = grounding(seed)
        tree = customer_tree(g)
        planned = golden.plan_actions("insert", tree, g, target=1)
        create = planned[-1]
        assert create.tool.name in {"create_subscription", "create_invoice"}
        parent_key = "customer_id" if create.tool.name == "create_subscription" else "subscription_id"
        assert create.arguments[parent_key] == create.node.row[parent_key]  # an existing parent of the tree
        assert create.hops == create.node.depth + 1
    customer = golden.insert_arguments(next(iter(g.catalog.creates("customers"))), SCHEMA.table("customers"),
                                       None, None, [], g)
    assert customer["email"] not in {c["email"] for c in rows()["customers"]}  # unique: a fresh address
    assert customer["email"].endswith("@mail.test")


def test_a_read_task_uses_lookups_searches_and_rankings():
    seen = Counter()
    for seed in range(40):
        g = grounding(seed)
        main = golden.plan_actions("read", customer_tree(g), g, target=1)[-1]
        seen[main.tool.name.split("_")[0]] += 1
        assert main.asks_for and all(not f.endswith("_id") for f in main.asks_for if main.answer_rows == 1
                                     and main.tool.name.startswith("get_"))
    assert {"get", "search"} <= set(seen) and ({"list", "count"} & set(seen))


def test_longer_tasks_read_their_way_down_the_tree():
    g = grounding(4)
    tree = customer_tree(g)
    invoice = next(n for n in tree.nodes() if n.table == "invoices")
    update = next(t for t in g.catalog.updates("invoices"))
    main = [PlannedAction(update.tool, {"invoice_id": invoice.row["invoice_id"], update.params("new_value")[0]: "x"},
                          invoice, invoice.depth)]
    reads = golden._path_reads(tree, g, main, room=3)
    assert [r.node.table for r in reads] == ["customers", "subscriptions", "invoices"]
    task = PlannedTask(tree, "update", reads + main)
    assert (len(task.actions), task.hops, task.difficulty) == (4, 2, Difficulty.DIFFICULTY_HARD)


def test_difficulty_counts_actions_and_hops():
    assert golden.difficulty_of(1, 0) == Difficulty.DIFFICULTY_EASY
    assert golden.difficulty_of(2, 1) == Difficulty.DIFFICULTY_EASY
    assert golden.difficulty_of(2, 2) == Difficulty.DIFFICULTY_MEDIUM
    assert golden.difficulty_of(3, 0) == Difficulty.DIFFICULTY_MEDIUM
    assert golden.difficulty_of(3, 2) == Difficulty.DIFFICULTY_HARD
    assert golden.difficulty_of(4, 0) == Difficulty.DIFFICULTY_HARD


# --- expected values and wording --------------------------------------------------------------------------------


def test_expected_values_are_picked_from_the_golden_result():
    g = grounding()
    get = PlannedAction(g.catalog.record_reads("customers")[0].tool, {"customer_id": 1}, asks_for=["email"])
    assert logic.expected_values(get, json.dumps({"customer_id": 1, "email": "a@b.c", "status": "x"})) == \
        {"email": "a@b.c"}
    listed = PlannedAction(get.tool, {}, asks_for=["full_name"], answer_rows=3)
    result = [{"full_name": n} for n in ("A", "B", "C", "D")]
    assert logic.expected_values(listed, json.dumps(result)) == {"full_name": ["A", "B", "C"]}
    aggregate = PlannedAction(get.tool, {}, asks_for=["full_name", "subscription_count"], answer_rows=1)
    assert logic.expected_values(aggregate, json.dumps([{"customer_id": 1, "full_name": "A", "subscription_count": 7},
                                                       {"customer_id": 2, "full_name": "B",
                                                        "subscription_count": 1}])) == \
        {"full_name": "A", "subscription_count": 7}
    write = PlannedAction(get.tool, {"customer_id": 1})
    assert logic.expected_values(write, json.dumps({"customer_id": 1})) is None


def test_aggregates_ask_for_their_computed_values():
    g = grounding()
    count = next(t for t in g.catalog.ranking_reads() if t.name == "count_subscriptions_per_customer")
    planned = golden.ranking_read(count, g)
    assert "subscription_count" in planned.asks_for and planned.answer_rows == 1
    assert 3 <= planned.arguments["limit"] <= 5
    # Worded by what it ranks by, not "the first 5 customers" (first by what?).
    wording = logic.request_wording(planned, ["customer_id"])
    assert f"the {planned.arguments['limit']} customers with the highest subscription count" in wording


def test_the_wording_check_finds_tool_names_identifiers_unknown_ids_and_missing_values():
    g = grounding()
    update = next(t for t in g.catalog.updates("customers"))
    value_param = update.params("new_value")[0]
    action = PlannedAction(update.tool, {"customer_id": 7, value_param: "closed"}, looked_up=["customer_id"])
    names = [update.name]
    assert logic.wording_problems(["Please close my account, set it to closed."], [action], names) == []
    problems = logic.wording_problems([f"Call {update.name} for customer 7 with new_value closed"], [action], names)
    assert any("names the tool" in p for p in problems)
    assert any("identifier" in p for p in problems)
    assert any("does not know" in p for p in problems)
    assert logic.wording_problems(["Please close my account."], [action], names) == \
        [f"subtask 1 leaves out the {value_param.replace('_', ' ')} closed"]
    assert "exactly one subtask" in logic.wording_problems([], [action], names)[0]
    in_use = PlannedAction(update.tool, {"customer_id": 7, value_param: "in_use"})
    assert logic.wording_problems(["Set customer 7 to in_use."], [in_use], names) == []  # a value, not a column


@pytest.mark.parametrize("kind", ["read", "update", "delete", "insert"])
def test_a_task_worded_from_its_actions_passes_the_wording_check(kind):
    for seed in range(4):
        g = grounding(seed)
        actions = golden.plan_actions(kind, customer_tree(g), g, 3)
        phrasing = logic.rule_phrasing(PlannedTask(None, kind, actions), SCHEMA)
        assert len(phrasing["subtasks"]) == len(actions)
        assert logic.wording_problems(phrasing["subtasks"], actions, [a.tool.name for a in actions]) == []
