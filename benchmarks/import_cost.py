"""Import cost at DAG-parse time: our provider vs the HTTP and Slack providers, side by side in one run.

Every import runs in a fresh ``python -c`` subprocess (so nothing is cached in-process), N times
(``--repeat``, default 5), interleaved target by target so machine noise hits all of them alike;
the table shows medians (and min-max) of:

* process wall time (interpreter start + the import), measured by this script around the subprocess;
* the import statement alone, timed inside the child with ``time.perf_counter``;
* the import alone in a second fresh child that imported ``airflow.sdk`` first (wall and CPU time):
  the increment itself, free of interpreter start-up noise;
* the child's CPU time (user + system, interpreter start included): on a shared, loaded machine it
  moves far less than wall time, because waiting for a CPU does not count;
* the child's peak RSS (``resource.getrusage(RUSAGE_SELF).ru_maxrss``; the child is started through a
  forking ``sh`` so that figure does not include this script's own peak, see :func:`fresh_process`);
* which heavy modules the import left in ``sys.modules``.

"ours/peer" divides our operator import's figure by the row's figure (below 1 = we are cheaper).
One untimed warm-up round runs first (it writes .pyc files and the temporary AIRFLOW_HOME).

    .venv/bin/python benchmarks/import_cost.py [--repeat 5] [--json results.json]

No figure is asserted: the machine is shared and noisy, compare rows of the same run only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench_support import fresh_process

#: Modules whose presence after an import is reported (the expensive ones a DAG file could drag in).
HEAVY_MODULES = ("requests", "aiohttp", "tenacity", "slack_sdk", "pydantic", "fastapi", "uvicorn")

#: The row the ratios are computed against.
OURS = "ours: CreateOrderMessageOperator"
BASELINE = "baseline: airflow.sdk"
STARTUP = "python startup (no import)"


@dataclass(frozen=True)
class Target:
    """One import statement to measure."""

    label: str
    statement: str


TARGETS: tuple[Target, ...] = (
    Target(STARTUP, "pass"),
    Target(BASELINE, "import airflow.sdk"),
    Target(OURS, "from airflow_provider_spp.operators.order_messages import CreateOrderMessageOperator"),
    Target("ours: SppHook", "from airflow_provider_spp.hooks.spp import SppHook"),
    Target("http: HttpOperator", "from airflow.providers.http.operators.http import HttpOperator"),
    Target("slack: SlackAPIPostOperator", "from airflow.providers.slack.operators.slack import SlackAPIPostOperator"),
)

#: The child program: time the import, then report peak RSS and the heavy modules it loaded.
CHILD = """\
import time as _t
_start = _t.perf_counter()
{statement}
_import_s = _t.perf_counter() - _start
import json as _json, resource as _resource, sys as _sys
_heavy = {heavy!r}
_report = {{
    "import_s": _import_s,
    "maxrss_kib": _resource.getrusage(_resource.RUSAGE_SELF).ru_maxrss,
    "cpu_s": sum(_resource.getrusage(_resource.RUSAGE_SELF)[:2]),
    "heavy": [m for m in _heavy if m in _sys.modules],
    "n_modules": len(_sys.modules),
}}
with open(_sys.argv[1], "w") as _out:
    _json.dump(_report, _out)
"""

#: A second child per target: ``import airflow.sdk`` first, untimed, then the target's import alone
#: (wall and CPU): the increment itself, without interpreter start-up and its noise.
INCREMENT_CHILD = """\
import time as _t, json as _json, sys as _sys
import airflow.sdk
_start, _cpu = _t.perf_counter(), _t.process_time()
{statement}
_report = {{"increment_s": _t.perf_counter() - _start, "increment_cpu_s": _t.process_time() - _cpu}}
with open(_sys.argv[1], "w") as _out:
    _json.dump(_report, _out)
"""


@dataclass
class Samples:
    """Measurements of one target across repetitions."""

    wall_s: list[float] = field(default_factory=list)
    import_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    increment_s: list[float] = field(default_factory=list)
    increment_cpu_s: list[float] = field(default_factory=list)
    maxrss_mib: list[float] = field(default_factory=list)
    n_modules: list[int] = field(default_factory=list)
    heavy: set[str] = field(default_factory=set)


def child_env(airflow_home: str) -> dict[str, str]:
    """The environment of every child: a throw-away AIRFLOW_HOME, no example DAGs, no inherited config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "PYTHON"))}
    env.update({"AIRFLOW_HOME": airflow_home, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"})
    return env


def _child(python: str, code: str, label: str, env: dict[str, str], workdir: Path) -> tuple[dict[str, Any], float]:
    """Run one child program in a fresh interpreter; its report and the process wall time."""
    result_path = workdir / "result.json"
    result_path.unlink(missing_ok=True)
    start = time.perf_counter()
    proc = subprocess.run(
        fresh_process([python, "-c", code, str(result_path)]),
        env=env,
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=300,
        check=False,
    )
    wall_s = time.perf_counter() - start
    if proc.returncode != 0 or not result_path.exists():
        raise RuntimeError(f"{label}: child exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    report: dict[str, Any] = json.loads(result_path.read_text())
    return report, wall_s


def run_once(python: str, target: Target, env: dict[str, str], workdir: Path) -> dict[str, Any]:
    """Import ``target`` in a fresh interpreter (and, after ``airflow.sdk``, in another); the merged report."""
    report, wall_s = _child(python, CHILD.format(statement=target.statement, heavy=HEAVY_MODULES), target.label, env,
                            workdir)  # fmt: skip
    report["wall_s"] = wall_s
    if target.label == STARTUP:
        report.update(increment_s=0.0, increment_cpu_s=0.0)
    else:
        increment, _ = _child(python, INCREMENT_CHILD.format(statement=target.statement), target.label, env, workdir)
        report.update(increment)
    return report


def spread(values: list[float], scale: float = 1.0, digits: int = 0) -> str:
    """``median [min-max]`` of a list, scaled."""
    med, lo, hi = (x * scale for x in (statistics.median(values), min(values), max(values)))
    return f"{med:.{digits}f} [{lo:.{digits}f}-{hi:.{digits}f}]"


def ratio(ours: float, peer: float) -> str:
    """ours/peer as text, or '-' when undefined."""
    return f"{ours / peer:.2f}" if peer > 0 else "-"


def print_table(results: dict[str, Samples], repeat: int) -> None:
    """The comparison table (medians over ``repeat`` runs; ratios are ours/peer)."""
    base = results[BASELINE]
    ours = results[OURS]
    base_wall, base_rss = statistics.median(base.wall_s), statistics.median(base.maxrss_mib)
    base_cpu = statistics.median(base.cpu_s)
    ours_wall, ours_rss = statistics.median(ours.wall_s), statistics.median(ours.maxrss_mib)
    header = (
        f"{'import':<34} {'process wall ms [min-max]':>26} {'import ms':>9} {'+wall ms':>9} "
        f"{'CPU ms':>6} {'+CPU ms':>7} {'after sdk ms':>12} {'after sdk CPU':>13} "
        f"{'peak RSS MiB':>13} {'+RSS MiB':>9} {'modules':>7} {'ours/peer wall':>14} {'ours/peer RSS':>13}  "
        "heavy modules loaded"
    )
    print(f"\nImport cost, fresh subprocess each, median of {repeat} (+ = over '{BASELINE}'):\n")
    print(header)
    print("-" * len(header))
    for target in TARGETS:
        s = results[target.label]
        wall, rss = statistics.median(s.wall_s), statistics.median(s.maxrss_mib)
        reference = target.label == STARTUP  # no ratio: it imports nothing
        print(
            f"{target.label:<34} {spread(s.wall_s, 1000):>26} {statistics.median(s.import_s) * 1000:>9.0f} "
            f"{(wall - base_wall) * 1000:>+9.0f} {statistics.median(s.cpu_s) * 1000:>6.0f} "
            f"{(statistics.median(s.cpu_s) - base_cpu) * 1000:>+7.0f} {statistics.median(s.increment_s) * 1000:>12.0f} "
            f"{statistics.median(s.increment_cpu_s) * 1000:>13.0f} {rss:>13.1f} {rss - base_rss:>+9.1f} "
            f"{statistics.median(s.n_modules):>7.0f} {'-' if reference else ratio(ours_wall, wall):>14} "
            f"{'-' if reference else ratio(ours_rss, rss):>13}  {', '.join(sorted(s.heavy)) or '-'}"
        )
    print("after sdk = the import alone, timed in a process that imported airflow.sdk first (wall ms, CPU ms).")
    print(f"\nheavy modules checked: {', '.join(HEAVY_MODULES)}; 'modules' = len(sys.modules) after the import.")
    print(f"heavy modules beyond what '{BASELINE}' itself loads ({', '.join(sorted(base.heavy)) or 'none'}):")
    for target in TARGETS:
        if target.label not in (STARTUP, BASELINE):
            extra = sorted(results[target.label].heavy - base.heavy)
            print(f"  {target.label:<34} {', '.join(extra) or 'none'}")


def main(argv: list[str] | None = None) -> int:
    """Run every target ``--repeat`` times, interleaved, and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per import (default: 5)")
    parser.add_argument("--python", default=sys.executable, help="interpreter to test (default: this one)")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw samples to this file")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    results = {t.label: Samples() for t in TARGETS}
    with tempfile.TemporaryDirectory(prefix="spp-bench-import-") as tmp:
        workdir = Path(tmp)
        airflow_home = workdir / "airflow_home"
        airflow_home.mkdir()
        env = child_env(str(airflow_home))
        print(f"python {platform.python_version()} ({args.python}), {os.cpu_count()} CPUs, repeat={args.repeat}")
        print("warm-up round (untimed)...", flush=True)
        for target in TARGETS:
            run_once(args.python, target, env, workdir)
        for rep in range(args.repeat):
            # Rotate the order each round so no target always runs first (or right after a heavy one).
            shift = rep % len(TARGETS)
            for target in TARGETS[shift:] + TARGETS[:shift]:
                report = run_once(args.python, target, env, workdir)
                samples = results[target.label]
                samples.wall_s.append(report["wall_s"])
                samples.import_s.append(report["import_s"])
                samples.cpu_s.append(report["cpu_s"])
                samples.increment_s.append(report["increment_s"])
                samples.increment_cpu_s.append(report["increment_cpu_s"])
                samples.maxrss_mib.append(report["maxrss_kib"] / 1024)
                samples.n_modules.append(report["n_modules"])
                samples.heavy.update(report["heavy"])
            print(f"round {rep + 1}/{args.repeat} done", flush=True)

    print_table(results, args.repeat)
    if args.json:
        raw = {label: {**vars(s), "heavy": sorted(s.heavy)} for label, s in results.items()}
        args.json.write_text(json.dumps(raw, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
