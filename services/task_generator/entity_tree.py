"""DySQL-style entity trees: a root record, the rows it references (parents) and the rows that reference it
(children), followed both ways to depth 2 and bounded in size. A tree is all the task generator, and the user
simulator answering from it, may see of a domain's data."""
from __future__ import annotations

import json
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol

from shared.env.dbschema import DatabaseSchema, ForeignKey, Table
from shared.env.json_values import json_value

MAX_DEPTH = 2
MAX_CHILDREN = 5  # rows sampled per referencing relation
MAX_NODES = 30  # a tree the phrasing prompt and the user simulator can still read


class RowSource(Protocol):
    """Where rows come from: shared/env/domain_rows.DomainRows, or an in-memory stand-in in tests."""

    def random_row(self, table: str, rng: random.Random) -> dict | None: ...

    def row_at(self, table: str, position: int, salt: str) -> dict | None: ...

    def row_by_key(self, table: str, column: str, value) -> dict | None: ...

    def referencing_rows(self, table: str, column: str, value, limit: int,
                         rng: random.Random) -> tuple[list[dict], int]: ...

    def count_containing(self, table: str, column: str, text: str) -> int: ...

    def max_value(self, table: str, column: str) -> Any: ...

    def column_values(self, table: str) -> dict[str, list]: ...


# A row as the trajectory's earlier tasks left it: None when one of them deleted it.
RowEdit = Callable[[Table, dict], "dict | None"]


@dataclass
class EntityNode:
    table: str
    row: dict[str, Any]  # JSON values
    depth: int  # foreign-key hops from the root
    parents: dict[str, "EntityNode"] = field(default_factory=dict)  # referencing column -> the row it references
    children: dict[str, list["EntityNode"]] = field(default_factory=dict)  # "table.column" -> rows referencing this
    child_counts: dict[str, int] = field(default_factory=dict)  # "table.column" -> how many reference it in all

    def walk(self) -> Iterator["EntityNode"]:
        yield self
        for parent in self.parents.values():
            yield from parent.walk()
        for rows in self.children.values():
            for child in rows:
                yield from child.walk()

    @property
    def is_leaf(self) -> bool:
        """No row references it (known only for nodes whose references were counted)."""
        return all(count == 0 for count in self.child_counts.values())

    @property
    def children_all_present(self) -> bool:
        """Every row that references it is in the tree (none left out by sampling)."""
        return all(len(self.children.get(relation, [])) == count for relation, count in self.child_counts.items())

    def to_json(self) -> dict:
        out: dict[str, Any] = {"table": self.table, "record": self.row}
        if self.parents:
            out["references"] = {column: parent.to_json() for column, parent in self.parents.items()}
        referenced = {relation: {"count": count, "rows": [c.to_json() for c in self.children.get(relation, [])]}
                      for relation, count in self.child_counts.items() if count}
        if referenced:
            out["referenced_by"] = referenced
        return out


@dataclass
class EntityTree:
    root: EntityNode

    def nodes(self) -> list[EntityNode]:
        return list(self.root.walk())

    def as_json(self) -> str:
        return json.dumps(self.root.to_json(), indent=1)


def row_key(table: Table, row: dict) -> tuple:
    return (table.name, *(json.dumps(row.get(c), sort_keys=True) for c in table.primary_key or list(row)))


def referencing_relations(db_schema: DatabaseSchema, table: str) -> list[tuple[Table, ForeignKey]]:
    """(child table, its foreign key) for every single-column reference to `table`."""
    return [(t, fk) for t in db_schema.tables for fk in t.foreign_keys
            if fk.ref_table == table and len(fk.columns) == 1]


def build_tree(rows: RowSource, db_schema: DatabaseSchema, table: str, rng: random.Random,
               edit: RowEdit | None = None) -> EntityTree | None:
    """A random record of `table` and what the foreign keys reach from it, both ways, breadth first."""
    edit = edit or (lambda _table, row: row)
    raw = rows.random_row(table, rng)
    root_row = edit(db_schema.table(table), json_value(raw)) if raw is not None else None
    if root_row is None:
        return None
    root = EntityNode(table, root_row, 0)
    seen = {row_key(db_schema.table(table), root_row)}
    queue: deque[EntityNode] = deque([root])
    budget = MAX_NODES - 1
    while queue:
        node = queue.popleft()
        found = _parents(rows, db_schema, node, seen, edit) + _children(rows, db_schema, node, seen, edit, rng)
        kept = found[:budget]
        _drop_beyond_budget(node, found[len(kept):])
        budget -= len(kept)
        for child in kept:
            if child.depth < MAX_DEPTH:
                queue.append(child)
            else:
                _count_children(rows, db_schema, child, rng)  # a frontier node: how many reference it, not which
    return EntityTree(root)


def _parents(rows: RowSource, db_schema: DatabaseSchema, node: EntityNode, seen: set, edit: RowEdit) -> list:
    found = []
    for fk in db_schema.table(node.table).foreign_keys:
        value = node.row.get(fk.columns[0])
        if len(fk.columns) != 1 or value is None:
            continue
        raw = rows.row_by_key(fk.ref_table, fk.ref_columns[0], value)
        parent_table = db_schema.table(fk.ref_table)
        row = edit(parent_table, json_value(raw)) if raw is not None else None
        if row is None or row_key(parent_table, row) in seen:
            continue  # the row we came from is not its own grandparent
        seen.add(row_key(parent_table, row))
        parent = EntityNode(fk.ref_table, row, node.depth + 1)
        node.parents[fk.columns[0]] = parent
        found.append(parent)
    return found


def _children(rows: RowSource, db_schema: DatabaseSchema, node: EntityNode, seen: set, edit: RowEdit,
              rng: random.Random) -> list:
    found = []
    for child_table, fk in referencing_relations(db_schema, node.table):
        relation = f"{child_table.name}.{fk.columns[0]}"
        value = node.row.get(fk.ref_columns[0])
        sampled, total = rows.referencing_rows(child_table.name, fk.columns[0], value, MAX_CHILDREN, rng) \
            if value is not None else ([], 0)
        node.child_counts[relation] = total
        kept = []
        for raw in sampled:
            row = edit(child_table, json_value(raw))
            if row is not None and row_key(child_table, row) not in seen:
                seen.add(row_key(child_table, row))
                kept.append(EntityNode(child_table.name, row, node.depth + 1))
        node.children[relation] = kept
        found += kept
    return found


def _count_children(rows: RowSource, db_schema: DatabaseSchema, node: EntityNode, rng: random.Random) -> None:
    for child_table, fk in referencing_relations(db_schema, node.table):
        value = node.row.get(fk.ref_columns[0])
        node.child_counts[f"{child_table.name}.{fk.columns[0]}"] = \
            rows.referencing_rows(child_table.name, fk.columns[0], value, 0, rng)[1] if value is not None else 0


def _drop_beyond_budget(node: EntityNode, dropped: list[EntityNode]) -> None:
    """Rows found past the node budget leave the tree (their relation's count still says they exist)."""
    if not dropped:
        return
    gone = {id(n) for n in dropped}
    node.parents = {c: p for c, p in node.parents.items() if id(p) not in gone}
    node.children = {r: [c for c in kids if id(c) not in gone] for r, kids in node.children.items()}
