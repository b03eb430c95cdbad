"""What a message says against what the tools returned: the numbers and values a reply states, and their sources.

The agent's step guard (before a reply reaches the user) and the validator (on the finished trajectory) ask the
same questions, so both read them from here.
"""
from __future__ import annotations

import re
from difflib import SequenceMatcher

FIELD_ASSIGNMENT = re.compile(r"\b(\w+)\s*=\s*")  # "customer_id = 7"
NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?!\w|\.\d)")  # "3." at a sentence end is the number 3
WORD = re.compile(r"[a-z0-9]+")

# Markup a model copies from its own chat template or from tool messages instead of writing a reply.
TOOL_MARKUP = re.compile(r"</?tool_(?:call|response|result)>|\"tool_calls\"\s*:|\"arguments\"\s*:\s*\{|```json",
                         re.IGNORECASE)


def normalise_number(text: str) -> str:
    """One spelling per number: "7", "7.0" and "7.00" are the same; "7.50" is "7.5"."""
    try:
        value = float(text)
    except ValueError:
        return text
    return str(int(value)) if value.is_integer() else f"{value:.2f}".rstrip("0").rstrip(".")


def numbers_in(text: str) -> set[str]:
    return {normalise_number(n) for n in NUMBER.findall(text or "")}


def unsupported_numbers(claim: str, sources: list[str]) -> list[str]:
    """Numbers in `claim` that none of `sources` contains, in the order stated."""
    known: set[str] = set()
    for source in sources:
        known |= numbers_in(source)
    return [n for n in dict.fromkeys(NUMBER.findall(claim or "")) if normalise_number(n) not in known]


def ungrounded_arguments(arguments: dict, sources: list[str]) -> list[str]:
    """A call's argument values (ids, names, amounts) that appear in none of `sources`: invented, neither given by
    the user nor returned by a tool. Flags are left out: a person says "switch it off", not false."""
    text = "\n".join(sources)
    invented = []
    for name, value in arguments.items():
        for v in value if isinstance(value, list) else [value]:
            if v is None or isinstance(v, (bool, dict)):
                continue
            if not _given(text, v):
                invented.append(f"{name}={v!r}")
    return invented


def _given(text: str, value) -> bool:
    """`value` was said in `text`, exactly or word by word the way a person says it: "suspend" gives "suspended",
    "on hold" gives "on_hold", "+1 555 0100" gives "+1-555-0100". Words of three letters or fewer, and numbers,
    must be said as they are."""
    if value_mentioned(text, value):
        return True
    if not isinstance(value, str):
        return False
    said = set(words(text))
    for word in words(value):
        if len(word) <= 3 or word.isdigit():
            if word not in said:
                return False
        elif not any(w.startswith(word[:max(4, len(word) - 3)]) for w in said):
            return False
    return bool(words(value))


def spoken_names(text: str) -> str:
    """Field names as a person says them: "customer_id = 7" reads "customer id 7"; values stay as they are (the
    agent must pass "on_hold" as it is)."""
    return FIELD_ASSIGNMENT.sub(lambda m: m.group(1).replace("_", " ") + " ", text or "")


def words(text: str) -> list[str]:
    return WORD.findall((text or "").lower())


def similarity(a: str, b: str) -> float:
    """How much of two texts is the same wording (0..1), over their words, not characters."""
    wa, wb = words(a), words(b)
    if not wa or not wb:
        return 0.0
    return SequenceMatcher(None, wa, wb, autojunk=False).ratio()


def repeats(text: str, other: str, threshold: float = 0.75) -> bool:
    """`text` is mostly `other` said again (an echo), not a reply to it."""
    if not text.strip() or not other.strip():
        return False
    mine, theirs = " ".join(words(text)), " ".join(words(other))
    if len(mine) >= 20 and mine in theirs:
        return True
    return similarity(text, other) >= threshold


def value_mentioned(text: str, value) -> bool:
    """A database value appears in a message: numbers compare as numbers, text case-insensitively."""
    if value is None:
        return False
    if isinstance(value, list):  # the values of several rows: each must be told
        return bool(value) and all(value_mentioned(text, v) for v in value)
    if isinstance(value, bool):
        return str(value).lower() in (text or "").lower()
    if isinstance(value, (int, float)):
        return normalise_number(str(value)) in numbers_in(text)
    needle = str(value).strip().lower()
    if not needle:
        return False
    haystack = (text or "").lower()
    if needle in haystack:
        return True
    if re.fullmatch(r"-?\d+(?:\.\d+)?", needle):  # a numeric string, e.g. a Decimal rendered as text
        return normalise_number(needle) in numbers_in(text)
    # An ISO timestamp is often told by its date: "2024-03-01T10:00:00" reached the user as "2024-03-01".
    date = re.match(r"(\d{4}-\d{2}-\d{2})[T ]", needle)
    return bool(date and date.group(1) in haystack)
