"""Structural alignment: templates of statements, their n-grams, and KL-alignment and overlap of workloads."""
from __future__ import annotations

import math

import pytest

from shared.evaluation.alignment import UnparsableSQL, align, ngrams, template, workload


@pytest.mark.parametrize("sql, dialect, expected", [
    # the paper's example shape
    ("SELECT a / b FROM t WHERE x = 1 ORDER BY (CAST(a AS REAL) / b) DESC LIMIT 1", "sqlite",
     "SELECT / FROM WHERE = ORDER BY ( CAST ( ) / ) DESC LIMIT"),
    ("SELECT T2.name FROM a AS T1 JOIN b AS T2 ON T1.id = T2.id GROUP BY T1.id HAVING count(*) >= 2", "sqlite",
     "SELECT FROM AS JOIN AS ON = GROUP BY HAVING COUNT ( * ) >="),
    # a tool statement: bound :parameters are values
    ("UPDATE bowler_scores SET raw_score = :raw_score WHERE match_id = :match_id RETURNING *;", "postgres",
     "UPDATE SET = WHERE = RETURNING *"),
    ('SELECT "Order Date", count FROM "My T" WHERE d IS NOT NULL AND e LIKE \'%x\'', "postgres",
     "SELECT , FROM WHERE IS NOT NULL AND LIKE"),
])
def test_templates_keep_keywords_operators_and_punctuation_only(sql, dialect, expected):
    assert " ".join(template(sql, dialect)) == expected


def test_a_statement_sqlglot_cannot_parse_is_refused():
    with pytest.raises(UnparsableSQL):
        template("SELECT FROM WHERE (", "sqlite")
    found = workload(["SELECT a FROM t", "SELECT FROM WHERE ("], "sqlite")
    assert found.statements == 1 and len(found.unparsed) == 1


def test_ngrams_need_a_keyword_no_edge_comma_and_balanced_parentheses():
    grams = ngrams(("SELECT", "COUNT", "(", "*", ")", ",", "MAX", "(", ")", "FROM"))
    assert grams["SELECT COUNT ( * )"] == 1
    assert "( * )" not in grams  # no keyword
    assert "SELECT COUNT (" not in grams and ") , MAX" not in grams  # unbalanced
    assert "SELECT COUNT ( * ) ," not in grams and ", MAX ( )" not in grams  # a comma at an edge
    assert grams["COUNT ( * ) , MAX ( ) FROM"] == 1
    assert max(len(g.split()) for g in ngrams(tuple(["SELECT"] * 20))) == 15


TRAINING = ["SELECT a FROM t WHERE b = 1", "SELECT COUNT(*) FROM t", "UPDATE t SET a = 1 WHERE b = 2"]


def test_identical_workloads_align_fully():
    counts = workload(TRAINING).counts
    result = align(counts, counts)
    assert result.kl_divergence == 0 and result.kl_alignment == 1.0
    assert result.overlap_ratio == 1.0 and result.top_missing == []


def test_disjoint_workloads_align_near_one_over_e():
    result = align(workload(TRAINING).counts, workload(["INSERT INTO t VALUES (1)"]).counts)
    assert result.overlap_ratio == 0
    assert 1 / math.e <= result.kl_alignment < 1 / math.e + 0.01
    assert result.top_missing[0] == ("INSERT", 1)


def test_partial_overlap_lies_between_and_names_what_is_missing():
    training = workload(TRAINING).counts
    target = workload(["SELECT a FROM t WHERE b = 1", "DELETE FROM t WHERE b = 1", "DELETE FROM t WHERE c = 2"])
    result = align(training, target.counts)
    assert 1 / math.e < result.kl_alignment < 1
    assert 0 < result.overlap_ratio < 1
    assert result.top_missing[0] == ("DELETE", 2)
    assert all(gram not in training for gram, _ in result.top_missing)
    more_alike = align(training, workload(TRAINING + ["DELETE FROM t WHERE b = 1"]).counts)
    assert more_alike.kl_alignment > result.kl_alignment
