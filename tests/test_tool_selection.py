"""Alignment-aware tool selection on small SQL sets whose answer is known."""
from __future__ import annotations

import pytest

from shared.evaluation.alignment import align, workload
from shared.evaluation.tool_selection import _Scorer, select_for_target, tool_ngrams
from shared.toolgen.templates import ToolCandidate
from shared.toolgen.toolset import select_tools
from shared.toolgen.verify import Verification


def tool(name: str, sql: str, kind: str, table: str, **flags) -> Verification:
    return Verification(ToolCandidate(name=name, description=name, parameters={}, sql=sql, kind=kind), ok=True,
                        table=table, **flags)


GET_BOWLER = tool("get_bowler", "SELECT * FROM bowlers WHERE bowler_id = :bowler_id", "read", "bowlers",
                  single_row=True)
GET_TEAM = tool("get_team", "SELECT * FROM teams WHERE team_id = :team_id", "read", "teams", single_row=True)
TOP_SCORES = tool("top_bowler_scores",
                  "SELECT bowler_id, AVG(raw_score) AS average FROM scores GROUP BY bowler_id "
                  "ORDER BY average DESC LIMIT :limit", "read", "scores", has_aggregate=True)
SEARCH_BOWLER = tool("search_bowlers", "SELECT * FROM bowlers WHERE last_name ILIKE :pattern", "read", "bowlers",
                     is_search=True)
UPDATE_SCORE = tool("update_score", "UPDATE scores SET raw_score = :raw_score WHERE match_id = :match_id "
                                    "AND bowler_id = :bowler_id RETURNING *", "update", "scores")
DELETE_TEAM = tool("delete_team", "DELETE FROM teams WHERE team_id = :team_id RETURNING *", "delete", "teams")
INSERT_TEAM = tool("create_team", "INSERT INTO teams (team_id, name) VALUES (:team_id, :name) RETURNING *",
                   "insert", "teams")
CANDIDATES = [GET_BOWLER, GET_TEAM, TOP_SCORES, SEARCH_BOWLER, UPDATE_SCORE, DELETE_TEAM, INSERT_TEAM]

# A workload of averages and updates, in SQLite as DySQL-Bench writes it: no deletes, no inserts, no searches.
TARGET = workload([
    "SELECT BowlerID, AVG(RawScore) AS a FROM Bowler_Scores GROUP BY BowlerID ORDER BY a DESC LIMIT 3",
    "SELECT TeamID, AVG(HandiCapScore) AS h FROM Bowler_Scores GROUP BY TeamID ORDER BY h DESC LIMIT 1",
    "UPDATE Bowler_Scores SET RawScore = 160 WHERE MatchID = 4 AND BowlerID = 7",
    "SELECT * FROM Teams WHERE TeamID = 2",
], "sqlite").counts


def counts_of(tools) -> dict:
    total = workload([]).counts
    for t in tools:
        total += tool_ngrams(t)
    return total


@pytest.mark.parametrize("training", [[GET_BOWLER], [GET_BOWLER, DELETE_TEAM], CANDIDATES, [TOP_SCORES, UPDATE_SCORE]])
def test_the_fast_scorer_is_alignments_own_figure(training):
    expected = align(counts_of(training), TARGET).kl_alignment
    assert _Scorer(TARGET, 0.01).kl_alignment(counts_of(training)) == pytest.approx(expected, rel=1e-9)


def test_a_candidate_shaped_like_the_target_is_picked_over_one_that_is_not():
    default = [GET_BOWLER, GET_TEAM, DELETE_TEAM]  # lookups and a delete the target never does
    selection = select_for_target(CANDIDATES, default, TARGET, limit=6)
    kept = [v.candidate.name for v in selection.tools]
    assert "top_bowler_scores" in kept  # the target's averages
    assert "delete_team" not in kept and "create_team" not in kept and "search_bowlers" not in kept
    assert selection.after.kl_alignment > selection.before.kl_alignment
    assert selection.after.overlap_ratio >= selection.before.overlap_ratio
    assert selection.added == ["top_bowler_scores"] and selection.dropped == ["delete_team"]
    # The tools' update ends in RETURNING *, which the target's never does: in this target, where updates are one
    # statement in four, the n-grams it would add outside the target outweigh the ones it shares, so it stays out.
    assert "update_score" not in kept


def test_a_workload_of_updates_swaps_the_delete_for_the_update():
    updates = workload(["UPDATE Bowler_Scores SET RawScore = 160 WHERE MatchID = 4 AND BowlerID = 7",
                        "UPDATE Bowler_Scores SET RawScore = 150 WHERE MatchID = 5 AND BowlerID = 2",
                        "UPDATE Teams SET TeamName = 'Owls' WHERE TeamID = 2",
                        "SELECT * FROM Teams WHERE TeamID = 2"], "sqlite").counts
    selection = select_for_target(CANDIDATES, [GET_BOWLER, GET_TEAM, TOP_SCORES, DELETE_TEAM], updates, limit=6)
    assert "update_score" in selection.added and selection.dropped == ["delete_team"]
    assert selection.after.kl_alignment > selection.before.kl_alignment


def test_every_table_keeps_a_read_tool():
    selection = select_for_target(CANDIDATES, CANDIDATES, TARGET, limit=24)
    read_tables = {v.table for v in selection.tools if v.candidate.kind == "read"}
    assert read_tables == {"bowlers", "teams", "scores"}
    # The floor takes, per table, its best aligned read: the key lookup (the target has one), not the search.
    assert "get_bowler" in [v.candidate.name for v in selection.tools]
    assert "search_bowlers" not in [v.candidate.name for v in selection.tools]


def test_selection_stays_within_the_limit():
    selection = select_for_target(CANDIDATES, CANDIDATES[:2], TARGET, limit=3)
    assert len(selection.tools) <= 3


@pytest.mark.parametrize("target_sql", [
    ["DELETE FROM Teams WHERE TeamID = 3"],
    ["INSERT INTO Teams VALUES (9, 'Owls')", "SELECT COUNT(*) FROM Teams"],
    ["SELECT * FROM Bowlers WHERE BowlerLastName LIKE 'K%'"],
    ["SELECT BowlerID, AVG(RawScore) FROM Bowler_Scores GROUP BY BowlerID", "UPDATE Teams SET Name = 'x' WHERE TeamID = 1"],
])
@pytest.mark.parametrize("limit", [3, 5, 24])
def test_selection_never_aligns_less_than_the_default_toolset(target_sql, limit):
    target = workload(target_sql, "sqlite").counts
    default = select_tools(CANDIDATES, limit)
    selection = select_for_target(CANDIDATES, default, target, limit=limit)
    assert selection.after.kl_alignment >= selection.before.kl_alignment
    assert selection.after == align(counts_of(selection.tools), target)


def test_when_the_floor_makes_it_worse_the_default_is_kept():
    # The default is one delete, exactly the target; the floor would add a read for each table the target lacks.
    target = workload(["DELETE FROM teams WHERE team_id = 1 RETURNING *"]).counts
    selection = select_for_target(CANDIDATES, [DELETE_TEAM], target, limit=24)
    assert selection.fell_back and selection.tools == [DELETE_TEAM]
    assert selection.after == selection.before


def test_selection_is_deterministic():
    runs = [[v.candidate.name for v in select_for_target(CANDIDATES, CANDIDATES[:3], TARGET, limit=5).tools]
            for _ in range(3)]
    assert runs[0] == runs[1] == runs[2]


def test_a_target_without_parsable_statements_is_refused():
    with pytest.raises(ValueError, match="no statement could be parsed"):
        select_for_target(CANDIDATES, CANDIDATES, workload(["this is not SQL ((("]).counts, limit=5)
