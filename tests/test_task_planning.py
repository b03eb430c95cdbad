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
from services.task_generator.actions import Grounding, Known, PlannedAction, PlannedRequest
from services.task_generator.entity_tree import MAX_CHILDREN, build_tree
from services.task_generator.planning import PlannedTask, Position, TrajectoryEdits
from services.task_generator.routes import Anchor, TreeIndex, hops_from, routes, search_anchors
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
                   Column(name="monthly_price", type="numeric"), Column(name="start_date", type="date")]),
    Table(name="invoices", primary_key=["invoice_id"],
          foreign_keys=[ForeignKey(columns=["subscription_id"], ref_table="subscriptions",
                                   ref_columns=["subscription_id"])],
          columns=[Column(name="invoice_id", type="integer", nullable=False),
                   Column(name="subscription_id", type="integer", nullable=False),
                   Column(name="amount_due", type="numeric"), Column(name="status", type="text"),
                   Column(name="issued_on", type="date")]),
])


def rows() -> dict[str, list[dict]]:
    customers = [{"customer_id": i, "full_name": f"Person {name}", "email": f"{name.lower()}@mail.test",
                  "status": "active"} for i, name in enumerate(["Ana", "Bo", "Cy"], start=1)]
    subscriptions = [{"subscription_id": 10 + i, "customer_id": 1, "status": "active", "monthly_price": 20.0 + i,
                      "start_date": f"2024-0{i + 1}-01"} for i in range(7)] + \
        [{"subscription_id": 30, "customer_id": 2, "status": "active", "monthly_price": 9.5,
          "start_date": "2024-03-15"}]
    invoices = [{"invoice_id": 100 + i, "subscription_id": 10 + i % 2, "amount_due": 20.0, "status": "open",
                 "issued_on": f"2024-0{i + 1}-28"} for i in range(4)]
    return {"customers": customers, "subscriptions": subscriptions, "invoices": invoices}


class MemoryRows:
    """The RowSource planning reads, over dicts."""

    def __init__(self, data: dict[str, list[dict]]):
        self.data = data

    def random_row(self, table, rng):
        return dict(rng.choice(self.data[table])) if self.data[table] else None

    def row_at(self, table, position, salt):
        shuffled = sorted(self.data[table], key=lambda r: hash((salt, json.dumps(r, sort_keys=True))))
        return dict(shuffled[position % len(shuffled)]) if shuffled else None

    def row_by_key(self, table, column, value):
        return next((dict(r) for r in self.data[table] if r[column] == value), None)

    def referencing_rows(self, table, column, value, limit, rng):
        found = [dict(r) for r in self.data[table] if r[column] == value]
        return rng.sample(found, min(limit, len(found))), len(found)

    def count_containing(self, table, column, text):
        return sum(text.lower() in str(r[column]).lower() for r in self.data[table])

    def max_value(self, table, column):
        return max((r[column] for r in self.data[table] if r[column] is not None), default=None)

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
    edits.record(SCHEMA, PlannedTask(tree, "delete", [PlannedRequest([
        PlannedAction(delete.tool, {"invoice_id": invoice.row["invoice_id"]}, invoice),
        PlannedAction(update.tool, {"customer_id": 1, "status": "suspended"}, tree.root)])]))
    again = build_tree(MemoryRows(rows()), SCHEMA, "invoices", random.Random(1), edits.apply)
    assert all(n.row["invoice_id"] != invoice.row["invoice_id"] for n in (again.nodes() if again else [])
               if n.table == "invoices")
    assert edits.apply(SCHEMA.table("customers"), rows()["customers"][0])["status"] == "suspended"


# --- the action mix ---------------------------------------------------------------------------------------------


def test_the_mixes_hold_closely_over_a_seeds_positions():
    """Kinds and difficulties follow the mixes by position, not by luck: within a point on 1,000 tasks."""
    mix = {"read": 0.3, "insert": 0.1, "update": 0.5, "delete": 0.1}
    positions = [Position(i, k, 500, 2, "shop/7") for i in range(500) for k in range(2)]
    drawn = Counter(golden.pick_kind(mix, p.draw("kind"), set(golden.ACTION_KINDS)) for p in positions)
    for kind, weight in mix.items():
        assert abs(drawn[kind] / 1000 - weight) < 0.01, drawn
    first_twenty = Counter(golden.pick_kind(mix, p.draw("kind"), set(golden.ACTION_KINDS)) for p in positions[:20])
    assert abs(first_twenty["update"] - 10) <= 2  # a small run too, where random draws would stray


def test_write_task_share_alone_is_split_as_dysql_splits_writes():
    settings = GenerationSettings(write_task_share=0.7)
    assert golden.action_mix(settings) == pytest.approx({"read": 0.3, "insert": 0.1, "update": 0.5, "delete": 0.1})
    settings.action_mix.CopyFrom(ActionMix(delete=1.0))
    assert golden.action_mix(settings) == {"read": 0.0, "insert": 0.0, "update": 0.0, "delete": 1.0}


def test_a_kind_the_toolset_cannot_do_falls_back_to_reads():
    assert golden.pick_kind({"delete": 1.0}, 0.3, {"read", "update"}) == "read"


# --- routes -----------------------------------------------------------------------------------------------------


def test_hops_go_up_to_a_parent_and_down_to_the_only_or_latest_child():
    g = grounding()
    tree = build_tree(MemoryRows(rows()), SCHEMA, "invoices", random.Random(1))
    index = TreeIndex(tree)
    invoice = tree.root
    [up] = [h for h in hops_from(invoice, index, g.catalog) if h.up]
    assert up.node.table == "subscriptions" and up.get.name == "get_subscription"
    subscription = up.node
    [down] = [h for h in hops_from(subscription, index, g.catalog) if not h.up]
    # The subscription has two invoices (the root among them): the agent singles out the one it lists first, the
    # latest by its date.
    invoices = [i for i in rows()["invoices"] if i["subscription_id"] == subscription.row["subscription_id"]]
    assert down.which == "latest" and down.children.order[0] == ("issued_on", True)
    assert down.node.row["invoice_id"] == max(invoices, key=lambda i: i["issued_on"])["invoice_id"]
    customer = next(h for h in hops_from(subscription, index, g.catalog) if h.up).node
    assert not [h for h in hops_from(customer, index, g.catalog) if not h.up]  # seven subscriptions, counted only

    data = rows()
    data["subscriptions"] = [s for s in data["subscriptions"] if s["subscription_id"] in (10, 30)]
    data["invoices"] = [i for i in data["invoices"] if i["subscription_id"] == 10][:1]
    tree = customer_tree(Grounding(SCHEMA, g.catalog, MemoryRows(data), random.Random(0)))
    index = TreeIndex(tree)
    [only] = hops_from(tree.root, index, g.catalog)
    assert (only.which, only.node.row["subscription_id"], only.children.name) == \
        ("only", 10, "list_subscriptions_of_customer")
    [invoice_hop] = [h for h in hops_from(only.node, index, g.catalog) if not h.up]
    assert invoice_hop.which == "only" and invoice_hop.node.table == "invoices"
    blocked = {("invoices", "subscription_id", json.dumps(10))}  # an earlier task added an invoice to this line
    assert not [h for h in hops_from(only.node, index, g.catalog, blocked) if not h.up]


def test_every_key_on_a_route_comes_from_the_result_before_it():
    """Whatever is planned, the person gives no key and each key the agent passes was returned by an earlier call."""
    for seed in range(30):
        g = grounding(seed)
        for kind in golden.ACTION_KINDS:
            for aim in golden.AIMS.values():
                requests = golden.plan_requests(kind, customer_tree(g), g, aim, Known(SCHEMA))
                actions = [a for r in requests for a in r.actions]
                seen: list[tuple[str, dict]] = []
                for action in actions:
                    for param, value in action.arguments.items():
                        table, column = action.tool.sql.parameter_columns.get(param, ".").split(".", 1)
                        if golden.key_like(SCHEMA, table, column):
                            assert param in action.looked_up, (kind, action.tool.name, param)
                            assert any(value in row.values() for _, row in seen), (kind, action.tool.name, param)
                    seen += action.returns


def test_an_update_starts_from_what_the_person_knows():
    g = grounding(seed=3)
    tree = customer_tree(g)
    tree.root.children.clear()  # only the customer to act on
    tree.root.parents.clear()
    [request] = golden.plan_requests("update", tree, g, (0, 1), Known(SCHEMA))
    search, update = request.actions
    assert search.tool.name in {"search_customers_by_full_name", "search_customers_by_email"}
    assert list(search.arguments.values())[0] in {"Person Ana", "ana@mail.test"}  # unique: finds one customer
    assert update.tool.name.startswith("update_customer_") and update.looked_up == ["customer_id"]
    assert "customer_id" not in update.given
    text = logic.describe_request(0, request, SCHEMA)
    assert "customer id =" not in text and "not given by the person: customer id" in text


def test_a_value_many_rows_share_names_no_record_so_the_person_gives_the_key():
    data = rows()
    for c in data["customers"]:
        c["full_name"], c["email"] = "Same Name", None
    g = grounding(data=data)
    tree = customer_tree(g)
    tree.root.children.clear()
    assert golden.plan_requests("update", tree, g, (0, 1), Known(SCHEMA)) == []  # no search singles it out
    [request] = golden.plan_requests("update", tree, g, (0, 1), Known(SCHEMA), keys_given=True)
    assert [a.tool.name.split("_")[0] for a in request.actions] == ["update"]
    assert request.main.looked_up == [] and "customer_id" in request.main.given


def test_a_key_an_earlier_call_returned_is_looked_up_under_the_key_it_points_at():
    g = grounding()
    tree = customer_tree(g)
    sub = tree.root.children["subscriptions.customer_id"][0]
    known = Known(SCHEMA)
    known.add_row("subscriptions", sub.row)  # a subscription's customer_id is the customer's key
    get_customer = PlannedAction(g.catalog.record_reads("customers")[0].tool, {"customer_id": 1}, tree.root)
    invoices = PlannedAction(g.catalog.child_lists("invoices", "subscription_id")[0].tool,
                             {"subscription_id": sub.row["subscription_id"]}, sub)
    assert golden.settle_arguments(get_customer, known, SCHEMA) and get_customer.looked_up == ["customer_id"]
    assert golden.settle_arguments(invoices, known, SCHEMA) and invoices.looked_up == ["subscription_id"]
    stranger = PlannedAction(get_customer.tool, {"customer_id": 3}, tree.root)
    assert not golden.settle_arguments(stranger, known, SCHEMA)  # nobody returned customer 3


def test_a_delete_removes_a_row_nothing_references_or_its_children_first():
    for seed in range(20):
        g = grounding(seed)
        requests = golden.plan_requests("delete", customer_tree(g), g, (0, 1), Known(SCHEMA), keys_given=True)
        deletes = [a for r in requests for a in r.actions if a.tool.name.startswith("delete_")]
        assert deletes
        for i, action in enumerate(deletes):
            node = action.node
            deleted_before = {id(a.node) for a in deletes[:i]}
            kids = [c for rs in node.children.values() for c in rs]
            assert node.is_leaf or (node.children_all_present and all(id(k) in deleted_before for k in kids))
    data = rows()
    data["invoices"] = [dict(i, subscription_id=30) for i in data["invoices"][:2]]
    g = grounding(2, data)
    tree = build_tree(MemoryRows(data), SCHEMA, "invoices", random.Random(0))
    [request] = golden.plan_requests("delete", tree, g, (1, 1), Known(SCHEMA))  # Bo's only line, one hop away
    names = [a.tool.name for a in request.actions]
    # The line's invoices are listed (their keys learnt) and deleted before the line itself.
    assert names[-1] == "delete_subscription" and "list_invoices_of_subscription" in names
    assert names.index("list_invoices_of_subscription") < names.index("delete_invoice")


def test_an_insert_hangs_under_a_tree_record_with_fresh_unique_values():
    for seed in range(10):
        g = grounding(seed)
        requests = golden.plan_requests("insert", customer_tree(g), g, (1, 1), Known(SCHEMA))
        create = requests[-1].main
        assert create.tool.name in {"create_subscription", "create_invoice"}
        parent_key = "customer_id" if create.tool.name == "create_subscription" else "subscription_id"
        assert create.arguments[parent_key] == create.node.row[parent_key]  # an existing parent of the tree
        assert parent_key in create.looked_up  # found by the agent, not given
    customer = golden.insert_arguments(next(iter(g.catalog.creates("customers"))), SCHEMA.table("customers"),
                                       None, None, [], g)
    assert customer["email"] not in {c["email"] for c in rows()["customers"]}  # unique: a fresh address
    assert customer["email"].endswith("@mail.test")


def test_a_read_task_asks_for_values_of_a_record_a_search_or_a_ranking():
    seen = Counter()
    for seed in range(40):
        g = grounding(seed)
        tree = customer_tree(g) if seed % 2 else build_tree(MemoryRows(rows()), SCHEMA, "invoices", g.rng)
        main = golden.plan_requests("read", tree, g, (seed % 3, 1), Known(SCHEMA))[-1].main
        seen[main.tool.name.split("_")[0]] += 1
        assert main.asks_for and all(not f.endswith("_id") for f in main.asks_for if main.answer_rows == 1
                                     and main.tool.name.startswith("get_"))
    # A search's one match, the latest of a list, a ranking. (Only customers can be searched for by what a person
    # knows here, and they reference nothing: no route goes up to a record read by its key.)
    assert {"search", "list", "count"} <= set(seen), seen


def deep_rows() -> dict[str, list[dict]]:
    """Cy has two lines, each with invoices on distinct dates: routes two hops down from her name."""
    data = rows()
    data["subscriptions"] += [{"subscription_id": 40 + i, "customer_id": 3, "status": "active",
                               "monthly_price": 30.0, "start_date": f"2023-1{i}-01"} for i in range(2)]
    data["invoices"] += [{"invoice_id": 200 + i, "subscription_id": 40 + i % 2, "amount_due": 12.5 + i,
                          "status": "open", "issued_on": f"2025-0{i + 1}-05"} for i in range(4)]
    return data


def test_harder_aims_take_more_hops_and_a_second_request_from_where_the_first_left_off():
    hops, two_requests = Counter(), 0
    for seed in range(30):
        g = grounding(seed, deep_rows())
        tree = customer_tree(g, customer_id=3)
        requests = golden.plan_requests("update", tree, g, (2, 2), Known(SCHEMA))
        if not requests:
            continue
        hops[sum(r.hops for r in requests)] += 1
        if len(requests) == 2:
            two_requests += 1
            first, second = requests
            assert first.main.asks_for and first.main.answer_rows == 1  # the person wants to know something first
            assert second.route.anchor.search is None  # ... and goes on from that record: "that subscription"
            assert second.route.anchor.node is first.main.node
    assert two_requests >= 5 and max(hops) >= 2


def test_difficulty_follows_hops_and_writes():
    assert golden.difficulty_of(1, 0) == Difficulty.DIFFICULTY_EASY
    assert golden.difficulty_of(2, 1) == Difficulty.DIFFICULTY_EASY  # one hop to read
    assert golden.difficulty_of(2, 0, writes=True) == Difficulty.DIFFICULTY_EASY  # search, then change it
    assert golden.difficulty_of(3, 1, writes=True) == Difficulty.DIFFICULTY_MEDIUM
    assert golden.difficulty_of(3, 2) == Difficulty.DIFFICULTY_MEDIUM
    assert golden.difficulty_of(4, 2, writes=True) == Difficulty.DIFFICULTY_HARD
    assert golden.difficulty_of(3, 3) == Difficulty.DIFFICULTY_HARD


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
    wording = logic.action_wording(planned, ["customer_id"])
    assert f"the {planned.arguments['limit']} customers with the highest subscription count" in wording


def test_the_wording_check_finds_tool_names_identifiers_unknown_ids_and_missing_values():
    g = grounding()
    update = next(t for t in g.catalog.updates("customers"))
    value_param = update.params("new_value")[0]
    action = PlannedAction(update.tool, {"customer_id": 7, value_param: "closed"}, looked_up=["customer_id"])
    names = [update.name]
    request = [PlannedRequest([action])]
    assert logic.wording_problems(["Please close my account, set it to closed."], request, names) == []
    problems = logic.wording_problems([f"Call {update.name} for customer 7 with new_value closed"], request, names)
    assert any("names the tool" in p for p in problems)
    assert any("identifier" in p for p in problems)
    assert any("does not know" in p for p in problems)
    assert logic.wording_problems(["Please close my account."], request, names) == \
        [f"subtask 1 leaves out the {value_param.replace('_', ' ')} closed"]
    assert "exactly one subtask" in logic.wording_problems([], request, names)[0]
    in_use = PlannedAction(update.tool, {"customer_id": 7, value_param: "in_use"})
    assert logic.wording_problems(["Set customer 7 to in_use."], [PlannedRequest([in_use])], names) == []


@pytest.mark.parametrize("kind", ["read", "update", "delete", "insert"])
def test_a_task_worded_from_its_actions_passes_the_wording_check(kind):
    for seed in range(8):
        g = grounding(seed)
        requests = golden.plan_requests(kind, customer_tree(g), g, golden.AIMS[1 + seed % 3], Known(SCHEMA),
                                        keys_given=seed % 4 == 3)
        phrasing = logic.rule_phrasing(PlannedTask(None, kind, requests), SCHEMA)
        assert len(phrasing["subtasks"]) == len(requests)
        names = [a.tool.name for r in requests for a in r.actions]
        assert logic.wording_problems(phrasing["subtasks"], requests, names) == []
