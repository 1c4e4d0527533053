"""The chart of a run (matplotlib, Agg backend): what docs/benchmarks.md shows.

Two panels. Left: for each echo and handshake scenario, every system's median rate over its
baseline's (the bare ASGI app, at 1.0), with the spread of the per-round ratios as error bars and
each target drawn over the bar it applies to. Right: the idle scenarios' memory per connection,
in KiB, with the target (the bare app's + 3 KiB) over the triows bar.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: The legend entry and the colour of each system, the same in both panels.
LOOKS = {
    "bare_echo": ("bare ASGI", "#9e9e9e"),
    "bare_json_echo": ("bare ASGI", "#9e9e9e"),
    "bare_accept": ("bare ASGI", "#9e9e9e"),
    "triows_echo": ("triows", "#1f77b4"),
    "triows_json_model": ("triows", "#1f77b4"),
    "triows_guarded": ("triows", "#1f77b4"),
    "triows_accept": ("triows, no guard/param/service", "#9ecae1"),
    "starlette_echo": ("Starlette", "#ff7f0e"),
    "fastapi_echo": ("FastAPI", "#2ca02c"),
}
MISSED = "#d62728"


def _look(system: str) -> tuple[str, str]:
    return LOOKS.get(system, (system, "#8c564b"))


def render(report: dict[str, Any], path: Path) -> None:
    """Draw ``report`` (what ``python -m bench`` writes as JSON) into the PNG ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = report["summary"]
    rates = [name for name, s in summary.items() if s["kind"] != "idle"]
    idle = [name for name, s in summary.items() if s["kind"] == "idle"]
    panels = [p for p in (rates, idle) if p]
    if not panels:
        return
    widths = [max(2, len(p)) * (1.6 if p is rates else 1.3) for p in panels]
    figure, axes = plt.subplots(
        1, len(panels), figsize=(sum(widths) + 1.5, 5.2), width_ratios=widths, squeeze=False
    )
    targets = report.get("targets", [])
    panel = iter(axes[0])
    if rates:
        _rates(next(panel), summary, rates, targets)
    if idle:
        _idle(next(panel), summary, idle, targets)
    m = report["meta"]
    machine = m["machine"]
    figure.suptitle(
        f"triows benchmarks, {m['date'][:10]}, medians of {m['rounds']} interleaved rounds\n"
        f"{machine['cpus']} x {machine['cpu_model']}, {machine['python']}, "
        f"hypercorn {machine['packages'].get('hypercorn')} --worker-class trio",
        fontsize=9,
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _bars(
    names: list[str], summary: dict[str, Any], include_baseline: bool
) -> tuple[float, list[tuple[float, str, str, dict[str, Any]]]]:
    """The bar width, and (x, scenario, system, row) for each bar, grouped by scenario."""
    groups = [
        [
            (system, row)
            for system, row in summary[name]["systems"].items()
            if include_baseline or system != summary[name]["baseline"]
        ]
        for name in names
    ]
    width = 0.8 / max(1, *(len(g) for g in groups))
    bars = []
    for i, (name, systems) in enumerate(zip(names, groups, strict=True)):
        for j, (system, row) in enumerate(systems):
            bars.append((i + (j - (len(systems) - 1) / 2) * width, name, system, row))
    return width, bars


def _rates(axis: Any, summary: dict[str, Any], names: list[str], targets: list[Any]) -> None:
    width, bars = _bars(names, summary, include_baseline=False)
    seen: set[str] = set()
    for x, _, system, row in bars:
        ratio = row.get("ratio")
        if ratio is None:
            continue
        per_round = row.get("ratio_per_round") or [ratio]
        label, colour = _look(system)
        axis.bar(
            x,
            ratio,
            width * 0.9,
            color=colour,
            yerr=[[max(0.0, ratio - min(per_round))], [max(0.0, max(per_round) - ratio)]],
            capsize=2,
            error_kw={"linewidth": 0.8},
            label=None if label in seen else label,
        )
        seen.add(label)
        top = max(ratio, *per_round)
        axis.text(x, top + 0.005, f"{ratio:.2f}", ha="center", va="bottom", fontsize=7)
    labelled = False
    for target in targets:
        if target["kind"] != "ratio" or target["scenario"] not in names:
            continue
        rows = summary[target["scenario"]]["systems"]
        base = summary[target["scenario"]]["baseline"]
        level = target["min_ratio"]
        if target["versus"] != base:  # vs another system: scale by that one's own ratio
            other = rows.get(target["versus"], {}).get("ratio")
            if other is None:
                continue
            level *= other
        for x, name, system, _ in bars:
            if name == target["scenario"] and system == target["system"]:
                axis.hlines(
                    level,
                    x - width * 0.6,
                    x + width * 0.6,
                    colors=MISSED if target["met"] is False else "black",
                    linestyles="--" if target["versus"] == base else ":",
                    linewidth=1.4,
                    label=None
                    if labelled
                    else "target (--: vs bare, ..: vs Starlette; red: missed)",
                )
                labelled = True
    axis.axhline(1.0, color="#555555", linewidth=0.8)
    axis.set_xticks(range(len(names)), names, fontsize=8)
    axis.set_ylim(0.5, 1.25)
    axis.set_ylabel("rate / bare ASGI rate (same run)", fontsize=8)
    axis.set_title("throughput and handshakes, ratio to bare ASGI", fontsize=9)
    axis.tick_params(axis="y", labelsize=8)
    axis.legend(fontsize=7, loc="upper left", ncols=3)
    axis.grid(axis="y", linewidth=0.3)


def _idle(axis: Any, summary: dict[str, Any], names: list[str], targets: list[Any]) -> None:
    width, bars = _bars(names, summary, include_baseline=True)
    seen: set[str] = set()
    for x, _, system, row in bars:
        value = row.get("value")
        if value is None:
            continue
        low, high = row.get("value_min", value), row.get("value_max", value)
        label, colour = _look(system)
        axis.bar(
            x,
            value,
            width * 0.9,
            color=colour,
            yerr=[[value - low], [high - value]],
            capsize=2,
            error_kw={"linewidth": 0.8},
            label=None if label in seen else label,
        )
        seen.add(label)
        axis.text(x, high, f"{value:.1f}", ha="center", va="bottom", fontsize=7)
    labelled = False
    for target in targets:
        if target["kind"] not in ("excess_kib", "max_kib") or target["scenario"] not in names:
            continue
        if target["kind"] == "max_kib":
            base, allowed = 0.0, target["max_kib"]
        else:
            base = summary[target["scenario"]]["systems"].get(target["versus"], {}).get("value")
            allowed = target["max_excess_kib"]
        if base is None:
            continue
        for x, name, system, _ in bars:
            if name == target["scenario"] and system == target["system"]:
                axis.hlines(
                    base + allowed,
                    x - width * 0.6,
                    x + width * 0.6,
                    colors=MISSED if target["met"] is False else "black",
                    linestyles="--",
                    linewidth=1.4,
                    label=None if labelled else "targets: bare + 3 KiB, or ≤ 30 KiB (red: missed)",
                )
                labelled = True
    axis.set_xticks(range(len(names)), names, fontsize=8)
    axis.set_ylabel("server RSS growth per idle connection, KiB", fontsize=8)
    axis.set_ylim(0, axis.get_ylim()[1] * 1.25)
    axis.set_title("idle memory per connection", fontsize=9)
    axis.tick_params(axis="y", labelsize=8)
    axis.legend(fontsize=7, loc="upper left")
    axis.grid(axis="y", linewidth=0.3)
