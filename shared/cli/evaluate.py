"""`turnforge align`, `turnforge tasks import-dysql|export` and `turnforge eval`: argument parsing and printing;
the work is in shared.evaluation and shared.run.evaluation.

Both use the configured PostgreSQL where they need one (`align --db`, `tasks import-dysql`), started for the
command and stopped after it when it is the embedded stack's and not running, as `turnforge tools` does.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path

from shared.evaluation.alignment import align, executed_tool_sql, workload
from shared.evaluation.alignment import read_statements as target_statements
from shared.evaluation import report
from shared.evaluation.dysql import import_dysql, write_task_set
from shared.evaluation.task_set import export_task_set, load_task_set
from shared.cli.stacks import EMBEDDED_HELP, stack_for
from shared.run import evaluation, review
from shared.ops import stack
from shared.ops.tools import database_toolset
from shared.run.stats import load_records
from shared.runtime.llm import quiet_http_client_logs
from shared.runtime.config import Settings, load_settings

TOOL_DIALECT = "postgres"  # the SQL TurnForge's tools run


def _with_settings(command):
    return lambda args: command(args, load_settings(args.config or os.environ.get("TURNFORGE_CONFIG") or None))


def _training_statements(args, settings: Settings, target) -> tuple[list[str], str, dict | None]:
    """(the statements to measure, where they came from, the selection's before/after or None) for --dataset or
    --db; with --select-for-target the --db toolset is the one selected for `target` (n-gram counts)."""
    if args.dataset:
        if args.select_for_target:
            raise ValueError("--select-for-target selects a database's tools: give --db, not --dataset")
        found = executed_tool_sql(load_records([args.dataset]))
        if not found.statements:
            raise ValueError(f"no executed tool SQL in {args.dataset}: {found.records_without_bindings} of "
                             f"{found.records} records carry no metadata.tool_bindings (written by newer runs), and "
                             "the others made no successful call; nothing to align")
        skipped = f", {found.records_without_bindings} records without tool bindings skipped" \
            if found.records_without_bindings else ""
        return found.statements, f"{len(found.statements)} executed calls in {found.records} records{skipped}", None
    quiet_http_client_logs()
    with contextlib.ExitStack() as needs:
        needs.enter_context(stack.postgres_available(settings))
        if args.synthesizer != "template":
            needs.enter_context(stack.model_available(settings))
        toolset = database_toolset(settings, args.db, synthesizer=args.synthesizer,
                                   align_to=target if args.select_for_target else None)
    source = f"{len(toolset['tools'])} tools of domain {toolset['domain']}"
    return [t["sql"] for t in toolset["tools"]], source, toolset.get("selection")


def cmd_align(args, settings: Settings) -> int:
    target = workload(target_statements(args.target), args.target_dialect)
    statements, source, selection = _training_statements(args, settings, target.counts)
    training = workload(statements, TOOL_DIALECT)
    result = align(training.counts, target.counts, top=args.top)
    figures = {
        "kl_alignment": round(result.kl_alignment, 4),
        "overlap_ratio": round(result.overlap_ratio, 4),
        "kl_divergence": round(result.kl_divergence, 4),
        "top_missing": [{"ngram": gram, "target_count": count} for gram, count in result.top_missing],
        "training": {"source": source, "statements": training.statements, "unparsed": len(training.unparsed)},
        "target": {"source": args.target, "statements": target.statements, "unparsed": len(target.unparsed)},
    }
    if selection is not None:  # the figures above are the selected toolset's; the default's come with them
        figures["selection"] = {
            side: {"kl_alignment": round(selection[side]["kl_alignment"], 4),
                   "overlap_ratio": round(selection[side]["overlap_ratio"], 4),
                   "tools": len(selection[side]["tools"]), "tools_kept": selection[side]["tools"]}
            for side in ("before", "after")}
        figures["selection"] |= {k: selection[k] for k in ("added", "dropped", "floor_tables", "fell_back")}
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"training: {source}; {training.statements} statements parsed, {len(training.unparsed)} not")
    print(f"target:   {args.target}; {target.statements} statements parsed, {len(target.unparsed)} not")
    if selection is not None:
        chosen = figures["selection"]
        for side, label in (("before", "default toolset"), ("after", "selected for target")):
            f = chosen[side]
            print(f"{label:>20}: KL-alignment {f['kl_alignment']}, overlap ratio {f['overlap_ratio']}, "
                  f"{f['tools']} tools")
        if chosen["fell_back"]:
            print("  no selection aligned better than the default toolset: the default is kept")
        print(f"  added: {', '.join(chosen['added']) or '-'}")
        print(f"  dropped: {', '.join(chosen['dropped']) or '-'}")
        print(f"  a read tool kept for each table: {', '.join(chosen['floor_tables']) or '-'}")
    print(f"KL-alignment {figures['kl_alignment']}  (D_KL {figures['kl_divergence']}; 1/e is no alignment)")
    print(f"overlap ratio {figures['overlap_ratio']}  (share of the target's n-grams the training data has)")
    print("most frequent target n-grams the training data lacks:")
    for gram, count in result.top_missing:
        print(f"  {count:>5}  {gram}")
    return 0


def cmd_import_dysql(args, settings: Settings) -> int:
    domain = args.name or f"dysql_{args.env}"
    with stack.postgres_available(settings):
        result = import_dysql(settings.postgres.dsn, args.tasks, args.env, args.db, domain)
    write_task_set(result.tasks, args.out)
    total = len(result.tasks) + len(result.skipped)
    print(f"domain {result.domain}: {len(result.tasks)} of {total} tasks frozen -> {args.out}")
    for note in result.import_notes:
        print(f"  import note: {note}")
    for skipped in result.skipped:
        print(f"  left out task {skipped.index} (user {skipped.user_id}): {skipped.reason}")
    return 0 if result.tasks else 1


def dataset_path(path: str) -> Path:
    """A dataset.jsonl, or a run's output folder holding one."""
    found = Path(path) / "dataset.jsonl" if Path(path).is_dir() else Path(path)
    if not found.exists():
        raise FileNotFoundError(f"no dataset at {found}")
    return found


def cmd_export_tasks(args) -> int:
    path = dataset_path(args.dataset)
    result = export_task_set(load_records([str(path)]), accepted_only=args.accepted_only)
    write_task_set(result.tasks, args.out)
    print(f"{len(result.tasks)} of {len(result.tasks) + len(result.skipped)} trajectories frozen -> {args.out}")
    for record_id, reason in result.skipped:
        print(f"  left out {record_id}: {reason}")
    rejected = path.parent / "rejected.jsonl"
    if rejected.exists() and rejected.read_text().strip():
        # A rejected trajectory's golden actions are its tasks' as much as an accepted one's, but the set freezes
        # what the dataset holds: the trajectories a model would be trained on.
        print(f"  {rejected} not used: only the dataset's (accepted) trajectories are frozen")
    return 0 if result.tasks else 1


def cmd_eval(args, settings: Settings) -> int:
    records = load_task_set(args.tasks, args.limit)
    agents = [evaluation.parse_agent(spec) for spec in args.agent or ["model"]]
    if len({a.name for a in agents}) < len(agents):
        raise ValueError("two --agent options have the same name")
    if args.embedded and args.resume:
        raise ValueError("--resume needs a durable broker; the embedded one forgets its topics on stop")
    # The reference agents with their scripted user call no model: their stack needs none.
    with stack_for(settings, args.embedded, "eval", model=not all(a.scripted_user for a in agents)) as settings:
        result = evaluation.run_evaluation(settings, records, agents, args.k, run_id=args.resume,
                                           timeout_s=args.timeout_s, max_user_turns=args.max_turns)
    figures = report.figures(result.trials, len(records))
    figures |= {"run_id": result.run_id, "dead_lettered": result.dead_lettered, "missing": result.missing}
    if args.out:
        notes = [f"tasks: {args.tasks} ({len(records)}), k = {args.k}, user turn cap {args.max_turns}",
                 f"agents: {', '.join(a.name for a in agents)}",
                 f"dead-lettered trials: {result.dead_lettered}, missing: {result.missing}"
                 + (" (timed out)" if result.timed_out else ""), f"wall time: {result.wall_s:.1f} s"]
        notes += [f"dead-lettered {n}x: {reason}" for reason, n in result.dead_letter_reasons.most_common()]
        for path in report.write_report(figures, Path(args.out), result.run_id, notes):
            print(f"wrote {path}")
        print(f"wrote {evaluation.write_trials(result.verdicts, Path(args.out))}")
        print(f"review page: {review.write_page(Path(args.out))}")
    for reason, n in result.dead_letter_reasons.most_common():
        print(f"dead-lettered {n}x: {reason}", file=sys.stderr)
    if not args.json:
        for name, f in (figures.get("agents") or {figures["agent"]: figures}).items():
            print(f"{name}: {f['executable']} of {f['tasks']} tasks executable, {f['trials']} trials, "
                  f"Pass^k {f['pass_hat_k']}, DSR {f['dsr']}, TCA {f['tca']}, STC {f['stc']}")
    print(json.dumps(figures) if args.json else f"run id {result.run_id}")
    return 0 if not result.timed_out else 1


def add_parsers(sub, common) -> None:
    """Register `align` and `tasks` on the turnforge command's subparsers."""
    p = sub.add_parser("align", parents=[common],
                       help="structural alignment (KL-alignment, n-gram overlap) of TurnForge SQL with a target "
                            "workload")
    p.add_argument("--target", required=True, metavar="TARGET.sql", help="the target workload, one statement a line")
    p.add_argument("--target-dialect", default="sqlite", help="SQL dialect of the target, as sqlglot names it "
                                                              "(default: sqlite, as Spider and DySQL-Bench write it)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", metavar="DATASET.jsonl", help="a dataset: the SQL its executed tool calls ran")
    source.add_argument("--db", metavar="DOMAIN_OR_SQLITE",
                        help="a registered domain, SQLite file or DSN: the SQL of the toolset built for it")
    p.add_argument("--synthesizer", choices=["template", "llm", "both"], default="template",
                   help="--db: who proposes the tools (default: the schema templates, no model needed)")
    p.add_argument("--select-for-target", action="store_true",
                   help="--db: keep, among the verified candidate tools, the toolset that aligns best with the "
                        "target (as a seed's settings.align_to does) and show the default's figures beside it")
    p.add_argument("--top", type=int, default=20, help="missing n-grams to show (default 20)")
    p.add_argument("--json", action="store_true", help="print kl_alignment, overlap_ratio and the top missing "
                                                       "n-grams as JSON")
    p.set_defaults(func=_with_settings(cmd_align))
    tasks = sub.add_parser("tasks", help="frozen evaluation task sets").add_subparsers(dest="tasks_command",
                                                                                      required=True)
    p = tasks.add_parser("import-dysql", parents=[common],
                         help="freeze DySQL-Bench tasks: golden SQL in PostgreSQL, golden end-state hashes")
    p.add_argument("tasks", metavar="TASKS.json", help="DySQL-Bench tasks: {env: [{user_id, instruction, actions}]}")
    p.add_argument("--env", required=True, help="the environment to import (e.g. bowling)")
    p.add_argument("--db", required=True, metavar="FILE.sqlite", help="the environment's SQLite database")
    p.add_argument("--name", help="domain name (default: dysql_<env>); a domain of that name is replaced")
    p.add_argument("--out", required=True, metavar="FILE.jsonl", help="the frozen task set")
    p.set_defaults(func=_with_settings(cmd_import_dysql))
    p = tasks.add_parser("export", help="freeze a generation run's planned tasks (one per trajectory) with their "
                                        "golden end-state hash")
    p.add_argument("--dataset", required=True, metavar="DIR_OR_DATASET",
                   help="a run's output folder or its dataset.jsonl")
    p.add_argument("--accepted-only", action="store_true", help="only trajectories the validator accepted")
    p.add_argument("--out", required=True, metavar="FILE.jsonl", help="the frozen task set")
    p.set_defaults(func=cmd_export_tasks)

    p = sub.add_parser("eval", parents=[common], help="run agents on a frozen task set, k trials per task, through "
                                                     "the services; Pass^k, DSR, TCA, STC")
    p.add_argument("--tasks", required=True, metavar="FILE.jsonl", help="a frozen task set (tasks import-dysql or "
                                                                       "tasks export)")
    p.add_argument("--agent", action="append", metavar="AGENT",
                   help="model (the configured agent role; default), oracle, noop, or name=base_url[#model] "
                        "(an OpenAI-compatible endpoint with native tool calls); repeatable")
    p.add_argument("-k", type=int, default=1, help="trials per task (default 1); Pass^k for every k up to it")
    p.add_argument("--limit", type=int, help="the first N tasks only")
    p.add_argument("--max-turns", type=int, default=evaluation.DEFAULT_MAX_USER_TURNS,
                   help="user turn cap (default 30, DySQL-Bench's)")
    p.add_argument("--timeout-s", type=float, default=3600)
    p.add_argument("--embedded", action="store_true", help=EMBEDDED_HELP)
    p.add_argument("--resume", metavar="RUN_ID", help="finish an interrupted evaluation (same task set and agents)")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object on the last line")
    p.add_argument("--out", metavar="DIR", help="write report.md and plots there")
    p.set_defaults(func=_with_settings(cmd_eval))
