"""Deterministic generators for six small demo domain databases.

Each domain is one compact spec function: it declares its tables in dependency order with a column
generator per column, and the shared `Builder` turns that into a `DomainData` (schema plus rows).
All values come from the small vocabularies below and one `random.Random` seeded by (domain, seed),
so the same (name, seed) always gives identical data. Dates lie within 2023-01-01..2025-12-31.

Task-relevant times are `date` columns (plus a text `start_time` where needed): columns of type
timestamp or named `*_at` are treated as write stamps that the state hash ignores, so timestamps are
kept to audit columns such as `created_at` and `resolved_at`.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Callable

from shared.env.dbschema import Column, DatabaseSchema, DomainData, ForeignKey, Provenance, Table

DEMO_DOMAINS: tuple[str, ...] = ("telecom", "banking", "healthcare", "retail", "logistics", "education")

START, END = date(2023, 1, 1), date(2025, 12, 31)
LAST_TS = datetime(2025, 12, 31, 23, 59, 59)
CENT = Decimal("0.01")
NUM = "numeric(10,2)"

# --------------------------------------------------------------------------- vocabulary
FIRST_NAMES = (
    "Amelia Liam Olivia Noah Emma Mateo Sofia Lucas Ava Ethan Mia Arjun Chloe Kenji Zara Omar Hannah "
    "Diego Leila Samuel Grace Tomas Priya Jonah Nadia Felix Ingrid Malik Rosa Victor Elena Hugo Aisha "
    "Marco Yara Daniel Freya Rafael Clara Kwame Lena Andre Maya Julian Ines Theo Naomi Carlos Esme "
    "Oscar Sana Leon Ruth Idris Vera Pablo Hana Callum Lucia Emil"
).split()
LAST_NAMES = (
    "Anderson Baker Castillo Dubois Eriksen Fischer Garcia Haddad Ito Jensen Kowalski Larsen Moreau "
    "Nakamura Okafor Patel Quinn Rossi Schmidt Tanaka Usman Varga Walsh Xu Yilmaz Zimmerman Brennan "
    "Costa Delgado Ferreira Gallagher Horvat Ibrahim Kaur Lindqvist Mendes Novak Olsen Petrov Reyes "
    "Sato Torres Weber Abbott Bishop Carver Dawson Ellis Fletcher Hayes Keller Lowe Marsh Nolan "
    "Porter Ramsey Shaw Turner Vance Wright"
).split()
CITIES = (
    "Springfield Riverton Lakeside Fairview Greenville Madison Franklin Clinton Georgetown Salem "
    "Ashland Burlington Dayton Bristol Oxford Milton Newport Kingston Dover Camden Hudson Jackson "
    "Auburn Marion Clayton Lexington Arlington Winchester Manchester Chester Florence Plymouth Troy "
    "Bedford Easton Hamilton Monroe Weston Brighton Sheffield Glenwood Riverside"
).split()
STREETS = "Maple Oak Cedar Pine Elm Willow Birch Lake Hill River Park Mill Church Spring Ridge Meadow Sunset Harbor".split()
STREET_KINDS = ("St", "Ave", "Rd", "Blvd", "Ln", "Way", "Dr")
MAIL_DOMAINS = ("example.com", "example.net", "example.org")


# --------------------------------------------------------------------------- column specs
@dataclass(frozen=True)
class Col:
    name: str
    type: str
    gen: Callable[["Builder"], Any]
    nullable: bool = False
    desc: str = ""
    ref: str | None = None  # referenced table for a foreign-key column (its name is that table's key)
    unique: bool = False


def c(name: str, type_: str, gen: Callable[["Builder"], Any], desc: str = "", null: bool = False,
      unique: bool = False) -> Col:
    return Col(name, type_, gen, nullable=null, desc=desc, unique=unique)


def enum(name: str, options: dict[str, int], desc: str = "") -> Col:
    """A text column with a small closed set of values, drawn with the given weights."""
    values = ", ".join(f"'{o}'" for o in options)
    return Col(name, "text", lambda g: g.choice(options), desc=f"{desc} One of {values}.".strip())


def fk(table: str, desc: str = "", null: float = 0.0, cover: bool = False,
       where: Callable[["Builder", dict], bool] | None = None,
       gen: Callable[["Builder"], Any] | None = None, nullable: bool = False) -> Col:
    """A foreign key to `table`; `cover` spreads rows so every parent gets at least one child,
    `where` restricts the candidate parents (None when no parent fits and the column is nullable)."""
    is_null = bool(null) or nullable

    def pick(g: "Builder") -> Any:
        if null and g.rng.random() < null:
            return None
        return g.ref_id(table, cover=cover, where=where, nullable=is_null)

    return Col("", "integer", gen or pick, nullable=is_null, desc=desc, ref=table)


def person(email: bool = True, phone: bool = False, city: bool = False) -> list[Col]:
    cols = [c("first_name", "text", lambda g: g.choice(FIRST_NAMES)),
            c("last_name", "text", lambda g: g.choice(LAST_NAMES))]
    if email:
        cols.append(c("email", "text", lambda g: g.email(), unique=True))
    if phone:
        cols.append(c("phone", "text", lambda g: g.phone()))
    if city:
        cols.append(c("city", "text", lambda g: g.choice(CITIES)))
    return cols


def created(from_col: str | None = None) -> Col:
    return c("created_at", "timestamp", lambda g: g.ts(g.row[from_col] if from_col else None),
             "When the record was created.")


def dec(x: float) -> Decimal:
    return Decimal(f"{x:.2f}").quantize(CENT)


def type_ok(value: Any, type_: str) -> bool:
    if type_ in ("integer", "bigint"):
        return isinstance(value, int) and not isinstance(value, bool)
    if type_ == NUM:
        return isinstance(value, Decimal) and value.is_finite() and value.as_tuple().exponent == -2
    if type_ == "date":
        return isinstance(value, date) and not isinstance(value, datetime)
    if type_ == "timestamp":
        return isinstance(value, datetime) and value.tzinfo is None
    return isinstance(value, {"text": str, "boolean": bool}[type_])


# --------------------------------------------------------------------------- generic row builder
class Builder:
    """Builds tables in order; column generators read `self.row` (the row so far) and helpers."""

    def __init__(self, domain: str, seed: int):
        self.rng = random.Random(f"turnforge-demo/{domain}/{seed}")
        self.domain, self.description = domain, ""
        self.tables: list[Table] = []
        self.rows: dict[str, list[list[Any]]] = {}
        self.records: dict[str, list[dict[str, Any]]] = {}
        self.pk: dict[str, str] = {}
        self.i, self.row = 0, {}

    def table(self, name: str, singular: str, description: str, n: int, cols: list[Col],
              unique_together: tuple[str, ...] = ()) -> None:
        pk = f"{singular}_id"
        cols = [replace(x, name=self.pk[x.ref]) if x.ref else x for x in cols]
        table = Table(
            name=name, description=description, primary_key=[pk],
            columns=[Column(name=pk, type="integer", nullable=False,
                            description=f"Unique id of the {singular.replace('_', ' ')}.")]
            + [Column(name=x.name, type=x.type, nullable=x.nullable, description=x.desc) for x in cols],
            foreign_keys=[ForeignKey(columns=[x.name], ref_table=x.ref, ref_columns=[x.name])
                          for x in cols if x.ref],
        )
        seen: dict[str, set] = {x.name: set() for x in cols if x.unique}
        combos: set[tuple] = set()
        records: list[dict[str, Any]] = []
        for i in range(1, n + 1):
            self.i = i
            for _ in range(500):
                self.row = {pk: i}
                for x in cols:
                    for _ in range(500):
                        value = x.gen(self)
                        if not x.unique or value not in seen[x.name]:
                            break
                    else:
                        raise RuntimeError(f"{name}.{x.name}: cannot draw a unique value")
                    if not (value is None and x.nullable or type_ok(value, x.type)):
                        raise TypeError(f"{name}.{x.name}: {value!r} is not {x.type}")
                    self.row[x.name] = value
                key = tuple(self.row[k] for k in unique_together)
                if key not in combos or not unique_together:
                    break
            else:
                raise RuntimeError(f"{name}: cannot draw a unique {unique_together}")
            combos.add(key)
            for col_name, values in seen.items():
                values.add(self.row[col_name])
            records.append(self.row)
        self.tables.append(table)
        self.pk[name], self.records[name] = pk, records
        self.rows[name] = [[r[col.name] for col in table.columns] for r in records]

    def rollup(self, table: str, column: str, child: str, child_column: str) -> None:
        """Set `table.column` to the sum of `child.child_column` over each row's children."""
        key, sums = self.pk[table], {}
        for r in self.records[child]:
            sums[r[key]] = sums.get(r[key], Decimal("0.00")) + r[child_column]
        idx = [col.name for col in self.tables[list(self.pk).index(table)].columns].index(column)
        for rec, row in zip(self.records[table], self.rows[table]):
            rec[column] = row[idx] = sums.get(rec[key], Decimal("0.00"))

    def result(self) -> DomainData:
        schema = DatabaseSchema(name=self.domain, description=self.description, tables=self.tables,
                                provenance=Provenance(generator="TurnForge's demo database generator"))
        return DomainData(db_schema=schema, rows=self.rows)

    # ---- references
    def ref_id(self, table: str, cover: bool = False, where=None, nullable: bool = False) -> int | None:
        candidates = self.records[table]
        if where is not None:
            candidates = [r for r in candidates if where(self, r)]
            if not candidates:
                if nullable:
                    return None
                candidates = self.records[table]
        rec = candidates[(self.i - 1) % len(candidates)] if cover else self.rng.choice(candidates)
        return rec[self.pk[table]]

    def parent(self, table: str) -> dict[str, Any]:
        """The referenced row of `table` for the row being built (its key column must be set)."""
        return self.records[table][self.row[self.pk[table]] - 1]

    # ---- value helpers
    def choice(self, options):
        if isinstance(options, dict):
            return self.rng.choices(list(options), weights=list(options.values()))[0]
        return self.rng.choice(options)

    def randint(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def money(self, lo: float, hi: float) -> Decimal:
        return (Decimal(self.rng.randint(round(lo * 100), round(hi * 100))) / 100).quantize(CENT)

    def digits(self, n: int) -> str:
        return "".join(str(self.rng.randint(0, 9)) for _ in range(n))

    def email(self) -> str:
        first, last = self.row["first_name"].lower(), self.row["last_name"].lower()
        local = self.choice((f"{first}.{last}", f"{first[0]}{last}", f"{first}{last[:3]}", f"{last}.{first}"))
        return f"{local}{self.randint(1, 99)}@{self.choice(MAIL_DOMAINS)}"

    def phone(self) -> str:
        return f"+1-555-{self.randint(200, 989):03d}-{self.digits(4)}"

    def address(self) -> str:
        return f"{self.randint(1, 9800)} {self.choice(STREETS)} {self.choice(STREET_KINDS)}"

    def full_name(self) -> str:
        return f"{self.choice(FIRST_NAMES)} {self.choice(LAST_NAMES)}"

    def date(self, lo: date = START, hi: date = END) -> date:
        return lo + timedelta(days=self.rng.randint(0, (hi - lo).days))

    def after(self, d: date, lo_days: int, hi_days: int) -> date:
        """A date lo..hi days after `d`, drawn within the part of that window before END."""
        return self.date(min(END, d + timedelta(days=lo_days)), min(END, d + timedelta(days=hi_days)))

    def before(self, d: date, lo_days: int, hi_days: int) -> date:
        return max(START, d - timedelta(days=self.rng.randint(lo_days, hi_days)))

    def month(self) -> date:
        return self.date().replace(day=1)

    def ts(self, d: date | None = None) -> datetime:
        d = d if d is not None else self.date()
        return datetime.combine(d, time(self.randint(7, 21), self.randint(0, 59), self.randint(0, 59)))


# --------------------------------------------------------------------------- telecom
PLAN_TIERS = "Nova Pulse Orbit Spark Metro Horizon Summit Zenith".split()
PLAN_KINDS = {"Talk": "prepaid", "Lite": "prepaid", "Plus": "postpaid", "Unlimited": "postpaid",
              "Family": "family", "Business": "business", "Pro": "business"}
PLAN_FEES = {"prepaid": (10, 30), "postpaid": (35, 85), "family": (70, 150), "business": (45, 120)}
DEVICE_BRANDS = ("Brightwave", "Kestrel", "Lumio", "Tessera", "Vantor", "Quillon")
TICKET_SUBJECTS = {
    "billing": ("Charged twice this month", "Late fee dispute", "Invoice total looks wrong", "Refund not received"),
    "network": ("No signal at home", "Slow data speeds downtown", "Calls keep dropping", "Voicemail not working"),
    "device": ("Phone will not activate", "SIM card not recognized", "Screen replacement request", "Battery drains fast"),
    "roaming": ("Data not working abroad", "Roaming pack not applied", "Unexpected roaming charges"),
    "account": ("Update billing address", "Change account holder name", "Port number out", "Reset account PIN"),
}


def _telecom(b: Builder) -> None:
    b.description = "A mobile carrier's customers, tariff plans, subscriptions, devices, monthly invoices and support tickets."
    b.table("plans", "plan", "Tariff plans the carrier sells.", 40, [
        c("name", "text", lambda g: f"{g.choice(PLAN_TIERS)} {g.choice(list(PLAN_KINDS))}", "Marketing name of the plan.", unique=True),
        c("plan_type", "text", lambda g: PLAN_KINDS[g.row["name"].split()[1]],
          "One of 'prepaid', 'postpaid', 'family', 'business'."),
        c("data_gb", "integer", lambda g: None if "Unlimited" in g.row["name"] else g.choice((2, 5, 10, 20, 40, 60, 100)),
          "Monthly data allowance in GB; NULL means unlimited.", null=True),
        c("monthly_fee", NUM, lambda g: g.money(*PLAN_FEES[g.row["plan_type"]]), "List price per month in USD."),
        c("includes_roaming", "boolean", lambda g: g.chance(0.35)),
        enum("status", {"active": 80, "retired": 20}, "Whether the plan can still be sold."),
        c("launched_date", "date", lambda g: g.date(START, date(2025, 6, 30))),
        created("launched_date"),
    ])
    b.table("customers", "customer", "People and companies holding an account with the carrier.", 150, [
        *person(phone=True, city=True),
        enum("segment", {"consumer": 80, "business": 20}),
        enum("status", {"active": 80, "suspended": 12, "closed": 8}, "Account status."),
        c("signup_date", "date", lambda g: g.date(START, date(2025, 3, 31))),
        created("signup_date"),
    ])
    b.table("subscriptions", "subscription", "A phone line of a customer on one plan.", 220, [
        fk("customers", cover=True), fk("plans"),
        c("phone_number", "text", lambda g: g.phone(), "The line's phone number.", unique=True),
        enum("status", {"active": 75, "suspended": 10, "cancelled": 15}),
        c("start_date", "date", lambda g: g.after(g.parent("customers")["signup_date"], 0, 300)),
        c("end_date", "date", lambda g: g.after(g.row["start_date"], 30, 500) if g.row["status"] == "cancelled" else None,
          "Set when the subscription was cancelled.", null=True),
        c("monthly_price", NUM, lambda g: (g.parent("plans")["monthly_fee"] * g.choice((100, 100, 100, 90, 85, 75)) / 100).quantize(CENT),
          "Price the customer pays per month after any discount."),
        created("start_date"),
    ])
    b.table("devices", "device", "Handsets and modems registered to subscriptions.", 180, [
        fk("subscriptions", cover=True),
        c("brand", "text", lambda g: g.choice(DEVICE_BRANDS)),
        c("model", "text", lambda g: f"{g.row['brand']} {g.choice(('X', 'Pro', 'Lite', 'Max', 'Mini', 'Go'))} {g.randint(3, 14)}"),
        c("imei", "text", lambda g: g.digits(15), "15-digit device identifier.", unique=True),
        c("purchase_price", NUM, lambda g: g.money(99, 1399)),
        c("is_5g", "boolean", lambda g: g.chance(0.6)),
        enum("status", {"in_use": 80, "replaced": 15, "lost": 5}),
        c("activated_date", "date", lambda g: g.after(g.parent("subscriptions")["start_date"], 0, 200)),
        created("activated_date"),
    ])
    b.table("invoices", "invoice", "Monthly bills issued per subscription.", 300, [
        fk("subscriptions"),
        c("billing_month", "date", lambda g: g.month(), "First day of the billed month."),
        c("amount_due", NUM, lambda g: g.parent("subscriptions")["monthly_price"] + g.choice((0, 0, 1)) * g.money(0, 40)),
        enum("status", {"paid": 70, "unpaid": 18, "overdue": 12}),
        c("amount_paid", NUM, lambda g: g.row["amount_due"] if g.row["status"] == "paid" else g.choice((Decimal("0.00"), g.money(0, 10)))),
        c("due_date", "date", lambda g: g.after(g.row["billing_month"], 20, 20)),
        created("billing_month"),
    ])
    b.table("support_tickets", "ticket", "Customer support requests.", 120, [
        fk("customers"),
        fk("subscriptions", "The customer's line concerned, if any.", null=0.15,
           where=lambda g, r: r["customer_id"] == g.row["customer_id"]),
        enum("category", {"billing": 30, "network": 25, "device": 20, "roaming": 10, "account": 15}),
        c("subject", "text", lambda g: g.choice(TICKET_SUBJECTS[g.row["category"]])),
        enum("priority", {"low": 30, "medium": 40, "high": 22, "urgent": 8}),
        enum("status", {"open": 25, "in_progress": 20, "resolved": 35, "closed": 20}),
        created(),
        c("resolved_at", "timestamp", lambda g: min(LAST_TS, g.row["created_at"] + timedelta(hours=g.randint(1, 240)))
          if g.row["status"] in ("resolved", "closed") else None, "When the ticket was resolved.", null=True),
    ])


# --------------------------------------------------------------------------- banking
MERCHANT_WORDS = ("Harbor", "Maple", "Summit", "Copper", "Lantern", "Golden", "Riverside", "Juniper", "Blue Door", "Old Mill")
MERCHANT_KINDS = ("Grocers", "Cafe", "Pharmacy", "Hardware", "Books", "Fuel", "Bistro", "Outfitters", "Market", "Cinema")
LOAN_RANGES = {"mortgage": (80_000, 650_000, (180, 240, 360)), "auto": (6_000, 55_000, (36, 48, 60, 72)),
               "personal": (1_000, 30_000, (12, 24, 36, 60)), "student": (5_000, 80_000, (60, 120)),
               "business": (20_000, 400_000, (36, 60, 120))}
TXN_RANGES = {"deposit": (20, 6000), "withdrawal": (20, 1500), "card_payment": (3, 600), "transfer": (25, 10000),
              "fee": (1, 45), "interest": (0.05, 120)}


def _payment(principal: Decimal, rate: Decimal, months: int) -> Decimal:
    r = float(rate) / 1200
    return dec(float(principal) * r / (1 - (1 + r) ** -months))


def _banking(b: Builder) -> None:
    b.description = "A retail bank's branches, customers, deposit accounts, cards, account transactions and loans."
    b.table("branches", "branch", "Physical bank branches.", 40, [
        c("name", "text", lambda g: f"{g.choice(CITIES)} {g.choice(('Main', 'Downtown', 'Northgate', 'Westfield', 'Eastside'))} Branch", unique=True),
        c("city", "text", lambda g: g.row["name"].split()[0]),
        c("address", "text", lambda g: g.address()),
        c("manager_name", "text", lambda g: g.full_name()),
        c("phone", "text", lambda g: g.phone()),
        c("opened_date", "date", lambda g: g.date(START, date(2024, 6, 30))),
        created("opened_date"),
    ])
    b.table("customers", "customer", "Bank customers; each has a home branch.", 160, [
        fk("branches", "Home branch."), *person(phone=True, city=True),
        c("birth_year", "integer", lambda g: g.randint(1945, 2005)),
        c("credit_score", "integer", lambda g: g.randint(480, 850), "Credit bureau score, 300-850."),
        c("kyc_verified", "boolean", lambda g: g.chance(0.92), "Identity checks completed."),
        enum("status", {"active": 85, "frozen": 7, "closed": 8}),
        c("joined_date", "date", lambda g: g.date(START, date(2025, 3, 31))),
        created("joined_date"),
    ])
    b.table("accounts", "account", "Deposit accounts held by customers.", 220, [
        fk("customers", cover=True), fk("branches", gen=lambda g: g.parent("customers")["branch_id"]),
        c("account_number", "text", lambda g: g.digits(10), unique=True),
        enum("account_type", {"checking": 45, "savings": 35, "business": 10, "money_market": 10}),
        enum("currency", {"USD": 85, "EUR": 10, "GBP": 5}),
        c("balance", NUM, lambda g: g.money(0, 250_000 if g.row["account_type"] != "checking" else 18_000), "Current balance."),
        c("overdraft_limit", NUM, lambda g: g.money(100, 2500) if g.row["account_type"] == "checking" else None,
          "Checking accounts only.", null=True),
        enum("status", {"active": 86, "frozen": 6, "closed": 8}),
        c("opened_date", "date", lambda g: g.after(g.parent("customers")["joined_date"], 0, 200)),
        created("opened_date"),
    ])
    b.table("cards", "card", "Debit and credit cards linked to accounts.", 150, [
        fk("accounts"),
        enum("card_type", {"debit": 65, "credit": 35}),
        enum("network", {"visa": 55, "mastercard": 40, "amex": 5}),
        c("last_four", "text", lambda g: g.digits(4), "Last four digits of the card number."),
        c("credit_limit", NUM, lambda g: g.money(500, 20000) if g.row["card_type"] == "credit" else None, null=True),
        c("issued_date", "date", lambda g: g.after(g.parent("accounts")["opened_date"], 0, 60)),
        c("expiry_date", "date", lambda g: g.date(g.after(g.row["issued_date"], 120, 120))),
        c("is_active", "boolean", lambda g: g.chance(0.85)),
        created("issued_date"),
    ])
    b.table("transactions", "transaction", "Money movements on accounts; the amount is always positive.", 300, [
        fk("accounts"),
        enum("txn_type", {"deposit": 25, "withdrawal": 20, "card_payment": 30, "transfer": 15, "fee": 5, "interest": 5},
             "Direction follows the type."),
        c("amount", NUM, lambda g: g.money(*TXN_RANGES[g.row["txn_type"]])),
        c("merchant", "text", lambda g: f"{g.choice(MERCHANT_WORDS)} {g.choice(MERCHANT_KINDS)}"
          if g.row["txn_type"] == "card_payment" else None, "Card payments only.", null=True),
        enum("status", {"posted": 90, "pending": 7, "reversed": 3}),
        c("posted_date", "date", lambda g: g.after(g.parent("accounts")["opened_date"], 0, 700)),
        created("posted_date"),
    ])
    b.table("loans", "loan", "Loans granted to customers.", 90, [
        fk("customers"), fk("branches", gen=lambda g: g.parent("customers")["branch_id"]),
        enum("loan_type", {"mortgage": 25, "auto": 25, "personal": 30, "student": 10, "business": 10}),
        c("principal", NUM, lambda g: g.money(*LOAN_RANGES[g.row["loan_type"]][:2]).quantize(Decimal("1")).quantize(CENT)),
        c("interest_rate", NUM, lambda g: g.money(2.5, 14.99), "Annual rate in percent."),
        c("term_months", "integer", lambda g: g.choice(LOAN_RANGES[g.row["loan_type"]][2])),
        c("monthly_payment", NUM, lambda g: _payment(g.row["principal"], g.row["interest_rate"], g.row["term_months"])),
        enum("status", {"pending": 10, "approved": 10, "active": 55, "paid_off": 18, "defaulted": 7}),
        c("start_date", "date", lambda g: g.after(g.parent("customers")["joined_date"], 10, 400)),
        created("start_date"),
    ])


# --------------------------------------------------------------------------- healthcare
SPECIALTIES = ("Cardiology", "Dermatology", "Emergency Medicine", "Endocrinology", "Family Medicine", "Gastroenterology",
               "Neurology", "Obstetrics", "Oncology", "Ophthalmology", "Orthopedics", "Pediatrics", "Psychiatry", "Radiology")
CAMPUSES = ("North Campus", "Riverside Campus", "Central Hospital", "Westside Clinic", "Lakeside Clinic")
VISIT_REASONS = ("Annual checkup", "Follow-up visit", "Chest pain", "Persistent cough", "Skin rash", "Back pain",
                 "Headaches", "Medication review", "Knee injury", "Blood pressure check", "Vaccination", "Fatigue")
MEDICATIONS = {"amoxicillin": (250, 500), "lisinopril": (10, 20), "metformin": (500, 1000), "atorvastatin": (10, 40),
               "ibuprofen": (200, 400), "omeprazole": (20, 40), "sertraline": (50, 100), "levothyroxine": (50, 100),
               "amlodipine": (5, 10), "cetirizine": (10,), "prednisone": (5, 20), "albuterol": (90,)}
INSURERS = ("Bluecrest Health", "Meridian Care", "Unity Mutual", "Northstar Insurance", "Harborview Plans")


def _healthcare(b: Builder) -> None:
    b.description = "A hospital network's departments, doctors, patients, appointments and prescriptions."
    b.table("departments", "department", "Clinical departments, one specialty at one campus.", 40, [
        c("name", "text", lambda g: g.choice(SPECIALTIES), "Specialty name."),
        c("campus", "text", lambda g: g.choice(CAMPUSES)),
        c("floor", "integer", lambda g: g.randint(1, 8)),
        c("phone_extension", "text", lambda g: g.digits(4)),
        c("annual_budget", NUM, lambda g: g.money(400_000, 6_000_000)),
        created(),
    ], unique_together=("name", "campus"))
    b.table("doctors", "doctor", "Physicians, each attached to one department.", 80, [
        fk("departments", cover=True), *person(phone=True),
        c("license_number", "text", lambda g: f"MD-{g.digits(6)}", unique=True),
        c("consultation_fee", NUM, lambda g: g.money(80, 350), "Fee per appointment in USD."),
        c("is_accepting_patients", "boolean", lambda g: g.chance(0.8)),
        enum("status", {"active": 90, "on_leave": 7, "retired": 3}),
        c("hire_date", "date", lambda g: g.date(START, date(2025, 6, 30))),
        created("hire_date"),
    ])
    b.table("patients", "patient", "Registered patients.", 200, [
        c("first_name", "text", lambda g: g.choice(FIRST_NAMES)), c("last_name", "text", lambda g: g.choice(LAST_NAMES)),
        c("birth_year", "integer", lambda g: g.randint(1935, 2022)),
        enum("gender", {"female": 49, "male": 49, "other": 2}),
        c("email", "text", lambda g: g.email() if g.chance(0.8) else None, null=True),
        c("phone", "text", lambda g: g.phone()),
        c("city", "text", lambda g: g.choice(CITIES)),
        c("insurance_provider", "text", lambda g: g.choice(INSURERS) if g.chance(0.85) else None, "NULL when self-paying.", null=True),
        enum("blood_type", {"O+": 37, "A+": 34, "B+": 9, "AB+": 3, "O-": 7, "A-": 6, "B-": 2, "AB-": 2}),
        c("registered_date", "date", lambda g: g.date()),
        created("registered_date"),
    ])
    b.table("appointments", "appointment", "Scheduled visits of patients with doctors.", 300, [
        fk("patients", cover=True), fk("doctors"),
        c("appointment_date", "date", lambda g: g.after(g.parent("patients")["registered_date"], 0, 400)),
        c("start_time", "text", lambda g: f"{g.randint(8, 17):02d}:{g.choice((0, 15, 30, 45)):02d}", "Local time, HH:MM."),
        c("duration_minutes", "integer", lambda g: g.choice((15, 20, 30, 45, 60))),
        c("reason", "text", lambda g: g.choice(VISIT_REASONS)),
        enum("status", {"scheduled": 25, "completed": 60, "cancelled": 10, "no_show": 5}),
        c("fee", NUM, lambda g: g.parent("doctors")["consultation_fee"]),
        c("created_at", "timestamp", lambda g: g.ts(g.before(g.row["appointment_date"], 1, 30)), "When the booking was made."),
    ])
    b.table("prescriptions", "prescription", "Medications prescribed during appointments.", 200, [
        fk("appointments", where=lambda g, r: r["status"] == "completed"),
        c("medication", "text", lambda g: g.choice(list(MEDICATIONS))),
        c("dosage", "text", lambda g: f"{g.choice(MEDICATIONS[g.row['medication']])} mg"),
        enum("frequency", {"once daily": 45, "twice daily": 30, "three times daily": 10, "as needed": 15}),
        c("quantity", "integer", lambda g: g.choice((10, 14, 20, 28, 30, 60, 90))),
        c("refills", "integer", lambda g: g.randint(0, 5)),
        c("cost", NUM, lambda g: g.money(4, 180)),
        enum("status", {"active": 50, "completed": 40, "discontinued": 10}),
        c("prescribed_date", "date", lambda g: g.parent("appointments")["appointment_date"]),
        created("prescribed_date"),
    ])


# --------------------------------------------------------------------------- retail
CATEGORIES = {  # department -> {category: item noun}
    "Kitchen": {"Cookware": "Skillet", "Cutlery": "Chef Knife", "Bakeware": "Baking Tray", "Small Appliances": "Blender", "Tableware": "Dinner Plate Set"},
    "Home": {"Bedding": "Duvet Cover", "Lighting": "Table Lamp", "Rugs": "Area Rug", "Storage": "Storage Bin", "Decor": "Wall Mirror", "Bath": "Towel Set"},
    "Outdoor": {"Camping": "Tent", "Gardening": "Pruning Shears", "Grills": "Charcoal Grill", "Patio": "Patio Chair", "Cycling": "Bike Helmet"},
    "Electronics": {"Audio": "Wireless Earbuds", "Computer Accessories": "Keyboard", "Cameras": "Action Camera", "Smart Home": "Smart Plug", "Chargers": "Power Bank", "Wearables": "Fitness Band"},
    "Apparel": {"Outerwear": "Rain Jacket", "Footwear": "Running Shoe", "Activewear": "Training Shorts", "Knitwear": "Wool Sweater", "Accessories": "Leather Belt"},
    "Toys": {"Puzzles": "Jigsaw Puzzle", "Building Sets": "Block Set", "Board Games": "Strategy Game", "Plush": "Plush Bear", "Outdoor Play": "Kite"},
    "Office": {"Stationery": "Notebook", "Desk Furniture": "Desk Chair", "Writing": "Fountain Pen", "Organization": "File Organizer"},
    "Grocery": {"Coffee & Tea": "Ground Coffee", "Snacks": "Trail Mix", "Pantry": "Olive Oil", "Beverages": "Sparkling Water", "Breakfast": "Granola"},
    "Beauty": {"Skincare": "Face Cream", "Haircare": "Shampoo", "Fragrance": "Eau de Parfum", "Bath & Body": "Body Wash"},
}
CATEGORY_DEPT = {cat: dept for dept, cats in CATEGORIES.items() for cat in cats}
CATEGORY_ITEM = {cat: item for cats in CATEGORIES.values() for cat, item in cats.items()}
PRODUCT_BRANDS = ("Altura", "Bramble", "Cobalt", "Driftwood", "Evergreen", "Foxglove", "Granite", "Halcyon", "Ironbark", "Juniper")
PRODUCT_ADJ = ("Classic", "Compact", "Deluxe", "Eco", "Premium", "Essential", "Pro", "Ultra", "Everyday", "Signature")
DEPT_PRICES = {"Kitchen": (8, 250), "Home": (10, 400), "Outdoor": (12, 600), "Electronics": (15, 900), "Apparel": (12, 280),
               "Toys": (6, 120), "Office": (3, 450), "Grocery": (2, 35), "Beauty": (5, 140)}


def _retail(b: Builder) -> None:
    b.description = "A retail chain's product catalogue, stores, customers, orders and order line items."
    b.table("categories", "category", "Product categories grouped into departments.", 40, [
        c("name", "text", lambda g: g.choice(list(CATEGORY_DEPT)), unique=True),
        c("department", "text", lambda g: CATEGORY_DEPT[g.row["name"]], "Store department the category belongs to."),
        c("is_seasonal", "boolean", lambda g: g.chance(0.2)),
        created(),
    ])
    b.table("stores", "store", "Physical stores of the chain.", 40, [
        c("name", "text", lambda g: f"{g.choice(CITIES)} {g.choice(('Plaza', 'Mall', 'Center', 'Outlet', 'Market', 'Commons'))}", unique=True),
        c("city", "text", lambda g: g.row["name"].split()[0]),
        c("address", "text", lambda g: g.address()),
        enum("region", {"north": 20, "south": 20, "east": 20, "west": 20, "central": 20}),
        c("square_feet", "integer", lambda g: g.randint(40, 600) * 100),
        enum("status", {"open": 85, "renovating": 10, "closed": 5}),
        c("opened_date", "date", lambda g: g.date(START, date(2024, 12, 31))),
        created("opened_date"),
    ])
    b.table("products", "product", "Items for sale.", 200, [
        fk("categories", cover=True),
        c("brand", "text", lambda g: g.choice(PRODUCT_BRANDS)),
        c("name", "text", lambda g: f"{g.row['brand']} {g.choice(PRODUCT_ADJ)} {CATEGORY_ITEM[g.parent('categories')['name']]}", unique=True),
        c("sku", "text", lambda g: f"SKU-{g.digits(7)}", "Stock keeping unit code.", unique=True),
        c("price", NUM, lambda g: g.money(*DEPT_PRICES[g.parent("categories")["department"]]), "Retail price in USD."),
        c("cost", NUM, lambda g: (g.row["price"] * g.randint(35, 70) / 100).quantize(CENT), "Unit purchase cost."),
        c("stock_quantity", "integer", lambda g: g.randint(0, 500)),
        c("is_active", "boolean", lambda g: g.chance(0.9)),
        created(),
    ])
    b.table("customers", "customer", "Registered shoppers.", 180, [
        *person(phone=True, city=True),
        enum("loyalty_tier", {"bronze": 50, "silver": 28, "gold": 16, "platinum": 6}),
        c("loyalty_points", "integer", lambda g: g.randint(0, 20000)),
        c("signup_date", "date", lambda g: g.date(START, date(2025, 6, 30))),
        created("signup_date"),
    ])
    b.table("orders", "order", "Customer orders, online or in a store.", 200, [
        fk("customers", cover=True),
        enum("channel", {"online": 55, "in_store": 45}),
        fk("stores", "Store of an in-store order; NULL for online orders.", nullable=True,
           gen=lambda g: None if g.row["channel"] == "online" else g.ref_id("stores")),
        enum("status", {"pending": 8, "paid": 12, "shipped": 15, "delivered": 55, "cancelled": 6, "returned": 4}),
        c("order_date", "date", lambda g: g.after(g.parent("customers")["signup_date"], 0, 500)),
        c("total_amount", NUM, lambda g: Decimal("0.00"), "Sum of the order's line totals."),
        created("order_date"),
    ])
    b.table("order_items", "order_item", "Line items of orders.", 300, [
        fk("orders", cover=True), fk("products"),
        c("quantity", "integer", lambda g: g.choice((1, 1, 1, 2, 2, 3, 4))),
        c("unit_price", NUM, lambda g: g.parent("products")["price"]),
        c("discount_amount", NUM, lambda g: (g.row["unit_price"] * g.row["quantity"] * g.choice((0, 0, 0, 5, 10, 20)) / 100).quantize(CENT)),
        c("line_total", NUM, lambda g: g.row["unit_price"] * g.row["quantity"] - g.row["discount_amount"], "Quantity times unit price minus discount."),
    ])
    b.rollup("orders", "total_amount", "order_items", "line_total")


# --------------------------------------------------------------------------- logistics
CARRIER_WORDS = ("Swift", "Blue Ridge", "Iron Horse", "Meridian", "Apex", "Coastal", "Redline", "Prairie", "Falcon", "Keystone", "Northbound", "Silverline")
CARRIER_KINDS = ("Freight", "Logistics", "Express", "Haulage", "Transport", "Couriers")
PACKAGE_CONTENTS = ("Electronics", "Apparel", "Books", "Auto parts", "Furniture parts", "Medical supplies", "Tools",
                    "Documents", "Cosmetics", "Kitchenware", "Toys", "Sporting goods")


def _logistics(b: Builder) -> None:
    b.description = "A logistics network's carriers, drivers, warehouses, shipments and the packages they carry."
    b.table("carriers", "carrier", "Transport companies contracted to move shipments.", 40, [
        c("name", "text", lambda g: f"{g.choice(CARRIER_WORDS)} {g.choice(CARRIER_KINDS)}", unique=True),
        enum("service_level", {"ground": 40, "express": 25, "freight": 25, "same_day": 10}),
        c("contact_email", "text", lambda g: f"dispatch@{g.row['name'].lower().replace(' ', '')}.example.com"),
        c("phone", "text", lambda g: g.phone()),
        c("rating", NUM, lambda g: g.money(2.5, 5.0), "Average customer rating, 0-5."),
        c("is_active", "boolean", lambda g: g.chance(0.85)),
        c("contract_start", "date", lambda g: g.date(START, date(2024, 12, 31))),
        created("contract_start"),
    ])
    b.table("warehouses", "warehouse", "Warehouses shipments leave from.", 40, [
        c("name", "text", lambda g: f"{g.choice(CITIES)} {g.choice(('Distribution Center', 'Fulfillment Hub', 'Depot', 'Cross-Dock'))}", unique=True),
        c("city", "text", lambda g: g.row["name"].split()[0]),
        c("address", "text", lambda g: g.address()),
        c("capacity_pallets", "integer", lambda g: g.randint(5, 120) * 100),
        c("manager_name", "text", lambda g: g.full_name()),
        enum("status", {"operational": 85, "maintenance": 10, "closed": 5}),
        c("opened_date", "date", lambda g: g.date(START, date(2024, 12, 31))),
        created("opened_date"),
    ])
    b.table("drivers", "driver", "Drivers employed by carriers.", 100, [
        fk("carriers", cover=True), *person(email=False, phone=True),
        c("license_number", "text", lambda g: f"DL{g.digits(8)}", unique=True),
        enum("license_class", {"A": 45, "B": 35, "C": 20}, "Commercial driving licence class."),
        enum("status", {"available": 45, "on_route": 35, "off_duty": 15, "suspended": 5}),
        c("hire_date", "date", lambda g: g.date(START, date(2025, 6, 30))),
        created("hire_date"),
    ])
    b.table("shipments", "shipment", "Loads moved by a carrier from a warehouse to a destination city.", 220, [
        fk("warehouses", "Origin warehouse."), fk("carriers"),
        fk("drivers", "Assigned driver of the same carrier, if any.", null=0.2,
           where=lambda g, r: r["carrier_id"] == g.row["carrier_id"]),
        c("destination_city", "text", lambda g: g.choice(CITIES)),
        enum("status", {"created": 12, "in_transit": 25, "delivered": 50, "delayed": 9, "returned": 4}),
        c("ship_date", "date", lambda g: g.date()),
        c("expected_delivery", "date", lambda g: g.after(g.row["ship_date"], 1, 7)),
        c("shipping_cost", NUM, lambda g: g.money(25, 4200)),
        c("total_weight_kg", NUM, lambda g: Decimal("0.00"), "Sum of the package weights."),
        created("ship_date"),
        c("delivered_at", "timestamp", lambda g: g.ts(g.after(g.row["ship_date"], 1, 9))
          if g.row["status"] == "delivered" else None, "When the shipment was delivered.", null=True),
    ])
    b.table("packages", "package", "Individual parcels within a shipment.", 300, [
        fk("shipments", cover=True),
        c("tracking_number", "text", lambda g: f"TF{g.digits(10)}", unique=True),
        c("contents", "text", lambda g: g.choice(PACKAGE_CONTENTS)),
        c("weight_kg", NUM, lambda g: g.money(0.2, 45)),
        c("declared_value", NUM, lambda g: g.money(5, 3000)),
        c("is_fragile", "boolean", lambda g: g.chance(0.25)),
        c("status", "text", lambda g: {"delivered": "delivered", "returned": "returned", "created": "at_warehouse"}.get(
            g.parent("shipments")["status"], "in_transit") if g.chance(0.97) else "damaged",
          "One of 'at_warehouse', 'in_transit', 'delivered', 'returned', 'damaged'."),
        c("created_at", "timestamp", lambda g: g.ts(g.parent("shipments")["ship_date"]), "When the record was created."),
    ])
    b.rollup("shipments", "total_weight_kg", "packages", "weight_kg")


# --------------------------------------------------------------------------- education
FIELDS = ("Mathematics", "Physics", "Chemistry", "Biology", "Computer Science", "Economics", "History", "Philosophy",
          "Psychology", "Sociology", "Linguistics", "English Literature", "Political Science", "Geography", "Geology",
          "Astronomy", "Statistics", "Anthropology", "Music", "Fine Arts", "Architecture", "Civil Engineering",
          "Mechanical Engineering", "Electrical Engineering", "Chemical Engineering", "Nursing", "Public Health",
          "Education", "Law", "Business Administration", "Accounting", "Finance", "Marketing", "Environmental Science",
          "Marine Biology", "Neuroscience", "Classics", "Theatre", "Film Studies", "Journalism", "Data Science",
          "Materials Science", "Agriculture", "Religious Studies")
BUILDINGS = ("Ashford Hall", "Bellamy Hall", "Carrow Building", "Dunmore Hall", "Elmstead Center", "Fairholm Building", "Greyson Hall")
COURSE_PREFIXES = ("Introduction to", "Foundations of", "Topics in", "Advanced", "Applied", "Seminar in",
                   "Research Methods in", "History of", "Contemporary")


def _abbr(field: str) -> str:
    words = field.split()
    return (words[0][:4] if len(words) == 1 else words[0][:2] + words[1][:2]).upper()


def _letter(score: Decimal) -> str:
    return next(letter for bound, letter in ((90, "A"), (80, "B"), (70, "C"), (60, "D"), (0, "F")) if score >= bound)


def _education(b: Builder) -> None:
    b.description = "A university's departments, teachers, courses, students, course enrollments and assessment grades."
    b.table("departments", "department", "Academic departments.", 40, [
        c("name", "text", lambda g: g.choice(FIELDS), unique=True),
        c("building", "text", lambda g: g.choice(BUILDINGS)),
        c("budget", NUM, lambda g: g.money(150_000, 2_500_000), "Annual budget in USD."),
        created(),
    ])
    b.table("teachers", "teacher", "Teaching staff, each in one department.", 80, [
        fk("departments", cover=True), *person(),
        enum("title", {"lecturer": 35, "assistant professor": 25, "associate professor": 22, "professor": 18}),
        c("salary", NUM, lambda g: g.money(52_000, 185_000), "Annual salary in USD."),
        c("is_tenured", "boolean", lambda g: g.row["title"] in ("associate professor", "professor") and g.chance(0.8)),
        c("hire_date", "date", lambda g: g.date(START, date(2025, 6, 30))),
        created("hire_date"),
    ])
    b.table("courses", "course", "Courses offered in a term and taught by one teacher.", 120, [
        fk("departments", cover=True),
        fk("teachers", "Teacher from the same department.", where=lambda g, r: r["department_id"] == g.row["department_id"]),
        c("code", "text", lambda g: f"{_abbr(g.parent('departments')['name'])} {g.randint(100, 499)}", "Catalogue code.", unique=True),
        c("title", "text", lambda g: f"{g.choice(COURSE_PREFIXES)} {g.parent('departments')['name']}", unique=True),
        enum("level", {"introductory": 40, "intermediate": 35, "advanced": 25}),
        c("credits", "integer", lambda g: g.choice((2, 3, 3, 4))),
        c("capacity", "integer", lambda g: g.choice((20, 25, 30, 40, 60, 80, 120))),
        enum("term", {f"{s} {y}": 1 for y in (2023, 2024, 2025) for s in ("Spring", "Fall")}),
        created(),
    ])
    b.table("students", "student", "Students enrolled at the university.", 200, [
        *person(city=True),
        c("enrollment_year", "integer", lambda g: g.randint(2019, 2025)),
        enum("status", {"enrolled": 75, "on_leave": 5, "graduated": 15, "withdrawn": 5}),
        c("gpa", NUM, lambda g: g.money(1.8, 4.0), "Grade point average, 0-4."),
        c("scholarship_amount", NUM, lambda g: g.money(500, 15000) if g.chance(0.3) else None,
          "Yearly scholarship in USD, if any.", null=True),
        created(),
    ])
    b.table("enrollments", "enrollment", "A student taking a course.", 260, [
        fk("students", cover=True), fk("courses"),
        c("enrolled_date", "date", lambda g: g.date(START, date(2025, 9, 1))),
        enum("status", {"active": 40, "completed": 50, "dropped": 10}),
        created("enrolled_date"),
    ], unique_together=("student_id", "course_id"))
    b.table("grades", "grade", "Assessment results within an enrollment.", 300, [
        fk("enrollments", cover=True),
        enum("assessment", {"quiz": 30, "midterm": 25, "project": 20, "final": 25}),
        c("score", NUM, lambda g: g.money(35, 100), "Score out of 100."),
        c("letter", "text", lambda g: _letter(g.row["score"]), "Letter grade: 'A', 'B', 'C', 'D' or 'F'."),
        c("graded_date", "date", lambda g: g.after(g.parent("enrollments")["enrolled_date"], 7, 120)),
        created("graded_date"),
    ])


# --------------------------------------------------------------------------- entry point
_SPECS: dict[str, Callable[[Builder], None]] = {
    "telecom": _telecom, "banking": _banking, "healthcare": _healthcare,
    "retail": _retail, "logistics": _logistics, "education": _education,
}


def build_demo(name: str, seed: int = 7) -> DomainData:
    """Build the demo database `name` (one of DEMO_DOMAINS); the same (name, seed) gives identical data."""
    if name not in _SPECS:
        raise ValueError(f"unknown demo domain {name!r}; choose one of {', '.join(DEMO_DOMAINS)}")
    builder = Builder(name, seed)
    _SPECS[name](builder)
    return builder.result()
