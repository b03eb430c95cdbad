"""settings.align_to end to end without a broker: the run config embeds the target's statements in the seed, tool-synth
selects its toolset for them, and `turnforge align --select-for-target` shows the default's figures beside the
selected one's."""
from __future__ import annotations

import json
import sqlite3

import pytest

from services.tool_synth.service import ToolSynth
from shared.cli.evaluate import cmd_align
from shared.cli.main import build_parser
from shared.contracts import AlignmentTarget, DatabaseRef, GenerationSettings, SeedEvent
from shared.data.demo_databases import build_demo
from shared.env.sandbox import SandboxManager
from shared.evaluation.alignment import align, workload
from shared.run.runner import RunConfig, build_seed_events
from shared.runtime.config import Settings
from shared.toolgen.toolset import InvalidSeed, validate_seed

# Questions only, counted and ranked, as an analytics workload asks them (SQLite, as Spider writes its queries).
TARGET = ["SELECT plan_id, COUNT(*) FROM customers GROUP BY plan_id ORDER BY COUNT(*) DESC LIMIT 3",
          "SELECT status, COUNT(*) FROM customers GROUP BY status",
          "SELECT name FROM customers WHERE customer_id = 4",
          "SELECT T1.name, SUM(T2.amount) FROM customers AS T1 JOIN invoices AS T2 ON T1.customer_id = "
          "T2.customer_id GROUP BY T1.name ORDER BY SUM(T2.amount) DESC LIMIT 5"]


def test_the_run_config_embeds_the_target_statements_in_the_seed(tmp_path):
    target = tmp_path / "target.sql"
    target.write_text("-- an analytics workload\n" + "\n".join(TARGET) + "\n")
    (seed,) = build_seed_events(RunConfig(align_to=str(target)), "run-a", Settings())
    assert list(seed.settings.align_to.statements) == TARGET  # by value: the services cannot read the file
    assert seed.settings.align_to.dialect == "sqlite" and seed.settings.align_to.source == "target.sql"
    (plain,) = build_seed_events(RunConfig(), "run-b", Settings())
    assert not plain.settings.HasField("align_to")


def test_align_to_is_for_database_seeds_and_needs_statements(tmp_path):
    empty = tmp_path / "empty.sql"
    empty.write_text("-- nothing\n")
    with pytest.raises(ValueError, match="holds no statement"):
        build_seed_events(RunConfig(align_to=str(empty)), "run-c", Settings())
    with pytest.raises(ValueError, match="seed tools have no SQL"):
        RunConfig(align_to=str(empty), seed_tools="tools.jsonl")


@pytest.fixture
def telecom_dsn(postgres_dsn):
    SandboxManager(postgres_dsn).register_domain(build_demo("telecom"))
    return postgres_dsn


def seed(align_to: AlignmentTarget | None = None) -> SeedEvent:
    return SeedEvent(seed_id="s-align", domain="telecom", database=DatabaseRef(domain_database="telecom"),
                     settings=GenerationSettings(num_trajectories=1, tasks_per_trajectory=1, align_to=align_to))


@pytest.mark.integration
def test_tool_synth_selects_its_toolset_for_the_seeds_target(telecom_dsn):
    stage = ToolSynth(Settings(postgres={"dsn": telecom_dsn}))
    try:
        [default] = stage.handle(seed())
        [aligned] = stage.handle(seed(AlignmentTarget(statements=TARGET, dialect="sqlite", source="analytics.sql")))
    finally:
        stage.close()
    before, after = default.message.toolset, aligned.message.toolset
    assert not before.HasField("alignment")
    names_before, names_after = [t.name for t in before.tools], [t.name for t in after.tools]
    assert names_after != names_before and len(names_after) <= 24
    record = after.alignment
    assert record.target_source == "analytics.sql" and record.target_statements == len(TARGET)
    assert record.tools_before == len(names_before) and record.tools_after == len(names_after)
    assert record.kl_alignment_after > record.kl_alignment_before
    # The recorded figures are alignment.align's for the two toolsets' SQL.
    target = workload(TARGET, "sqlite").counts
    for tools, figure in ((before.tools, record.kl_alignment_before), (after.tools, record.kl_alignment_after)):
        assert align(workload([t.sql.statement for t in tools]).counts, target).kl_alignment == pytest.approx(figure)
    # Every table the default could read keeps a read tool.
    def read_tables(toolset):
        return {t.effect.table for t in toolset.tools if t.sql.statement.lstrip().upper().startswith("SELECT")}
    assert read_tables(before) <= read_tables(after)
    # The statements are used up here: the seed travels on without them, as trajectory events copy its settings.
    forwarded = aligned.message.seed.settings.align_to
    assert not forwarded.statements and forwarded.source == "analytics.sql"


@pytest.mark.integration
def test_a_target_no_statement_of_which_parses_is_refused(telecom_dsn):
    stage = ToolSynth(Settings(postgres={"dsn": telecom_dsn}))
    try:
        with pytest.raises(InvalidSeed, match="none of its 1 statements parses"):
            stage.handle(seed(AlignmentTarget(statements=["SELEKT what ((("])))
    finally:
        stage.close()


@pytest.mark.integration
def test_align_select_for_target_prints_before_and_after(tmp_path, postgres_dsn, capsys):
    db, target = tmp_path / "league.sqlite", tmp_path / "target.sql"
    conn = sqlite3.connect(db)
    conn.executescript(
        "CREATE TABLE Teams (TeamID INTEGER PRIMARY KEY, TeamName TEXT);"
        "CREATE TABLE Bowlers (BowlerID INTEGER PRIMARY KEY, Name TEXT, City TEXT, Average INTEGER,"
        " TeamID INTEGER REFERENCES Teams(TeamID));"
        "INSERT INTO Teams VALUES (1, 'Owls'), (2, 'Hawks');"
        "INSERT INTO Bowlers VALUES (1, 'Ann', 'Auburn', 150, 1), (2, 'Bo', 'Redmond', 160, 2), (3, 'Cy', 'Kent', 140, 1);")
    conn.close()
    target.write_text("SELECT TeamID, COUNT(*) FROM Bowlers GROUP BY TeamID\n"
                      "SELECT TeamID, AVG(Average) FROM Bowlers GROUP BY TeamID ORDER BY AVG(Average) DESC LIMIT 1\n"
                      "SELECT Name FROM Bowlers WHERE BowlerID = 2\n")
    settings = Settings(postgres={"dsn": postgres_dsn})
    args = build_parser().parse_args(["align", "--target", str(target), "--db", str(db), "--select-for-target",
                                      "--json"])
    assert cmd_align(args, settings) == 0
    figures = json.loads(capsys.readouterr().out)
    chosen = figures["selection"]
    assert chosen["after"]["kl_alignment"] >= chosen["before"]["kl_alignment"]
    assert chosen["after"]["kl_alignment"] == figures["kl_alignment"]  # the toolset measured is the selected one
    assert chosen["after"]["tools"] == len(chosen["after"]["tools_kept"]) == figures["training"]["statements"]
    assert set(chosen["floor_tables"]) <= {"teams", "bowlers"}
    args = build_parser().parse_args(["align", "--target", str(target), "--db", str(db), "--select-for-target"])
    assert cmd_align(args, settings) == 0
    text = capsys.readouterr().out
    assert "default toolset: KL-alignment" in text and "selected for target: KL-alignment" in text


def test_select_for_target_needs_a_database(tmp_path):
    dataset, target = tmp_path / "d.jsonl", tmp_path / "t.sql"
    dataset.write_text("")
    target.write_text("SELECT 1\n")
    args = build_parser().parse_args(["align", "--target", str(target), "--dataset", str(dataset),
                                      "--select-for-target"])
    with pytest.raises(ValueError, match="give --db"):
        cmd_align(args, Settings())


def test_a_target_on_a_seed_without_a_database_is_refused():
    tools_seed = SeedEvent(seed_id="s-tools", domain="shop", settings=GenerationSettings(
        num_trajectories=1, tasks_per_trajectory=1, align_to=AlignmentTarget(statements=["SELECT 1"])))
    tools_seed.seed_tools.tools.add(name="get_order", parameters_json="{}")
    with pytest.raises(InvalidSeed, match="align_to selects a database's SQL tools"):
        validate_seed(tools_seed)
