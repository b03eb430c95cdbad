"""`turnforge tasks import-dysql`: DySQL-Bench tasks frozen with PostgreSQL golden SQL and golden end-state hashes.

The bowling case uses ../shared/data/dysql (or $TURNFORGE_DYSQL_DIR) and skips when it is missing."""
from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from shared.cli.evaluate import cmd_import_dysql
from shared.cli.main import build_parser
from shared.evaluation.dysql import difficulty, load_tasks, stored_names, to_postgres
from shared.runtime.config import Settings

REPO = Path(__file__).resolve().parents[1]
DYSQL_DIR = Path(os.environ.get("TURNFORGE_DYSQL_DIR", REPO.parent / "shared" / "data" / "dysql"))


def sql_action(sql: str) -> dict:
    return {"name": "sql", "kwargs": {"sql": sql}}


def make_league(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE Bowlers (BowlerID smallint PRIMARY KEY, BowlerFirstName varchar(50), BowlerLastName varchar(50));
        CREATE TABLE Bowler_Scores (MatchID smallint NOT NULL, BowlerID smallint NOT NULL REFERENCES Bowlers (BowlerID),
                                    RawScore smallint, WonGame bit NOT NULL, PRIMARY KEY (MatchID, BowlerID));
        INSERT INTO Bowlers VALUES (8, 'Stephanie', 'Viescas'), (9, 'Ann', 'Patterson');
        INSERT INTO Bowler_Scores VALUES (36, 8, 161, 0), (36, 9, 170, 1);
    """)
    conn.close()


TASKS = {"league": [
    {"user_id": "0", "instruction": "I am Stephanie Viescas; my score in match 36 should be 165.", "actions": [
        sql_action("SELECT BowlerID FROM Bowlers WHERE BowlerFirstName = 'Stephanie' AND BowlerLastName LIKE 'Vies%';"),
        sql_action("UPDATE Bowler_Scores SET RawScore = 165 WHERE MatchID = 36 AND BowlerID = 8;")]},
    {"user_id": "1", "instruction": "Archive my scores first.", "actions": [  # no archive table: left out
        sql_action("INSERT INTO Bowler_Scores_Archive SELECT * FROM Bowler_Scores WHERE BowlerID = 9;"),
        sql_action("DELETE FROM Bowler_Scores WHERE BowlerID = 9;")]},
    {"user_id": "2", "instruction": "Record Ann's win in match 37, then show both of my rows.", "actions": [
        sql_action("INSERT INTO Bowler_Scores (MatchID, BowlerID, RawScore, WonGame) VALUES (37, 9, 180, TRUE);"),
        sql_action("SELECT RawScore FROM Bowler_Scores WHERE BowlerID = 9 ORDER BY MatchID"),
        sql_action("select b.bowlerfirstname from bowlers b where b.BowlerID = 9")]},
]}


def test_golden_sql_is_translated_to_the_stored_names():
    names = stored_names({"Bowler_Scores": "bowler_scores", "Bowler_Scores.HandiCapScore":
                          "bowler_scores.handi_cap_score", "A.Name": "a.name", "B.Name": "b.name_2"})
    assert names["handicapscore"] == "handi_cap_score"
    assert "name" not in names  # stored differently in two tables: left to the folding
    assert to_postgres("SELECT bs.HandiCapScore FROM Bowler_Scores bs WHERE WonGame = TRUE; DELETE FROM Bowlers",
                       names) == ["SELECT bs.handi_cap_score FROM bowler_scores AS bs WHERE won_game = '1'",
                                  "DELETE FROM bowlers"]


def test_difficulty_follows_dysqls_action_count():
    assert [difficulty(n) for n in (1, 2, 3, 9)] == ["short", "short", "long", "long"]


def run_import(tasks_path: Path, env: str, db: Path, out: Path, dsn: str) -> int:
    args = build_parser().parse_args(["tasks", "import-dysql", str(tasks_path), "--env", env, "--db", str(db),
                                      "--out", str(out)])
    return cmd_import_dysql(args, Settings(postgres={"dsn": dsn}))


@pytest.mark.integration
def test_import_freezes_executable_tasks_and_reports_the_broken_one(tmp_path, postgres_dsn, capsys):
    db, tasks_path, out = tmp_path / "league.sqlite", tmp_path / "tasks.json", tmp_path / "frozen.jsonl"
    make_league(db)
    tasks_path.write_text(json.dumps(TASKS))
    assert run_import(tasks_path, "league", db, out, postgres_dsn) == 0
    printed = capsys.readouterr().out
    assert "2 of 3 tasks frozen" in printed
    assert "left out task 1 (user 1): action 1: relation \"bowler_scores_archive\" does not exist" in printed
    first, third = [json.loads(line) for line in out.read_text().splitlines()]
    assert first["domain"] == "dysql_league" and first["difficulty"] == "short" and third["difficulty"] == "long"
    read, update = first["golden_actions"]
    assert read["kind"] == "read" and "expected_values" not in read  # a look-up before the change: not an answer
    assert update["sql"] == "UPDATE bowler_scores SET raw_score = 165 WHERE match_id = 36 AND bowler_id = 8"
    assert first["changes_data"] and first["golden_hash"] != first["initial_hash"]
    assert third["golden_actions"][1]["expected_values"] == [170, 180]  # the row its insert added is read back
    assert third["golden_actions"][2]["expected_values"] == ["Ann"]
    assert len({first["golden_hash"], third["golden_hash"]}) == 2  # each task ran in its own fresh sandbox


@pytest.mark.integration
def test_golden_hash_is_the_same_on_a_second_import(tmp_path, postgres_dsn):
    db, tasks_path = tmp_path / "league.sqlite", tmp_path / "tasks.json"
    make_league(db)
    tasks_path.write_text(json.dumps({"league": TASKS["league"][:1]}))
    hashes = []
    for out in (tmp_path / "a.jsonl", tmp_path / "b.jsonl"):
        run_import(tasks_path, "league", db, out, postgres_dsn)
        hashes.append(json.loads(out.read_text())["golden_hash"])
    assert hashes[0] == hashes[1]


def test_an_unknown_environment_is_named(tmp_path):
    tasks_path = tmp_path / "tasks.json"
    tasks_path.write_text(json.dumps(TASKS))
    with pytest.raises(ValueError, match="no environment 'bowling'.*league"):
        load_tasks(tasks_path, "bowling")


@pytest.mark.integration
@pytest.mark.skipif(not (DYSQL_DIR / "dysql_tasks_bowling.json").is_file(), reason="DySQL-Bench sample not present")
def test_bowling_sample_imports_the_executable_quarter(tmp_path, postgres_dsn, capsys):
    out = tmp_path / "bowling.jsonl"
    assert run_import(DYSQL_DIR / "dysql_tasks_bowling.json", "bowling", DYSQL_DIR / "BowlingLeague.sqlite", out,
                      postgres_dsn) == 0
    frozen = [json.loads(line) for line in out.read_text().splitlines()]
    printed = capsys.readouterr().out
    left_out = printed.count("left out task")
    assert len(frozen) + left_out == 111
    assert 15 <= len(frozen) <= 35  # the stand-in database lacks the archive tables most tasks write to
    assert "bowler_scores_archive" in printed
    assert all(t["golden_hash"] and t["difficulty"] in ("short", "long") for t in frozen)
    assert any(a["sql"].startswith("UPDATE bowler_scores SET raw_score") for t in frozen for a in t["golden_actions"])
