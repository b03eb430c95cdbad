"""Plausible rows for tables a source leaves empty (a schema shared as DDL only, a Spider table without data).

Tool synthesis verifies every tool by executing it with arguments drawn from real rows, so an empty table yields no
tool. Rows generated here respect what the schema declares: column types, NOT NULL, primary keys and unique column
sets (a candidate row that repeats one is redrawn) and foreign keys (each reference is drawn from the parent's rows;
tables come parents first, and a table referencing itself references one of its earlier rows, or the row itself
when the reference is NOT NULL). Values come from Faker, picked by column name and type, seeded so that the same
schema and seed give the same rows. Dates lie in fixed ranges, not relative to today, for the same reason.
"""
from __future__ import annotations

import datetime as dt
import random
import re
from decimal import Decimal
from typing import Any, Callable

from faker import Faker

from shared.env.dbschema import Column, DatabaseSchema, DomainData, ForeignKey, Table

DEFAULT_ROWS_PER_TABLE = 30
ATTEMPTS_PER_ROW = 20  # candidate rows drawn per wanted row before giving up on uniqueness
DATE_RANGE = (dt.date(2015, 1, 1), dt.date(2024, 12, 31))
BIRTH_DATE_RANGE = (dt.date(1950, 1, 1), dt.date(2005, 12, 31))

Generator = Callable[[Faker], Any]

# Column-name patterns (on the stored snake-case name), first match wins: specific names before general ones.
TEXT_BY_NAME: list[tuple[str, Generator]] = [
    (r"e_?mail", lambda f: f.email()),
    (r"phone|mobile|fax|(^|_)tel($|_)", lambda f: f.phone_number()),
    (r"first_?name|fname|given_name", lambda f: f.first_name()),
    (r"last_?name|lname|surname|family_name", lambda f: f.last_name()),
    (r"zip|post_?code|postal", lambda f: f.postcode()),
    (r"code|abbrev", lambda f: f.bothify("???").upper()),
    (r"address|street", lambda f: f.street_address()),
    (r"city|town|location", lambda f: f.city()),
    (r"country|nationality", lambda f: f.country()),
    (r"state|province|region", lambda f: f.state()),
    (r"url|website|homepage", lambda f: f.url()),
    (r"company|airline|maker|manufacturer|brand|employer|vendor|supplier", lambda f: f.company()),
    (r"desc|details|comment|note|summary|remark", lambda f: f.sentence(nb_words=8)),
    (r"gender|sex", lambda f: f.random_element(["F", "M"])),
    (r"status", lambda f: f.random_element(["active", "pending", "closed"])),
    (r"currency", lambda f: f.currency_code()),
    (r"colou?r", lambda f: f.color_name()),
    (r"job|occupation|position|role", lambda f: f.job()),
    (r"title", lambda f: f.sentence(nb_words=3).rstrip(".")),
]
# Tables whose `name` column names a person rather than a place, team or product.
PERSON_TABLE = re.compile(
    r"person|people|student|customer|client|employee|staff|member|user|player|singer|artist|actor|author|"
    r"physician|doctor|nurse|patient|driver|owner|pilot|teacher|instructor|manager|bowler|guest|passenger|contact")
AMOUNT = re.compile(r"price|amount|cost|salary|balance|fee|total|pay|income|revenue|earning|budget|charge")
RATIO = re.compile(r"rate|ratio|percent|pct|share")


def fill_empty_tables(data: DomainData, *, rows_per_table: int = DEFAULT_ROWS_PER_TABLE,
                      seed: int = 0) -> dict[str, int]:
    """Fill every table of `data` that has no rows, in place; returns the rows generated per filled table."""
    fake = Faker("en_US")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    filled: dict[str, int] = {}
    for table in data.db_schema.tables:  # parents before children
        if rows_per_table <= 0 or data.rows.get(table.name):
            continue
        rows = _TableFiller(data.db_schema, table, data.rows, fake, rng).rows(rows_per_table)
        data.rows[table.name] = rows
        filled[table.name] = len(rows)
    return filled


class _TableFiller:
    def __init__(self, schema: DatabaseSchema, table: Table, rows_by_table: dict[str, list[list[Any]]],
                 fake: Faker, rng: random.Random):
        self.schema, self.table, self.rows_by_table, self.fake, self.rng = schema, table, rows_by_table, fake, rng
        self.names = [c.name for c in table.columns]
        self.unique_sets = [key for key in [table.primary_key, *table.unique_keys] if key]
        self.self_references = [fk for fk in table.foreign_keys if fk.ref_table == table.name]
        self.references = [fk for fk in table.foreign_keys if fk.ref_table != table.name]

    def rows(self, wanted: int) -> list[list[Any]]:
        made: list[list[Any]] = []
        seen: list[set[tuple]] = [set() for _ in self.unique_sets]
        for _ in range(wanted * ATTEMPTS_PER_ROW):
            if len(made) == wanted:
                break
            row = self._candidate(made)
            if row is None:
                continue
            keys = [tuple(row[self.names.index(c)] for c in key) for key in self.unique_sets]
            # UNIQUE lets rows repeat a key that holds NULL; a primary key never holds one (its columns are NOT NULL)
            if any(None not in k and k in s for k, s in zip(keys, seen)):
                continue
            for k, s in zip(keys, seen):
                s.add(k)
            made.append(row)
        return made

    def _candidate(self, made: list[list[Any]]) -> list[Any] | None:
        """One row, or None when a NOT NULL reference has no parent row to point at."""
        values: dict[str, Any] = {}
        for fk in self.references:
            if not self._refer(fk, values, self._keys_of(fk, self.rows_by_table.get(fk.ref_table, []))):
                return None
        for column in self.table.columns:
            if column.name not in values and not any(column.name in fk.columns for fk in self.self_references):
                values[column.name] = self._value(column, len(made))
        for fk in self.self_references:
            own_key = [tuple(values.get(c) for c in fk.ref_columns)]
            earlier = self._keys_of(fk, made)
            # the first row of a nullable hierarchy is its root; a NOT NULL one may point at itself
            if not self._refer(fk, values, earlier or ([] if self._nullable(fk) else own_key)):
                return None
        return [values[name] for name in self.names]

    def _keys_of(self, fk: ForeignKey, parent_rows: list[list[Any]]) -> list[tuple]:
        names = [c.name for c in self.schema.table(fk.ref_table).columns]
        idx = [names.index(c) for c in fk.ref_columns]
        return [key for key in (tuple(r[i] for i in idx) for r in parent_rows) if None not in key]

    def _refer(self, fk: ForeignKey, values: dict[str, Any], parent_keys: list[tuple]) -> bool:
        """Set the reference's columns to one parent key that agrees with columns already set (by an overlapping
        foreign key); NULL when none does and the columns allow it."""
        fits = [k for k in parent_keys
                if all(values[c] == v for c, v in zip(fk.columns, k) if c in values)]
        if fits:
            values.update(zip(fk.columns, self.rng.choice(fits)))
            return True
        if not self._nullable(fk):
            return False
        values.update({c: None for c in fk.columns if c not in values})
        return True

    def _nullable(self, fk: ForeignKey) -> bool:
        return all(self.table.column(c).nullable for c in fk.columns)

    def _value(self, column: Column, row_number: int) -> Any:
        if column.type in ("integer", "bigint") and [column.name] in self.unique_sets:
            return row_number + 1  # a surrogate key, numbered as the database would
        return value_for(column, self.table.name, self.fake)


def value_for(column: Column, table_name: str, fake: Faker) -> Any:
    """A plausible value for a column of the given type, chosen by its name."""
    name = column.name.lower()
    if column.type in ("integer", "bigint"):
        return _integer_for(name, fake)
    if column.type in ("numeric", "double precision"):
        number = _number_for(name, fake)
        return Decimal(str(number)) if column.type == "numeric" else number
    if column.type == "boolean":
        return fake.boolean()
    if column.type == "date":
        return fake.date_between_dates(*(BIRTH_DATE_RANGE if re.search(r"birth|dob", name) else DATE_RANGE))
    if column.type == "timestamp":
        start, end = (dt.datetime.combine(d, dt.time()) for d in DATE_RANGE)
        return fake.date_time_between_dates(start, end).replace(microsecond=0)
    return _text_for(name, table_name, fake)


def _integer_for(name: str, fake: Faker) -> int:
    if "year" in name:
        return fake.random_int(1990, 2024)
    if re.search(r"(^|_)age($|_)", name):
        return fake.random_int(18, 80)
    if re.search(r"count|num|quantity|qty|capacity|stock", name):
        return fake.random_int(1, 100)
    return fake.random_int(1, 1000)


def _number_for(name: str, fake: Faker) -> float:
    if RATIO.search(name):
        return round(fake.pyfloat(min_value=0, max_value=1), 3)
    if AMOUNT.search(name):
        return round(fake.pyfloat(min_value=5, max_value=5000), 2)
    return round(fake.pyfloat(min_value=0, max_value=1000), 2)


def _text_for(name: str, table_name: str, fake: Faker) -> str:
    for pattern, generate in TEXT_BY_NAME:
        if re.search(pattern, name):
            return generate(fake)
    if "name" in name:
        if PERSON_TABLE.search(table_name):
            return fake.name()
        return f"{fake.last_name()} {table_name.replace('_', ' ').title()}"  # "Garcia Stadium"
    return fake.word().capitalize()
