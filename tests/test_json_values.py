"""Database values become JSON one way, wherever they are shown, stored or compared."""
import datetime as dt
import json
import uuid
from decimal import Decimal

import pytest

from shared.env.json_values import json_value


@pytest.mark.parametrize("value,expected", [
    (dt.datetime(2024, 1, 1, 10, 0), "2024-01-01T10:00:00"),
    (dt.datetime(2024, 1, 1, 10, 0, tzinfo=dt.timezone.utc), "2024-01-01T10:00:00+00:00"),
    (dt.date(2024, 1, 1), "2024-01-01"),
    (dt.time(9, 30), "09:30:00"),
    (dt.timedelta(days=1, hours=2, minutes=30), "P1DT2H30M0S"),
    (dt.timedelta(seconds=1.5), "P0DT0H0M1.5S"),
    (-dt.timedelta(hours=3), "-P0DT3H0M0S"),
    (Decimal("12.00"), 12),
    (Decimal("12.50"), 12.5),
    (Decimal("123456789012345678901"), 123456789012345678901),  # exact: a float would round it
    (uuid.UUID("12345678-1234-5678-1234-567812345678"), "12345678-1234-5678-1234-567812345678"),
    (b"\x00\xff", "00ff"),
    (memoryview(b"\x01"), "01"),
    (True, True), (None, None), ("text", "text"), (3, 3), (2.5, 2.5),
])
def test_each_database_type_has_one_json_form(value, expected):
    assert json_value(value) == expected
    assert type(json_value(value)) is type(expected)


def test_arrays_and_documents_are_converted_element_by_element():
    value = {"days": [dt.date(2024, 1, 1), None], "amount": Decimal("1.5"), 7: (b"\x02",)}
    assert json_value(value) == {"days": ["2024-01-01", None], "amount": 1.5, "7": ["02"]}
    json.dumps(json_value(value))  # nothing left that JSON cannot carry
