"""`turnforge align`: a dataset's executed tool SQL, or a domain's toolset, against a target workload."""
from __future__ import annotations

import json
import math
import sqlite3

import pytest

from shared.cli.evaluate import cmd_align, target_statements
from shared.cli.main import build_parser
from shared.evaluation.alignment import executed_tool_sql
from shared.runtime.config import Settings

BINDINGS = {"get_score": {"sql": "SELECT raw_score FROM scores WHERE bowler_id = :bowler_id"},
            "fix_score": {"sql": "UPDATE scores SET raw_score = :raw_score WHERE bowler_id = :bowler_id RETURNING *"},
            "drop_score": {"sql": "DELETE FROM scores WHERE bowler_id = :bowler_id"}}


def call(call_id: str, name: str) -> dict:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": "{}"}}


RECORD = {"id": "t1", "messages": [
    {"role": "user", "content": "fix my score"},
    {"role": "assistant", "content": "", "tool_calls": [call("c1", "get_score"), call("c2", "fix_score")]},
    {"role": "tool", "tool_call_id": "c1", "content": "[{\"raw_score\": 161}]"},
    {"role": "tool", "tool_call_id": "c2", "content": "{\"error\": \"database_error\", \"detail\": \"...\"}"},
    {"role": "assistant", "content": "", "tool_calls": [call("c3", "fix_score")]},
    {"role": "tool", "tool_call_id": "c3", "content": "{\"bowler_id\": 8, \"raw_score\": 165}"},
], "tools": [], "metadata": {"tool_bindings": BINDINGS}}
OLD_RECORD = {"id": "t0", "messages": [], "tools": [], "metadata": {}}


def test_executed_calls_give_their_tools_sql_and_failed_ones_do_not():
    found = executed_tool_sql([RECORD, OLD_RECORD])
    assert found.statements == [BINDINGS["get_score"]["sql"], BINDINGS["fix_score"]["sql"]]
    assert found.records == 2 and found.records_without_bindings == 1


def test_target_file_is_one_statement_a_line(tmp_path):
    target = tmp_path / "target.sql"
    target.write_text("-- the workload\nSELECT a FROM t\n\nDELETE FROM t WHERE a = 1\n")
    assert target_statements(str(target)) == ["SELECT a FROM t", "DELETE FROM t WHERE a = 1"]


def align_json(capsys, argv: list[str], settings: Settings | None = None) -> dict:
    args = build_parser().parse_args(["align", *argv, "--json"])
    assert cmd_align(args, settings or Settings()) == 0
    return json.loads(capsys.readouterr().out)


def test_align_a_dataset_against_a_target(tmp_path, capsys):
    dataset, target = tmp_path / "dataset.jsonl", tmp_path / "target.sql"
    dataset.write_text("\n".join(json.dumps(r) for r in (RECORD, OLD_RECORD)) + "\n")
    target.write_text("SELECT RawScore FROM Scores WHERE BowlerID = 8;\nDELETE FROM Scores WHERE BowlerID = 9;\n")
    figures = align_json(capsys, ["--target", str(target), "--dataset", str(dataset)])
    assert 1 / math.e < figures["kl_alignment"] < 1
    assert 0 < figures["overlap_ratio"] < 1
    assert figures["top_missing"][0] == {"ngram": "DELETE", "target_count": 1}
    assert figures["training"]["statements"] == 2 and figures["target"]["statements"] == 2
    assert "1 records without tool bindings skipped" in figures["training"]["source"]


def test_a_dataset_without_tool_bindings_is_refused_with_the_reason(tmp_path):
    dataset, target = tmp_path / "dataset.jsonl", tmp_path / "target.sql"
    dataset.write_text(json.dumps(OLD_RECORD) + "\n")
    target.write_text("SELECT 1\n")
    args = build_parser().parse_args(["align", "--target", str(target), "--dataset", str(dataset)])
    with pytest.raises(ValueError, match="1 of 1 records carry no metadata.tool_bindings"):
        cmd_align(args, Settings())


@pytest.mark.integration
def test_align_the_toolset_built_for_a_database(tmp_path, postgres_dsn, capsys):
    db, target = tmp_path / "league.sqlite", tmp_path / "target.sql"
    conn = sqlite3.connect(db)
    conn.executescript("CREATE TABLE Bowlers (BowlerID INTEGER PRIMARY KEY, Name TEXT, City TEXT);"
                       "INSERT INTO Bowlers VALUES (1, 'Ann', 'Auburn'), (2, 'Bo', 'Redmond');")
    conn.close()
    target.write_text("SELECT Name FROM Bowlers WHERE BowlerID = 1\nSELECT COUNT(*) FROM Bowlers GROUP BY City\n")
    figures = align_json(capsys, ["--target", str(target), "--db", str(db)], Settings(postgres={"dsn": postgres_dsn}))
    assert figures["training"]["source"].endswith("of domain league") and figures["training"]["statements"] > 0
    assert 1 / math.e <= figures["kl_alignment"] <= 1 and 0 < figures["overlap_ratio"] <= 1
