"""Structural alignment of SQL workloads (arXiv 2510.04919): how well training SQL matches a target workload.

1. Template: each statement is parsed with sqlglot (so only real SQL counts) and its tokens are kept except names
   and values: table, column and alias names, literals (not NULL: `IS NULL` is structure), bind parameters, data
   type names (with the `AS` of a `CAST(... AS type)`) and the terminating semicolon. What remains are keywords,
   function names, operators and punctuation, e.g. `SELECT / FROM WHERE = ORDER BY ( CAST ( ) / ) DESC LIMIT`.
   Multi-word keywords (ORDER BY) are one token.
2. N-grams of 1..15 template tokens, kept only when they contain a keyword or function name, do not start or end
   with a comma, and have balanced parentheses (never closing one they did not open). Every occurrence counts.
3. P is the distribution of the training n-grams, Q the target's. Both are Lidstone-smoothed with α over the union
   V of their n-grams: P_α(x) = (n_P(x) + α) / (N_P + α|V|), likewise Q_α, so identical workloads diverge by 0.
4. D_KL(P‖Q) = Σ_{x∈V} P_α(x) log(P_α(x) / Q_α(x)). KL-alignment A = exp(−D_KL / c), where c is the divergence P
   would have from the least-matching target the smoothing allows: every Q_α(x) ≥ q_min = α / (N_Q + α|V|), so
   D_KL ≤ Σ P_α(x) log(P_α(x) / q_min) = c, hence A ≥ 1/e, as the paper states. A = 1 for identical workloads
   and approaches 1/e as the target shares nothing with the training data.
5. Overlap ratio: the share of the target's distinct n-grams that the training data contains, |S_P ∩ S_Q| / |S_Q|.
   The top missing n-grams are the target's n-grams absent from the training data, most frequent first.
"""
from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError
from sqlglot.parser import Parser
from sqlglot.tokens import Token, TokenType

MAX_NGRAM = 15
SMOOTHING = 0.01  # α: small, so that A tracks the share of training mass the target lacks

LITERALS = {TokenType.STRING, TokenType.NUMBER, TokenType.NATIONAL_STRING, TokenType.HEX_STRING,
            TokenType.BIT_STRING, TokenType.BYTE_STRING, TokenType.RAW_STRING, TokenType.HEREDOC_STRING,
            TokenType.TRUE, TokenType.FALSE}
PARAMETERS = {TokenType.PLACEHOLDER, TokenType.PARAMETER}
NAMES = {TokenType.VAR, TokenType.IDENTIFIER}
TYPE_NAMES = Parser.TYPE_TOKENS - {TokenType.NULL}  # NULL is also a type to sqlglot; IS NULL is structure


class UnparsableSQL(ValueError):
    pass


def template(sql: str, dialect: str = "postgres") -> tuple[str, ...]:
    """The statement's structural tokens (see the module's step 1); raises UnparsableSQL."""
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
        tokens = Dialect.get_or_raise(dialect).tokenize(sql)
    except (ParseError, TokenError) as e:
        raise UnparsableSQL(str(e).splitlines()[0]) from None
    names = {i.name.lower() for i in tree.find_all(exp.Identifier)}
    kept: list[str] = []
    after_name = False  # a dot after a name qualifies it (t.col): part of the name
    for i, token in enumerate(tokens):
        following = tokens[i + 1] if i + 1 < len(tokens) else None
        kind = _classify(token, following, names, after_name, tokens[i - 1] if i else None)
        after_name = kind == "name"
        if kind == "type" and kept and kept[-1] == "AS":
            kept.pop()  # CAST(x AS type): the AS belongs to the type name
        if kind == "keep":
            kept.append(" ".join(token.text.upper().split()))
    return tuple(kept)


def _classify(token: Token, following: Token | None, names: set[str], after_name: bool,
              previous: Token | None) -> str:
    """'keep', 'name', 'type', 'value' or 'end' for one token."""
    calls = following is not None and following.token_type == TokenType.L_PAREN
    if token.token_type == TokenType.SEMICOLON:
        return "end"  # a statement's terminator, written or not
    if token.token_type in LITERALS or token.token_type in PARAMETERS:
        return "value"
    if token.token_type == TokenType.COLON and following is not None and following.token_type in NAMES:
        return "value"  # :name, a bound parameter
    if previous is not None and previous.token_type == TokenType.COLON and token.token_type in NAMES:
        return "value"
    if token.token_type == TokenType.DOT and after_name:
        return "name"
    if token.token_type == TokenType.IDENTIFIER or token.text.lower() in names:
        return "name"
    if calls and token.token_type == TokenType.VAR:
        return "keep"  # a function name
    if token.token_type in TYPE_NAMES and not calls:
        return "type"
    return "keep"  # a keyword sqlglot reads as a word (NULLS LAST), an operator or punctuation


def _is_word(token: str) -> bool:
    return token[0].isalpha()


def _balanced(ngram: tuple[str, ...]) -> bool:
    depth = 0
    for token in ngram:
        depth += (token == "(") - (token == ")")
        if depth < 0:
            return False
    return depth == 0


def ngrams(tokens: tuple[str, ...], max_n: int = MAX_NGRAM) -> Counter:
    """The template's kept n-grams (module step 2), each as its tokens joined by single spaces."""
    found: Counter = Counter()
    for n in range(1, max_n + 1):
        for i in range(len(tokens) - n + 1):
            gram = tokens[i:i + n]
            if gram[0] != "," and gram[-1] != "," and any(_is_word(t) for t in gram) and _balanced(gram):
                found[" ".join(gram)] += 1
    return found


def read_statements(path: str | Path) -> list[str]:
    """A target workload file: one statement per line; blank lines and `--` comment lines are skipped."""
    lines = (line.strip() for line in Path(path).read_text().splitlines())
    return [line for line in lines if line and not line.startswith("--")]


@dataclass
class Workload:
    """The n-gram counts of a set of statements, and the statements that could not be parsed."""

    counts: Counter = field(default_factory=Counter)
    statements: int = 0
    unparsed: list[tuple[str, str]] = field(default_factory=list)  # (statement, why)


def workload(statements: Iterable[str], dialect: str = "postgres") -> Workload:
    result = Workload()
    for sql in statements:
        try:
            result.counts.update(ngrams(template(sql, dialect)))
            result.statements += 1
        except UnparsableSQL as e:
            result.unparsed.append((sql, str(e)))
    return result


@dataclass(frozen=True)
class Alignment:
    kl_divergence: float
    kl_alignment: float
    overlap_ratio: float
    top_missing: list[tuple[str, int]]  # target n-grams the training data lacks, with their target counts


def align(training: Counter, target: Counter, *, alpha: float = SMOOTHING, top: int = 20) -> Alignment:
    """P = training, Q = target (module steps 3-5)."""
    if not training or not target:
        raise ValueError("alignment needs n-grams on both sides")
    vocabulary = set(training) | set(target)
    n_p, n_q = sum(training.values()), sum(target.values())

    def smoothed(counts: Counter, total: int, gram: str) -> float:
        return (counts[gram] + alpha) / (total + alpha * len(vocabulary))

    p = {g: smoothed(training, n_p, g) for g in vocabulary}
    divergence = sum(p[g] * math.log(p[g] / smoothed(target, n_q, g)) for g in vocabulary)
    q_min = alpha / (n_q + alpha * len(vocabulary))
    ceiling = sum(pg * math.log(pg / q_min) for pg in p.values())
    missing = sorted((g for g in target if g not in training), key=lambda g: (-target[g], g))
    return Alignment(
        kl_divergence=divergence,
        kl_alignment=math.exp(-divergence / ceiling),
        overlap_ratio=len(set(training) & set(target)) / len(target),
        top_missing=[(g, target[g]) for g in missing[:top]],
    )


@dataclass
class DatasetSQL:
    statements: list[str] = field(default_factory=list)  # one per executed call, so frequent tools weigh more
    records: int = 0
    records_without_bindings: int = 0


def executed_tool_sql(records: Iterable[dict]) -> DatasetSQL:
    """The SQL each executed tool call ran, from the records' metadata.tool_bindings ({tool: {sql, ...}}).

    A call counts as executed when its tool message came back and is not a tool error ({"error": ...})."""
    found = DatasetSQL()
    for record in records:
        found.records += 1
        bindings = (record.get("metadata") or {}).get("tool_bindings")
        if not bindings:
            found.records_without_bindings += 1
            continue
        replies = {m.get("tool_call_id"): m.get("content") for m in record.get("messages", []) if m["role"] == "tool"}
        for message in record.get("messages", []):
            for call in message.get("tool_calls") or []:
                sql = (bindings.get(call["function"]["name"]) or {}).get("sql")
                if sql and call["id"] in replies and not _is_tool_error(replies[call["id"]]):
                    found.statements.append(sql)
    return found


def _is_tool_error(content: str | None) -> bool:
    try:
        reply = json.loads(content or "")
    except json.JSONDecodeError:
        return False
    return isinstance(reply, dict) and "error" in reply
