"""Database values as JSON values: one conversion for everything that shows, stores or compares them.

The rows a tool call returns (what the agent sees), the sample arguments verification draws and the golden arguments
task planning takes from rows all pass through json_value, so a value the agent copies from a tool result equals the
value a golden action was planned with.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any


def json_value(value: Any) -> Any:
    """A value psycopg read, as JSON would carry it.

    Timestamps, dates and times are ISO 8601 text, intervals ISO 8601 durations; a decimal is an integer when whole
    (exact, as a float would not be beyond 2**53) and a float otherwise; UUIDs are their text, bytes their hex;
    arrays and JSON documents are converted element by element; any other type is its text.
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Decimal):
        return int(value) if value.is_finite() and value == value.to_integral_value() else float(value)
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return iso_duration(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    return str(value)  # UUID, inet, ...: their text


def iso_duration(delta: dt.timedelta) -> str:
    """1 day, 2:30:00 -> P1DT2H30M0S; a negative interval gets a leading minus."""
    if delta < dt.timedelta(0):
        return "-" + iso_duration(-delta)
    hours, rest = divmod(delta.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    fraction = f".{delta.microseconds:06d}".rstrip("0") if delta.microseconds else ""
    return f"P{delta.days}DT{hours}H{minutes}M{seconds}{fraction}S"
