"""Plot generated tokens/s of the server alone and through the pipeline over concurrency, from `make bench` output.

    python e2e-tests/benchmarks/plot_throughput.py BENCH_OUTPUT [BENCH_OUTPUT_BEFORE] --out docs/performance-throughput.png

Each BENCH_OUTPUT is a file holding `make bench`'s output (its last line is the JSON object); a second one is drawn
dashed, as the figures before a change.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402


def figures(path: Path) -> dict:
    return json.loads(path.read_text().strip().splitlines()[-1])


def plot(runs: list[tuple[str, dict]], out: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (label, data), style in zip(runs, ("-", "--")):
        levels = sorted(data["throughput"], key=int)
        xs = [int(c) for c in levels]
        ax.plot(xs, [data["throughput"][c]["direct_tokens_per_s"] for c in levels], "o" + style, color="tab:blue",
                label=f"server alone{label}")
        ax.plot(xs, [data["throughput"][c]["pipeline_tokens_per_s"] for c in levels], "s" + style, color="tab:orange",
                label=f"through the pipeline{label}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("concurrency C (the server's batch limit; the pipeline runs 2–4 trajectories per slot)")
    ax.set_ylabel("generated tokens/s")
    ax.set_title(f"Simulated batching server, {runs[0][1]['machine']}")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("after", type=Path)
    p.add_argument("before", type=Path, nargs="?")
    p.add_argument("--out", type=Path, default=Path("docs/performance-throughput.png"))
    args = p.parse_args()
    runs = [("", figures(args.after))]
    if args.before:
        runs = [(" (after)", runs[0][1]), (" (before)", figures(args.before))]
    plot(runs, args.out)


if __name__ == "__main__":
    main()
