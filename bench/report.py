"""Writes bench/results/latest.json (everything, every repeat), latest.md (the
tables, what each measures, the targets of issue 5) and latest.png (a plot).

    python -m bench.report   # re-render latest.md and latest.png from latest.json
"""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"

ORDER = (
    "ingest",
    "validation",
    "pipeline",
    "latency",
    "cost",
    "peers",
    "end_to_end",
    "drain",
    "pgbench",
    "stream",
    "growth",
    "prune",
    "scale",
)


def write(results: dict[str, Any]) -> list[Path]:
    RESULTS.mkdir(exist_ok=True)
    results["targets"] = targets(results["sections"])
    json_path = RESULTS / "latest.json"
    json_path.write_text(json.dumps(_finite(results), indent=1) + "\n", encoding="utf-8")
    md_path = RESULTS / "latest.md"
    md_path.write_text(markdown(results), encoding="utf-8")
    png_path = RESULTS / "latest.png"
    plot(results, png_path)
    return [md_path, json_path, png_path]


def earlier_sections(profile: str) -> dict[str, dict[str, Any]]:
    """The sections of latest.json, each marked with the run it came from (for
    bench.run --merge); none if that run had another profile."""
    path = RESULTS / "latest.json"
    if not path.exists():
        return {}
    earlier = json.loads(path.read_text(encoding="utf-8"))
    if earlier.get("profile") != profile:
        raise SystemExit(f"--merge: latest.json is a {earlier.get('profile')} run, not {profile}")
    run = {"started_at": earlier["started_at"], "command": earlier["command"]}
    sections: dict[str, dict[str, Any]] = earlier["sections"]
    for section in sections.values():
        section.setdefault("run", run)
    return sections


def targets(sections: dict[str, Any]) -> list[dict[str, Any]]:
    """The targets of issues 10, 12, 13 and 5, each with its measured figure
    (None: not measured)."""

    def get(*keys: str) -> float | None:
        value: Any = sections
        for key in keys:
            if not isinstance(value, dict) or key not in value:
                return None
            value = value[key]
        return None if value is None or _nan(value) else float(value)

    rows = [
        # Issue 10: the default configuration against the baselines it defines.
        ("1. Ingest (defaults) req/s >= 0.95 x the minimal durable handler's", "ratio", 0.95,
         ">=", get("ingest", "summary", "service_defaults", "rps_vs_durable")),
        ("1. Ingest (defaults) req/s >= 0.90 x the bare handler's", "ratio", 0.90, ">=",
         get("ingest", "summary", "service_defaults", "rps_vs_bare")),
        ("1. Ingest (defaults) p99 <= 1.5 x the bare handler's p99", "ratio", 1.5, "<=",
         get("ingest", "summary", "service_defaults", "p99_vs_bare")),
        ("1. Ingest signed (defaults, secrets set) req/s >= 0.95 x unsigned defaults'", "ratio",
         0.95, ">=", get("ingest", "summary", "signed_vs_defaults")),
        ("2. Pipeline (serve, defaults) processed/s >= 0.60 x bare req/s", "ratio", 0.60, ">=",
         get("pipeline", "summary", "serve", "processed_vs_bare")),
        ("2. Pipeline backlog at the end <= 1 s of work", "abs", 1.0, "<=",
         get("pipeline", "summary", "serve", "max_backlog_s")),
        ("3. Open loop 2000/s: 202 p99 <= 1.5 x bare 202 p99", "ratio", 1.5, "<=",
         get("latency", "summary", "2000", "service_202_p99_vs_bare")),
        ("3. Open loop 2000/s: webhook -> message commit p99 <= 2.5 x bare 202 p99", "ratio",
         2.5, "<=", get("latency", "summary", "2000", "commit_p99_vs_bare")),
        ("3. Open loop 2000/s: commit max <= 100 ms", "abs", 100.0, "<=",
         get("latency", "summary", "2000", "commit_max_ms")),
        ("3. Open loop 200/s: webhook -> message commit p50 <= 5 ms", "abs", 5.0, "<=",
         get("latency", "summary", "200", "commit_p50_ms")),
        ("3. Open loop 200/s: webhook -> message commit p99 <= 15 ms", "abs", 15.0, "<=",
         get("latency", "summary", "200", "commit_p99_ms")),
        ("5. Drain >= 3 x pgqueuer doing the same work", "ratio", 3.0, ">=",
         get("peers", "summary", "pgqueuer_work", "service_drain_vs_this")),
        ("5. Drain >= 3 x procrastinate doing the same work", "ratio", 3.0, ">=",
         get("peers", "summary", "procrastinate_work", "service_drain_vs_this")),
        ("5. Drain >= 0.80 x the SQL-only limit", "ratio", 0.80, ">=",
         get("peers", "summary", "sql_limit", "service_drain_vs_this")),
        # Issue 12: the event stream, `messaging serve` with default settings.
        ("9. Stream 200/s, 1 consumer: webhook -> event received p50 <= 10 ms", "abs", 10.0,
         "<=", get("stream", "summary", "delivery", "200/s x1", "p50_ms")),
        ("9. Stream 200/s, 50 consumers: webhook -> event received p50 <= 10 ms", "abs", 10.0,
         "<=", get("stream", "summary", "delivery", "200/s x50", "p50_ms")),
        ("9. Ingest (serve) with 50 consumers reading >= 0.90 x with none", "ratio", 0.90, ">=",
         get("stream", "summary", "ingest", "ratio")),
        # Issue 13: the same work with months of history in the tables, and
        # ingest while a prune of a million rows runs.
        ("10. Growth: ingest (serve) with the history >= 0.90 x nearly empty", "ratio", 0.90,
         ">=", get("growth", "summary", "ingest_ratio")),
        ("10. Growth: drain with the history >= 0.90 x nearly empty", "ratio", 0.90, ">=",
         get("growth", "summary", "drain_ratio")),
        ("10. Growth: GET /api/conversations page 1 p99 with the history <= 2 x nearly empty",
         "ratio", 2.0, "<=", get("growth", "summary", "conversations_first_p99_ratio")),
        ("10. Growth: GET /api/conversations middle page p99 with the history <= 2 x nearly "
         "empty", "ratio", 2.0, "<=", get("growth", "summary", "conversations_middle_p99_ratio")),
        ("10. Growth: GET /api/conversations/{id}/messages p99 with the history <= 2 x nearly "
         "empty", "ratio", 2.0, "<=", get("growth", "summary", "messages_p99_ratio")),
        ("11. Ingest p99 while a prune runs <= 1.2 x without", "ratio", 1.2, "<=",
         get("prune", "summary", "p99_ratio")),
        # Issue 5's, kept: LOG_LEVEL=WARNING against the validating ceiling.
        ("Issue 5: ingest (WARNING) req/s >= 0.90 x the validating ceiling's", "ratio", 0.90,
         ">=", get("ingest", "summary", "service", "rps_vs_ceiling")),
        ("Issue 5: ingest (WARNING) p99 <= 1.5 x the ceiling's p99", "ratio", 1.5, "<=",
         get("ingest", "summary", "service", "p99_vs_ceiling")),
        ("Issue 5: polling at 1 s >= 100 x NOTIFY's p50 (200/s)", "ratio", 100.0, ">=",
         get("end_to_end", "summary", "200", "poll_1000ms", "p50_vs_notify")),
        ("Issue 5: drain >= 2 x pgqueuer's no-op drain rate", "ratio", 2.0, ">=",
         get("peers", "summary", "pgqueuer", "service_drain_vs_this")),
    ]  # fmt: skip
    machine = _machine_now(sections)
    out = []
    for name, kind, bound, op, value in rows:
        met = None if value is None else (value >= bound if op == ">=" else value <= bound)
        context = machine if name.startswith("3.") else ""
        out.append(
            {"target": name, "kind": kind, "measured": value, "met": met, "context": context}
        )
    return out


def _machine_now(sections: dict[str, Any]) -> str:
    """What a bare 202 and a one-row commit cost while the latency section ran,
    for the latency targets' row: the service's share against the machine's."""
    section = sections.get("latency") or {}
    m = section.get("summary", {}).get("machine")
    if not m:
        return ""
    return (
        f"bare 202 {_fmt(m['bare_202_p50_ms'])} ms; one-row commit "
        f"{_fmt(m['one_row_commit_p50_ms'])}-{_fmt(m['one_row_commit_p99_ms'])} ms (p50-p99)"
    )


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    pg = m["postgres"]
    lines = [
        "# Benchmark results",
        "",
        f"`{results['command']}` (profile **{results['profile']}**), started "
        f"{results['started_at']}, took {results['elapsed_s']:.0f} s. "
        "Written by `bench/report.py`; every repeat is in `latest.json`." + _runs_note(results),
        "",
        "## Machine",
        "",
        f"- {m['cores']} cores ({m['cpu']}), {m['memory']}, {m['os']}, Python {m['python']}; "
        "shared with other work while this ran.",
        f"- PostgreSQL {pg['version']}, {m['database']}: shared_buffers {pg['shared_buffers']}, "
        f"synchronous_commit {pg['synchronous_commit']}, fsync {pg['fsync']}, "
        f"track_commit_timestamp {pg['track_commit_timestamp']}.",
        f"- Load: {m['load_generator']}. Packages: "
        + ", ".join(f"{k} {v}" for k, v in m["packages"].items())
        + ".",
        f"- The service's worker (`messaging worker`): "
        f"{'present' if m['worker_available'] else 'not on this branch'}.",
        "",
        "## How to read this",
        "",
        "- Figures marked **(ratio)** compare two things measured back to back in this run "
        "(median of the per-repeat ratios): they carry over to other machines.",
        "- Figures marked **(abs)** are absolute: this machine, this moment, only. The machine "
        "is shared and noisy, which is why each figure is the median of "
        f"{results['repeats']} repeats with the variants in rotating order.",
        "",
        "## Targets (issues 10, 12 and 13, then issue 5's)",
        "",
        "| target | measured | met | machine at that moment |",
        "|---|---|---|---|",
    ]
    for t in results["targets"]:
        value = "not measured" if t["measured"] is None else f"{_fmt(t['measured'])} ({t['kind']})"
        met = {None: "n/a", True: "yes", False: "**no**"}[t["met"]]
        lines.append(f"| {t['target']} | {value} | {met} | {t.get('context', '')} |")
    lines += ["", "![plot](latest.png)", ""]
    for name in ORDER:
        if name in results["sections"]:
            lines += _section_md(results["sections"][name])
    lines += [
        "## Commands",
        "",
        "```sh",
        "make bench         # the full suite (about an hour on 2 cores)",
        "make bench-quick   # the same scenarios, shorter (two to three minutes)",
        ".venv/bin/python -m bench.run [--quick] --only ingest pgbench   # some scenarios",
        "BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres make bench-quick",
        "```",
        "",
        "Without `BENCH_DATABASE_URL` the suite starts the embedded PostgreSQL in "
        "`bench/.work/pgdata` (Unix socket only). Logs of every process: `bench/.work/logs/`.",
        "",
    ]
    return "\n".join(lines)


def _runs_note(results: dict[str, Any]) -> str:
    """Where sections come from more than one run (bench.run --merge): which."""
    runs = {
        (s["run"]["started_at"], s["run"]["command"])
        for s in results["sections"].values()
        if s.get("run")
    }
    if len(runs) < 2:
        return ""
    listed = "; ".join(f"`{command}` started {started}" for started, command in sorted(runs))
    return f" The sections come from {len(runs)} runs ({listed}); each section names its own."


def _section_md(s: dict[str, Any]) -> list[str]:
    lines = [f"## {s['title']}", ""]
    if s["status"] != "ok":
        return [*lines, f"**{s['status']}**: {s.get('reason', '')}", ""]
    lines += [s["what"], ""]
    for t in s["tables"]:
        lines += [f"**{t['title']}**", ""]
        lines.append("| " + " | ".join(t["columns"]) + " |")
        lines.append("|" + "---|" * len(t["columns"]))
        for row in t["rows"]:
            lines.append("| " + " | ".join(_fmt(cell) for cell in row) + " |")
        lines.append("")
    for note in s.get("notes", []):
        lines.append(f"- {note}")
    if s.get("notes"):
        lines.append("")
    run = s.get("run")
    source = f"; from the run `{run['command']}` started {run['started_at']}" if run else ""
    lines += [f"_({s.get('elapsed_s', 0):.0f} s{source})_", ""]
    return lines


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if _nan(value):
        return "n/a"
    if isinstance(value, int):
        return f"{value:,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _nan(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _finite(value: Any) -> Any:
    """NaN (not measured) as null: JSON has no NaN."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return None if _nan(value) else value


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sections = results["sections"]
    fig, axes = plt.subplots(2, 3, figsize=(19, 9))
    fig.suptitle(
        f"messaging-service benchmarks ({results['profile']} run, "
        f"{results['machine']['cores']} cores, PostgreSQL "
        f"{results['machine']['postgres']['version']}): medians of repeats",
        fontsize=12,
    )
    _plot_ingest(axes[0][0], sections.get("ingest"))
    _plot_end_to_end(axes[0][1], sections.get("end_to_end"))
    _plot_drain(axes[1][0], sections.get("drain"), sections.get("peers"))
    _plot_pgbench(axes[1][1], sections.get("pgbench"))
    _plot_latency(axes[0][2], sections.get("latency"))
    _plot_pipeline(axes[1][2], sections.get("pipeline"))
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _unavailable(ax: Any, title: str, section: dict[str, Any] | None) -> bool:
    ax.set_title(title)
    if section and section["status"] == "ok":
        return False
    reason = "not run" if not section else f"{section['status']}: {section.get('reason', '')}"
    text = textwrap.fill(reason, 48)
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])
    return True


def _plot_ingest(ax: Any, s: dict[str, Any] | None) -> None:
    if _unavailable(ax, "1. Ingest, 64 connections", s):
        return
    assert s is not None
    labels = {
        "bare": "bare handler\n(request.json)",
        "durable": "minimal durable\n(msgspec, INSERT)",
        "ceiling": "HTTP ceiling\n(our validation)",
        "service_defaults": "service\n(defaults)",
        "service": "service\n(WARNING)",
        "one_commit_each": "service\n(commit each)",
        "service_signed": "service\n(signed)",
    }
    names = [n for n in labels if n in s["summary"]]
    rps = [s["summary"][n]["rps"] for n in names]
    palette = {
        "bare": "#bbb",
        "durable": "#888",
        "ceiling": "#999",
        "service_defaults": "#185",
        "service_signed": "#3a6",
    }
    colors = [palette.get(n, "#2a7" if n == "service" else "#c63") for n in names]
    bars = ax.bar([labels[n] for n in names], rps, color=colors)
    for bar, n in zip(bars, names, strict=True):
        ax.annotate(
            f"p99 {s['summary'][n]['p99_ms']:.1f} ms",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=9,
        )
    ax.set_ylabel("requests/s")


def _plot_end_to_end(ax: Any, s: dict[str, Any] | None) -> None:
    if _unavailable(ax, "6. Webhook to committed message: NOTIFY and polling", s):
        return
    assert s is not None
    labels, p50, p99 = [], [], []
    for rate, per in s["summary"].items():
        for mode, v in per.items():
            labels.append(f"{rate}/s\n{mode.replace('poll_', 'poll ')}")
            p50.append(v["p50_ms"])
            p99.append(v["p99_ms"])
    x = range(len(labels))
    ax.bar([i - 0.2 for i in x], p50, width=0.4, label="p50", color="#2a7")
    ax.bar([i + 0.2 for i in x], p99, width=0.4, label="p99", color="#c63")
    ax.set_xticks(list(x), labels, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("ms (log)")
    ax.legend()


def _plot_latency(ax: Any, s: dict[str, Any] | None) -> None:
    if _unavailable(ax, "3. Latency under load (open loop), p99", s):
        return
    assert s is not None
    bars = (
        ("bare_202_p99_ms", "bare 202", "#bbb"),
        ("service_202_p99_ms", "service 202", "#2a7"),
        ("commit_p99_ms", "service commit", "#c63"),
    )
    rates = [rate for rate in s["summary"] if rate != "machine"]
    for i, (key, label, color) in enumerate(bars):
        x = [j + (i - 1) * 0.27 for j in range(len(rates))]
        ax.bar(x, [s["summary"][r][key] for r in rates], width=0.27, label=label, color=color)
    ax.set_xticks(range(len(rates)), [f"{r}/s" for r in rates])
    ax.set_yscale("log")
    ax.set_ylabel("p99 ms (log)")
    ax.legend()


def _plot_pipeline(ax: Any, s: dict[str, Any] | None) -> None:
    if _unavailable(ax, "2. Whole pipeline, closed loop at 64 connections", s):
        return
    assert s is not None
    summary = s["summary"]
    bars = [
        ("bare handler\nreq/s", summary["bare"]["rps"], "#bbb"),
        ("serve\nprocessed/s", summary["serve"]["processed_per_s"], "#2a7"),
        ("serve + worker\nprocessed/s", summary["serve_split"]["processed_per_s"], "#5a9"),
    ]
    ax.bar([b[0] for b in bars], [b[1] or 0 for b in bars], color=[b[2] for b in bars])
    ax.axhline(0.6 * (summary["bare"]["rps"] or 0), color="#c63", linestyle="--", label="target")
    ax.set_ylabel("per second")
    ax.legend()


def _plot_drain(ax: Any, drain: dict[str, Any] | None, peers: dict[str, Any] | None) -> None:
    ax.set_title("5, 7. Drain rate")
    labels, rates, colors = [], [], []
    if drain and drain["status"] == "ok":
        for workers, v in drain["summary"].items():
            labels.append(f"service\n{workers} worker(s)")
            rates.append(v["events_per_s"])
            colors.append("#2a7")
    if peers and peers["status"] == "ok":
        bars = (
            # The service's drain of scenario 4, which the ratios there pair with.
            ("messaging-service", "service\n(in 4.)", "#185"),
            ("pgqueuer", "pgqueuer\n(no-op)", "#bbb"),
            ("procrastinate", "procrastinate\n(no-op)", "#bbb"),
            ("pgqueuer_work", "pgqueuer\n(same work)", "#777"),
            ("procrastinate_work", "procrastinate\n(same work)", "#777"),
            ("sql_limit", "SQL-only\nlimit", "#c63"),
        )
        for name, label, color in bars:
            if name in peers["summary"]:
                labels.append(label)
                rates.append(peers["summary"][name]["drain_jobs_per_s"])
                colors.append(color)
    if not labels:
        _unavailable(ax, "5, 7. Drain rate", drain or peers)
        return
    ax.bar(labels, rates, color=colors)
    ax.tick_params(axis="x", labelsize=7)
    ax.set_ylabel("events or jobs / s")


def _plot_pgbench(ax: Any, s: dict[str, Any] | None) -> None:
    if _unavailable(ax, "8. pgbench: one-row INSERT transactions", s):
        return
    assert s is not None
    clients = [int(c) for c in s["summary"]]
    lines = (("notify_tps", "NOTIFY trigger", "#c63"), ("plain_tps", "no trigger", "#2a7"))
    for key, label, color in lines:
        tps = [s["summary"][str(c)][key] for c in clients]
        ax.plot(clients, tps, "o-", label=label, color=color)
    ax.set_xscale("log", base=2)
    ax.set_xticks(clients, [str(c) for c in clients])
    ax.set_xlabel("clients")
    ax.set_ylabel("transactions/s")
    ax.legend()


def main() -> None:
    results = json.loads((RESULTS / "latest.json").read_text(encoding="utf-8"))
    (RESULTS / "latest.md").write_text(markdown(results), encoding="utf-8")
    plot(results, RESULTS / "latest.png")


if __name__ == "__main__":
    main()
