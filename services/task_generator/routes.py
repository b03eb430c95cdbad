"""Routes through an entity tree: how a person names a record they do not know the key of, and the calls an agent
makes to reach it from what the person does know.

A person knows their phone number, their e-mail, a plan's name — or a record the conversation already found. From
such an anchor the agent follows foreign keys one hop at a time: up to the row a record references (the plan a
subscription is on), or down to the rows that reference it, where the person can single one out only as the one
there is ("the device on my line") or the most recent one ("my latest invoice"). Every key the agent passes on
comes from a result it already has; the person never says an id.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from services.task_generator.entity_tree import EntityNode, EntityTree
from services.task_generator.tool_catalog import SqlTool, ToolCatalog

MAX_HOPS = 3


@dataclass(frozen=True)
class Hop:
    """One step from `source` to a related record `node`."""

    source: EntityNode
    node: EntityNode
    up: bool  # the source references the node (its parent); else the node references the source (a child)
    column: str  # the referencing column: the source's when up, the node's when down
    which: str = ""  # down: "only" (the one such row) or "latest" (first by the child list's recency order)
    get: SqlTool | None = None  # up: a lookup of the node by its key, when the toolset has one
    children: SqlTool | None = None  # down: the list of the source's rows in the node's table

    @property
    def relation(self) -> str:
        return f"{self.node.table}.{self.column}" if not self.up else f"{self.source.table}.{self.column}"


@dataclass(frozen=True)
class Anchor:
    """Where a route starts: a record the person names by a value they know (and the agent searches for), or one
    the conversation has already brought back (`search` None: "that subscription")."""

    node: EntityNode
    search: SqlTool | None = None
    parameter: str = ""
    value: object = None

    @property
    def column(self) -> str:
        return self.search.columns[self.parameter][1] if self.search else ""


@dataclass(frozen=True)
class Route:
    anchor: Anchor
    hops: tuple[Hop, ...] = field(default_factory=tuple)

    @property
    def target(self) -> EntityNode:
        return self.hops[-1].node if self.hops else self.anchor.node

    @property
    def nodes(self) -> list[EntityNode]:
        return [self.anchor.node] + [h.node for h in self.hops]


class TreeIndex:
    """The tree's records with their links both ways: the tree stores a record's parents and the children it was
    expanded with, but a child found as someone's parent is still that parent's child."""

    def __init__(self, tree: EntityTree):
        self.nodes = tree.nodes()
        self.children: dict[int, dict[str, list[EntityNode]]] = {}
        for node in self.nodes:
            for relation, kids in node.children.items():
                self._add(node, relation, kids)
            for column, parent in node.parents.items():
                self._add(parent, f"{node.table}.{column}", [node])

    def _add(self, parent: EntityNode, relation: str, kids: list[EntityNode]) -> None:
        known = self.children.setdefault(id(parent), {}).setdefault(relation, [])
        known += [k for k in kids if all(k is not seen for seen in known)]

    def children_of(self, node: EntityNode) -> dict[str, list[EntityNode]]:
        return self.children.get(id(node), {})


def hops_from(node: EntityNode, index: TreeIndex, catalog: ToolCatalog, blocked: set = frozenset()) -> list[Hop]:
    """Every hop the agent can take from `node` with this toolset and single out one record by. `blocked`: child
    lists (table, column, parent value as JSON) whose rows planning no longer sees all of."""
    hops = []
    for column, parent in node.parents.items():
        reads = [t for t in catalog.record_reads(parent.table) if _fills(t, parent.row)]
        hops.append(Hop(node, parent, True, column, get=reads[0] if reads else None))
    for relation, kids in index.children_of(node).items():
        table, column = relation.split(".", 1)
        lists = catalog.child_lists(table, column)
        total = node.child_counts.get(relation)
        if not lists or not kids or total is None or \
                (table, column, json.dumps(kids[0].row.get(column))) in blocked:
            continue
        if total == 1 and len(kids) == 1:
            hops.append(Hop(node, kids[0], False, column, "only", children=lists[0]))
            continue
        latest = _latest(kids, total, lists[0])
        if latest is not None:
            hops.append(Hop(node, latest, False, column, "latest", children=lists[0]))
    return hops


def _latest(kids: list[EntityNode], total: int, listing: SqlTool) -> EntityNode | None:
    """The row the child list returns first, when the tree holds them all and its order puts one clearly first
    (the latest by a date no sibling shares)."""
    order = listing.order
    if len(kids) != total or not order or not order[0][1]:
        return None
    column = order[0][0]
    dated = [k for k in kids if k.row.get(column) is not None]
    if len(dated) != len(kids):
        return None
    dated.sort(key=lambda k: json.dumps(k.row[column]), reverse=True)
    if len(dated) > 1 and dated[0].row[column] == dated[1].row[column]:
        return None
    return dated[0]


def routes(anchors: list[Anchor], index: TreeIndex, catalog: ToolCatalog, max_hops: int = MAX_HOPS,
           blocked: set = frozenset()) -> list[Route]:
    """Every route of at most `max_hops` hops from the anchors through the tree, no record visited twice."""
    found: list[Route] = []
    frontier = [Route(a) for a in anchors]
    while frontier:
        found += frontier
        longer = []
        for route in frontier:
            if len(route.hops) >= max_hops:
                continue
            seen = {id(n) for n in route.nodes}
            for hop in hops_from(route.target, index, catalog, blocked):
                if id(hop.node) not in seen:
                    longer.append(Route(route.anchor, route.hops + (hop,)))
        frontier = longer
    return found


def search_anchors(index: TreeIndex, catalog: ToolCatalog, rows, rng) -> list[Anchor]:
    """Records a person can name by something they know that singles the record out in its table (an e-mail, a
    phone number, a plan's name): the agent finds it with a search on exactly that value."""
    anchors = []
    for node in index.nodes:
        for tool in catalog.person_known_searches(node.table):
            parameter = tool.params("pattern", "bare_pattern")[0]
            column = tool.columns[parameter][1]
            value = node.row.get(column)
            if isinstance(value, str) and value.strip() and rows.count_containing(node.table, column, value) == 1:
                anchors.append(Anchor(node, tool, parameter, value))
                break
    rng.shuffle(anchors)
    return anchors


def _fills(tool: SqlTool, row: dict) -> bool:
    return all(row.get(tool.columns[p][1]) is not None for p in tool.roles)
