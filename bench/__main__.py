"""``python -m bench``: run the benchmark suite, print the table, write the JSON and the chart.

    python -m bench [--rounds 5] [--seconds 2] [--warmup 0.5] [--scenarios ...] [--systems ...]
                    [--quick] [--json FILE] [--chart FILE] [--no-chart] [--no-pin]
                    [--write-docs]

Every scenario of ``bench.echo.SCENARIOS`` (or those named), each system in its own hypercorn
process, driven by a separate load process, rounds interleaved. It prints the table of medians,
ratios and targets, and writes:

- ``bench/results/latest.json``: every run, the summary, the targets and the machine;
- ``docs/benchmarks.png``: the chart (needs matplotlib, in the ``bench`` extra);
- with ``--write-docs``, the results section of ``docs/benchmarks.md``.

``--quick`` is a try-out (1 round of 0.5 s, 200 idle connections) that writes to
``bench/results/quick.json`` and ``quick.png`` instead, so it never replaces the published run.
The exit status is 1 if a run failed or saw errors; missed targets are reported, not fatal.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench import report as reporting
from bench.echo import (
    ROOT,
    SCENARIOS,
    SYSTEMS,
    check_targets,
    measure,
    pinning,
    summarize,
)

RESULTS = ROOT / "bench" / "results"
DOCS_PAGE = ROOT / "docs" / "benchmarks.md"
DOCS_CHART = ROOT / "docs" / "benchmarks.png"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the suite; 0 if every run finished without errors (skipped systems aside)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run the benchmark suite: print the table, write the JSON and the chart.",
    )
    parser.add_argument("--rounds", type=int, help="rounds per scenario (default 5)")
    parser.add_argument("--seconds", type=float, help="measured seconds per run (default 2)")
    parser.add_argument("--warmup", type=float, help="unmeasured seconds per run (default 0.5)")
    parser.add_argument("--scenarios", nargs="+", choices=list(SCENARIOS), default=list(SCENARIOS))
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=SYSTEMS)
    parser.add_argument(
        "--idle-connections", type=int, help="connections of the idle scenarios (default 2000)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a try-out: 1 round of 0.5 s, 200 idle connections; writes bench/results/quick.*",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="where to write the results")
    parser.add_argument("--chart", type=Path, metavar="FILE", help="where to draw the chart")
    parser.add_argument("--no-chart", action="store_true", help="draw no chart")
    parser.add_argument(
        "--no-pin", action="store_true", help="do not pin the servers and the load to 2 CPUs"
    )
    parser.add_argument(
        "--write-docs", action="store_true", help=f"update the results in {DOCS_PAGE.name}"
    )
    args = parser.parse_args(argv)
    quick = args.quick
    rounds = args.rounds or (1 if quick else 5)
    seconds = args.seconds or (0.5 if quick else 2.0)
    warmup = args.warmup if args.warmup is not None else (0.2 if quick else 0.5)
    idle_connections = args.idle_connections or (200 if quick else None)
    json_path = args.json or RESULTS / ("quick.json" if quick else "latest.json")
    chart_path = args.chart or (RESULTS / "quick.png" if quick else DOCS_CHART)
    if not 1 <= rounds <= 100 or not 0 < seconds <= 600 or not 0 <= warmup <= 60:
        parser.error("need 1 <= --rounds <= 100, 0 < --seconds <= 600, 0 <= --warmup <= 60")
    if idle_connections is not None and not 1 <= idle_connections <= 10_000:
        parser.error("need 1 <= --idle-connections <= 10000")
    if args.write_docs and quick:
        parser.error("--write-docs publishes a full run: drop --quick")

    started = time.monotonic()
    runs, skipped = measure(
        args.scenarios,
        args.systems,
        rounds,
        seconds,
        warmup,
        idle_connections,
        pin=not args.no_pin,
    )
    summary = summarize(runs, args.scenarios)
    elapsed = time.monotonic() - started
    cpus = None if args.no_pin else pinning()
    settings = {
        "rounds": rounds,
        "seconds": seconds,
        "warmup": warmup,
        "quick": quick,
        "pinned": {"server_cpu": cpus.server, "client_cpu": cpus.client} if cpus else None,
    }
    report = {
        "meta": reporting.meta(settings, elapsed, argv),
        "summary": summary,
        "targets": check_targets(summary, runs),
        "skipped": skipped,
        "runs": runs,
    }

    print(reporting.terminal(report))
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", "utf-8")
    print(f"wrote {_shown(json_path)}")
    if not args.no_chart:
        try:
            from bench import chart
        except ImportError as exc:  # pragma: no cover - matplotlib is in the bench extra
            print(f"no chart: {exc} (pip install -e '.[bench]')")
        else:
            chart.render(report, chart_path)
            print(f"wrote {_shown(chart_path)}")
    if args.write_docs:
        reporting.write_docs(report, DOCS_PAGE)
        print(f"updated {_shown(DOCS_PAGE)}")
    bad = any("failed" in r or r["errors"] for r in runs)
    return 1 if bad else 0


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
