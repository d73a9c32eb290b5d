"""Run every benchmark in this folder, one after the other, and print one table of ours/peer ratios.

    .venv/bin/python benchmarks/run_all.py [--quick] [--keep DIR]

Runs, in this order (never two at once: they would disturb each other's figures):

1. ``import_cost.py``: import cost at DAG-parse time, ours vs HttpOperator and SlackAPIPostOperator;
2. ``per_post.py``: one JSON post, ours vs raw ``requests`` and ``HttpHook.run``, plus the sandbox alone;
3. ``upload_memory.py`` at 20 MiB and at 200 MiB: client memory for one upload, ours vs ``requests`` ``files=``;
4. ``requests_per_poll.py``, when it exists: requests per trigger poll, ours vs per-order polling;
5. ``mapped_tasks.py`` (unless ``--no-deployment``): 200 mapped tasks each of ours, a plain ``@task``,
   HttpOperator and ours with ``deduplicate=False`` in one run of the E2E deployment, which it starts
   (root, PostgreSQL, Redis).

Each script's own full table goes to its log (``--keep DIR`` keeps the logs and JSON files; otherwise
they live in a temporary directory). The summary is a Markdown table. Nothing is asserted on a
number: the exit status is 0 unless a benchmark crashed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

#: import_cost.py row labels.
IMPORT_BASELINE = "baseline: airflow.sdk"
IMPORT_OURS = "ours: CreateOrderMessageOperator"
IMPORT_PEERS = {"HttpOperator": "http: HttpOperator", "SlackAPIPostOperator": "slack: SlackAPIPostOperator"}


@dataclass(frozen=True)
class Step:
    """One benchmark run: its script, arguments, and how its JSON becomes table rows."""

    name: str
    script: str
    args: list[str]
    rows: Callable[[Any], list[list[str]]]


def _num(value: float, digits: int = 1, sign: bool = False) -> str:
    """A figure for the table (no "-0.0")."""
    text = f"{round(value, digits) + 0.0:{'+' if sign else ''}.{digits}f}"
    return text


def _ratio(ours: float, peer: float, digits: int = 2) -> str:
    """ours/peer, or '-' when the peer figure is not positive."""
    if peer <= 0:
        return "-"
    value = ours / peer
    if abs(value) < 10 ** (-digits) or (ours < 0 and abs(value) < 0.05):
        return "≈0"  # ours is zero within the measurement's resolution
    return "-" if ours < 0 else f"{value:.{digits}f}"


def _paired_increment(samples: dict[str, Any], label: str, key: str) -> float:
    """Median over rounds of (label's figure - the airflow.sdk baseline's figure in the same round)."""
    base = samples[IMPORT_BASELINE][key]
    return statistics.median(a - b for a, b in zip(samples[label][key], base, strict=True))


def import_rows(samples: dict[str, Any]) -> list[list[str]]:
    """Wall time, RSS and modules our operator import adds to ``import airflow.sdk``, vs each peer's."""
    rows = []
    ours_wall = statistics.median(samples[IMPORT_OURS]["increment_s"]) * 1000
    ours_cpu = statistics.median(samples[IMPORT_OURS]["increment_cpu_s"]) * 1000
    ours_rss = _paired_increment(samples, IMPORT_OURS, "maxrss_mib")
    ours_mods = _paired_increment(samples, IMPORT_OURS, "n_modules")
    for peer, label in IMPORT_PEERS.items():
        wall = statistics.median(samples[label]["increment_s"]) * 1000
        cpu = statistics.median(samples[label]["increment_cpu_s"]) * 1000
        rss = _paired_increment(samples, label, "maxrss_mib")
        mods = _paired_increment(samples, label, "n_modules")
        rows += [
            [f"import: time added after `import airflow.sdk`, ms (vs {peer})", _num(ours_wall, 0, True),
             _num(wall, 0, True), _ratio(ours_wall, wall)],
            [f"import: CPU time added after `import airflow.sdk`, ms (vs {peer})", _num(ours_cpu, 0, True),
             _num(cpu, 0, True), _ratio(ours_cpu, cpu)],
            [f"import: peak RSS added, MiB (vs {peer})", _num(ours_rss, 1, True), _num(rss, 1, True),
             _ratio(ours_rss, rss)],
            [f"import: modules added (vs {peer})", _num(ours_mods, 0, True), _num(mods, 0, True),
             _ratio(ours_mods, mods)],
        ]  # fmt: skip
    return rows


def per_post_rows(result: dict[str, Any]) -> list[list[str]]:
    """p50/p95 per post vs raw requests and HttpHook, and what the sandbox alone costs."""
    figures = result["figures"]
    ours = figures["ours"]
    rows = []
    for peer, label in (("requests", "raw `requests.Session().post` + `.json()`"), ("http", "`HttpHook.run`")):
        for key in ("p50_ms", "p95_ms"):
            rows.append(
                [
                    f"per post: {key[:3]} ms (vs {label})",
                    _num(ours[key], 3),
                    _num(figures[peer][key], 3),
                    _ratio(ours[key], figures[peer][key], 3),
                ]
            )
    server = ours.get("server_p50_ms")
    floor = figures["http.client"]["p50_ms"]
    health = figures["sandbox health"]["p50_ms"]
    rows.append(
        [
            "per post: the sandbox alone, p50 ms (http.client POST; health GET; server's own handling)",
            "-",
            f"{floor:.3f}; {health:.3f}; {'-' if server is None else f'{server:.3f}'}",
            "-",
        ]
    )
    return rows


def upload_rows(result: dict[str, Any]) -> list[list[str]]:
    """Memory the upload call adds (Δ call) and peak RSS growth, ours vs requests ``files=``."""
    size = result["size_mib"]

    def median_growth(client: str, key: str) -> float:
        runs = result["runs"][client]
        pairs = zip(runs["big"], runs["small"], strict=True)
        growth = [b[key] - s[key] for b, s in pairs if b[key] is not None and s[key] is not None]
        return statistics.median(growth) if growth else float("nan")

    call_ours, call_peer = median_growth("ours", "call_growth_mib"), median_growth("requests", "call_growth_mib")
    peak_ours, peak_peer = median_growth("ours", "maxrss_mib"), median_growth("requests", "maxrss_mib")
    return [
        [f"upload {size} MiB: memory the call adds, MiB (vs requests `files=`)", _num(call_ours, 1),
         _num(call_peer, 1), _ratio(call_ours, call_peer, 3)],
        [f"upload {size} MiB: peak RSS growth, MiB (vs requests `files=`)", _num(peak_ours, 1), _num(peak_peer, 1),
         _ratio(peak_ours, peak_peer, 3)],
    ]  # fmt: skip


def poll_rows(result: list[dict[str, Any]]) -> list[list[str]]:
    """Requests per poll with one new message, ours vs one poll per watched order."""
    return [
        [
            f"requests per poll, {row['orders']} watched orders, 1 new message (vs per-order polling)",
            str(row["ours_one_new"]),
            str(row["peer_one_new"]),
            _ratio(row["ours_one_new"], row["peer_one_new"], 3),
        ]
        for row in result
    ]


def mapped_rows(result: dict[str, Any]) -> list[list[str]]:
    """Mapped task instances in one deployment run: ours vs the plain ``@task``, vs HttpOperator, and without dedup."""
    figures = result["figures"]
    rows = []
    pairs = (
        ("ours", "plain", "vs plain `@task` + requests"),
        ("ours", "http", "vs HttpOperator"),
        ("bare", "plain", "ours with deduplicate=False, vs plain `@task` + requests"),
    )
    for mine, peer, label in pairs:
        for key, title in (("durations", "task run time"), ("before_post", "execute start to the POST")):
            ours, theirs = figures[mine][key], figures[peer][key]
            if not ours or not theirs:
                continue
            a, b = statistics.median(ours) * 1000, statistics.median(theirs) * 1000
            rows.append([f"mapped task: {title}, median ms ({label})", _num(a, 0), _num(b, 0), _ratio(a, b)])
    return rows


def steps(quick: bool, deployment: bool = True) -> list[Step]:
    """The benchmarks to run (``requests_per_poll.py`` only where it exists; the deployment one unless skipped)."""
    upload = ["--clients", "ours,requests", "--repeat", "2" if quick else "3"]
    found = [
        Step("import cost", "import_cost.py", ["--repeat", "3" if quick else "7"], import_rows),
        Step("per post", "per_post.py", ["--rounds", "300" if quick else "600"], per_post_rows),
        Step("upload 20 MiB", "upload_memory.py", ["--size-mib", "20", *upload], upload_rows),
        Step("upload 200 MiB", "upload_memory.py", ["--size-mib", "200", *upload], upload_rows),
    ]
    if (HERE / "requests_per_poll.py").exists():
        found.append(Step("requests per poll", "requests_per_poll.py", [], poll_rows))
    if deployment:
        per = ["--per-contender", "60" if quick else "200"]
        found.append(Step("mapped tasks in a deployment", "mapped_tasks.py", per, mapped_rows))
    return found


def print_table(rows: list[list[str]]) -> None:
    """The summary as a Markdown table."""
    print("| measure | ours | peer | ours/peer |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks in turn and print the summary table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a rough look in ~3 minutes)")
    parser.add_argument("--keep", type=Path, default=None, help="keep each benchmark's log and JSON in this folder")
    parser.add_argument(
        "--no-deployment",
        action="store_true",
        help="skip mapped_tasks.py (it starts the E2E deployment: root, PostgreSQL, Redis, ~7 minutes)",
    )
    args = parser.parse_args(argv)

    rows: list[list[str]] = []
    crashed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="spp-bench-all-") as tmp:
        out_dir = args.keep or Path(tmp)
        out_dir.mkdir(parents=True, exist_ok=True)
        for index, step in enumerate(steps(args.quick, not args.no_deployment), start=1):
            slug = step.name.replace(" ", "_")
            result_path, log_path = out_dir / f"{index}_{slug}.json", out_dir / f"{index}_{slug}.log"
            cmd = [sys.executable, str(HERE / step.script), *step.args, "--json", str(result_path)]
            print(f"[{index}] {step.name}: {' '.join(Path(c).name if c == sys.executable else c for c in cmd[1:])}")
            start = time.monotonic()
            with log_path.open("w") as log:
                proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=HERE.parent, check=False)
            took = time.monotonic() - start
            if proc.returncode != 0 or not result_path.exists():
                tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
                print(f"    CRASHED (exit {proc.returncode}) after {took:.0f} s:\n{tail}")
                crashed.append(step.name)
                continue
            print(f"    done in {took:.0f} s (full table: {log_path if args.keep else log_path.name})", flush=True)
            rows += step.rows(json.loads(result_path.read_text()))

    print(f"\nSummary (python {sys.version.split()[0]}; ours/peer below 1 = ours costs less):\n")
    print_table(rows)
    if crashed:
        print(f"\ncrashed: {', '.join(crashed)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
