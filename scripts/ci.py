"""CI for a clean machine: each step installs what it needs from this repository, then runs real tests.

Steps run in order, each printing its output live; at the end a table gives each step's result, test
count and time. Only blocking steps decide the exit code: a non-blocking step (the Airflow pre-release)
is reported, never fatal. To add a step (the E2E deployment check, say), append a ``Step`` to
``STEPS`` below: a name, the command, and whether it blocks.

    python3 scripts/ci.py            # everything, as .ci/run does
    python3 scripts/ci.py --list     # the steps
    python3 scripts/ci.py 3.1.8      # only the steps whose name contains "3.1.8"
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Step:
    """One CI step: a command run from the repository root."""

    name: str
    command: list[str]
    blocking: bool = True
    env: dict[str, str] = field(default_factory=dict)
    #: The command runs pytest: it must run at least one test (counted from a JUnit report).
    runs_pytest: bool = True
    #: The environment variable that tells a non-pytest command where to write its checks as JSON
    #: (``{"checks": [{"name", "ok", "detail"}], "failures": [...]}``); empty: it writes none.
    checks_env: str = ""


@dataclass
class Outcome:
    """What a step did."""

    step: Step
    returncode: int
    seconds: float
    tests: int | None = None
    failed: int | None = None
    skipped: int | None = None
    #: What failed, by name (and detail), for the summary's closing lines.
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Exit 0 and, for a pytest step, at least one test run and none failed."""
        if self.returncode != 0:
            return False
        return not self.step.runs_pytest or (bool(self.tests) and self.failed == 0)

    @property
    def passed(self) -> int:
        """Tests that passed (0 when none were counted)."""
        return (self.tests or 0) - (self.failed or 0) - (self.skipped or 0)


def airflow_line(version: str, venv: str, *pytest_args: str, blocking: bool = True, note: str = "") -> Step:
    """README's test command (ruff, mypy, pytest) on one Airflow line, in that line's own venv."""
    return Step(
        f"tests on Airflow {version}{note}",
        ["bash", "scripts/test.sh", *pytest_args],
        blocking=blocking,
        env={"AIRFLOW_VERSION": version, "VENV": venv},
    )


#: The release check runs from .venv, with the build tools of the [release] extra pinned like the rest.
RELEASE = (
    "bash scripts/setup.sh && .venv/bin/uv pip install --quiet --python .venv/bin/python -e '.[dev,release]' "
    "apache-airflow==3.3.2 -c constraints/airflow-3.3.2.txt && .venv/bin/python scripts/release_check.py"
)

STEPS: list[Step] = [
    Step(
        "constraints files match pyproject.toml",
        ["bash", "-c", "bash scripts/setup.sh && .venv/bin/python scripts/constraints.py --check --no-install"],
        runs_pytest=False,
    ),
    # README's test command as README gives it: the default line (3.3.2) in .venv.
    Step("tests on Airflow 3.3.2 (bash scripts/test.sh)", ["bash", "scripts/test.sh"]),
    # The docs site (docs/, mkdocs.yml): `mkdocs build --strict`, then a few pages opened in Debian's Chromium.
    Step("docs: the site builds strictly and renders in Chromium", [".venv/bin/python", "scripts/docs_site.py"]),
    # The release is what CI tested: sdist + wheel, twine check, the wheel (not the checkout) installed into a
    # clean venv, its system DAG tests and the demo run against it.
    Step("release: the built wheel, installed, passes the DAG tests and the demo", ["bash", "-c", RELEASE]),
    # Not the 200-post fault matrix: dag.test() on 3.1 runs a task try ~10x slower (about 10 minutes).
    airflow_line("3.1.8", ".venv-3.1", "-m", "not slow", note=" (oldest supported)"),
    airflow_line("3.2.2", ".venv-3.2", "-m", "not slow"),
    airflow_line("3.4.0b2", ".venv-3.4", blocking=False, note=" (pre-release, not blocking)"),
    # A real deployment (CeleryExecutor on PostgreSQL + Redis, two workers, REST API, UI in Chromium):
    # docs/production.md "The E2E check". It prints its own summary of checks; it runs no pytest.
    Step(
        "E2E: a real deployment (scripts/e2e.py)",
        [".venv/bin/python", "scripts/e2e.py"],
        runs_pytest=False,
        checks_env="SPP_E2E_RESULTS",
    ),
]


def count_tests(report: Path) -> tuple[int, int, int] | None:
    """(tests, failed or errored, skipped) from a pytest JUnit XML report, or None if there is none."""
    if not report.is_file() or report.stat().st_size == 0:
        return None
    root = ET.parse(report).getroot()  # noqa: S314 - our own pytest's report
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    tests = sum(int(s.get("tests", 0)) for s in suites)
    failed = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
    skipped = sum(int(s.get("skipped", 0)) for s in suites)
    return tests, failed, skipped


def read_checks(report: Path) -> tuple[int, list[str]] | None:
    """(checks, what failed) from a step's JSON checks report, or None if it wrote none.

    A failure outside the checks (what stopped the run, a step left out) counts as one more failed check.
    """
    if not report.is_file() or report.stat().st_size == 0:
        return None
    found = json.loads(report.read_text())
    checks = found.get("checks") or []
    stops = [f"stopped by: {reason}" for reason in found.get("failures") or []]
    failed = [c["name"] + (f": {c['detail']}" if c.get("detail") else "") for c in checks if not c.get("ok")]
    return len(checks) + len(stops), failed + stops


def run(step: Step, report: Path) -> Outcome:
    """Run one step with its output streamed; count its tests (pytest's JUnit report) or checks (its JSON)."""
    env = {**os.environ, **step.env}
    if step.runs_pytest:
        env["PYTEST_ADDOPTS"] = f"{env.get('PYTEST_ADDOPTS', '')} --junitxml={report}".strip()
    if step.checks_env:
        env[step.checks_env] = str(report)
    print(f"\n==> {step.name}: {' '.join(step.command)}", flush=True)
    started = time.monotonic()
    returncode = subprocess.run(step.command, cwd=REPO, env=env, check=False).returncode
    outcome = Outcome(step, returncode, time.monotonic() - started)
    counts = count_tests(report) if step.runs_pytest else None
    if counts is not None:
        outcome.tests, outcome.failed, outcome.skipped = counts
    checks = read_checks(report) if step.checks_env else None
    if checks is not None:
        outcome.tests, outcome.failures = checks[0], checks[1]
        outcome.failed, outcome.skipped = len(checks[1]), 0
    verdict = "ok" if outcome.ok else ("FAILED" if step.blocking else "FAILED (not blocking)")
    print(f"==> {step.name}: {verdict} in {outcome.seconds:.0f} s", flush=True)
    return outcome


def summary(outcomes: list[Outcome]) -> str:
    """A table of every step, then the blocking steps' totals as a closing 'N passed, N failed' line."""
    rows = []
    for o in outcomes:
        verdict = "ok" if o.ok else ("FAILED" if o.step.blocking else "FAILED, not blocking")
        if o.tests is not None:
            noun = "checks: " if o.step.checks_env else ""
            tests = f"{noun}{o.passed} passed, {o.failed} failed, {o.skipped} skipped"
        elif o.step.runs_pytest or o.step.checks_env:
            tests = f"no test report (exit {o.returncode})"
        else:
            tests = "-"
        rows.append(f"  {o.step.name:<58} {verdict:<22} {o.seconds:7.0f} s   {tests}")
    blocking = [o for o in outcomes if o.step.blocking]
    passed = sum(o.passed for o in blocking)
    # A blocking step that failed without a failed test (lint, types, no tests run) counts as one failure.
    failed = sum(o.failed or (0 if o.ok else 1) for o in blocking)
    total = sum(o.seconds for o in outcomes)
    what_failed = [f"  {o.step.name}: FAIL {text[:400]}" for o in outcomes for text in o.failures]
    return "\n".join(
        [
            "",
            "==> CI summary (blocking steps decide the exit code)",
            *rows,
            f"  {'total':<58} {'':<22} {total:7.0f} s",
            *(["", "What failed:", *what_failed] if what_failed else []),
            "",
            f"ci: {passed} passed, {failed} failed",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """Run the steps (all, or those whose name contains a filter); exit 1 if a blocking one failed."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("filters", nargs="*", help="run only steps whose name contains one of these")
    parser.add_argument("--list", action="store_true", help="list the steps and exit")
    args = parser.parse_args(argv)
    steps = [s for s in STEPS if not args.filters or any(f in s.name for f in args.filters)]
    if args.list or not steps:
        for step in STEPS:
            print(f"{step.name}{'' if step.blocking else '  [not blocking]'}")
        return 0 if args.list else 2
    with tempfile.TemporaryDirectory(prefix="spp-ci-") as tmp:
        outcomes = [run(step, Path(tmp) / f"junit-{i}.xml") for i, step in enumerate(steps)]
    print(summary(outcomes), flush=True)
    return 0 if all(o.ok for o in outcomes if o.step.blocking) else 1


if __name__ == "__main__":
    sys.exit(main())
