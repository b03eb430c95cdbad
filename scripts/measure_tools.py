"""Measure tool preparation: `turnforge tools --json` on every Spider and demo database (template alone and with the
model) and on the Seal-Tools seed sets, then print the measures as Markdown tables.

    python scripts/measure_tools.py --out /tmp/toolprep            # run everything, then summarise
    python scripts/measure_tools.py --out /tmp/toolprep --summary-only

Needs the configured PostgreSQL and model (started per command if they are the embedded stack's and not running;
start them once with `turnforge up --no-model` + the model, or `turnforge up`, to save the start-up each time).
The Spider folder defaults to ../shared/data/spider; databases that are missing are skipped.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from shared.toolgen.measures import reason_category  # noqa: E402
DEMOS = ["telecom", "banking", "healthcare", "retail", "logistics", "education"]
SEAL_FIELDS = ["Telecommunications", "Healthcare", "Finance", "Insurance", "Hospitality", "Sports"]


def run(cmd: list[str], out: Path) -> None:
    print(" ".join(cmd[2:]), file=sys.stderr)
    with open(out, "w") as f, open(out.with_suffix(".err"), "w") as err:
        subprocess.run(cmd, stdout=f, stderr=err, cwd=REPO, check=False)


def databases(spider: Path) -> list[tuple[str, str]]:
    found = [(d.name, str(d / f"{d.name}.sqlite")) for d in sorted(spider.glob("*")) if (d / f"{d.name}.sqlite").is_file()]
    return found + [(n, n) for n in DEMOS]


def measure(args) -> None:
    tools = [sys.executable, "-m", "shared.cli", "tools"] + (["--config", args.config] if args.config else [])
    for mode in args.modes:
        for name, db in databases(Path(args.spider)):
            run(tools + ["--db", db, "--synthesizer", mode, "--llm-calls", str(args.llm_calls), "--json"],
                args.out / f"{mode}-{name}.json")
    for field in SEAL_FIELDS if args.seed_tools else []:
        run(tools + ["--seed-tools", args.seed_tools, "--field", field, "--limit", str(args.seed_limit),
                     "--expand-questions", str(args.expand_questions), "--json"], args.out / f"seed-{field}.json")


def _load(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def summarise(out: Path, modes: list[str]) -> str:
    lines = []
    for mode in modes:
        lines += [f"\n### --synthesizer {mode}\n",
                  "| database | proposed (tmpl/llm) | verified (tmpl/llm) | rejected by reason | kept | R/I/U/D "
                  "| join share | aggregate share | join-or-agg reads |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for path in sorted(out.glob(f"{mode}-*.json")):
            d = _load(path)
            if d is None:
                lines.append(f"| {path.stem[len(mode) + 1:]} | failed: see {path.with_suffix('.err').name} |")
                continue
            m = d["measures"]
            p, v = m["proposed_by_source"], m["verified_by_source"]
            crud = m["crud_mix"]
            by_reason = Counter(reason_category(r["reason"]) for r in d["rejected"])  # today's categories
            reasons = "; ".join(f"{k} {n}" for k, n in by_reason.most_common()) or "-"
            lines.append(f"| {d['domain']} | {p.get('template', 0)}/{p.get('llm', 0)} | {v.get('template', 0)}/"
                         f"{v.get('llm', 0)} | {reasons} | {m['kept']} | {crud['read']}/{crud['insert']}/"
                         f"{crud['update']}/{crud['delete']} | {m['share_with_join']} | {m['share_with_aggregate']} "
                         f"| {m['join_or_aggregate_reads']} |")
    seeds = sorted(out.glob("seed-*.json"))
    if seeds:
        lines += ["\n### seed tools (Seal-Tools fields)\n",
                  "| field | seeds | questions (discarded) | proposed q/c | added | rejected by reason | merged "
                  "| tools | type repairs | shapes repaired | field-name recall | type agreement |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for path in seeds:
            d = _load(path)
            if d is None:
                lines.append(f"| {path.stem[5:]} | failed: see {path.with_suffix('.err').name} |")
                continue
            m = d["measures"]
            st, added = m["proposed_by_stage"], m["added_by_stage"]
            truth = m["schema_vs_responses"] or {}
            reasons = "; ".join(f"{k} {n}" for k, n in m["rejected_by_reason"].items()) or "-"
            lines.append(f"| {d['domain']} | {m['seed_tools']} | {m['questions']} ({m.get('questions_discarded', 0)})"
                         f" | {st.get('question', 0)}/{st.get('complement', 0)} | {sum(added.values())} | {reasons} "
                         f"| {m['merged_near_duplicates']} | {m['tools']} | {len(m['type_conflicts_repaired'])} "
                         f"| {m['output_shape_repaired']} | {truth.get('field_name_recall')} "
                         f"| {truth.get('type_agreement')} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--config", help="turnforge config file")
    parser.add_argument("--modes", nargs="+", default=["template", "both"])
    parser.add_argument("--spider", default=str(REPO.parent / "shared" / "data" / "spider"))
    parser.add_argument("--seed-tools", default=str(REPO.parent / "shared" / "data" / "seed-tools" /
                                                    "seal_tools_subset.jsonl"))
    parser.add_argument("--seed-limit", type=int, default=6)
    parser.add_argument("--expand-questions", type=int, default=2)
    parser.add_argument("--llm-calls", type=int, default=3)
    parser.add_argument("--summary-only", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if not Path(args.seed_tools).is_file():
        args.seed_tools = ""
    if not args.summary_only:
        measure(args)
    print(summarise(args.out, args.modes))


if __name__ == "__main__":
    main()
