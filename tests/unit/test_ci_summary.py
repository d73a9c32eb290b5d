"""CI's summary names what failed: a step's checks report (the E2E's) is counted and its failed checks listed last."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from scripts.ci import Step, run, summary
from tests.e2e.report import Report

E2E_LIKE = """
import os
from pathlib import Path
from tests.e2e.report import Report

report = Report(work=Path("."))
report.check("the message was posted once", True)
report.check("the triggerer kill repeated nothing", False, "2 duplicates")
report.fail("step ui skipped (SPP_E2E_SKIP)")
report.save(Path(os.environ["SPP_CHECKS"]))
raise SystemExit(1)
"""


def test_a_failed_check_is_counted_and_named_at_the_end_of_the_summary(tmp_path: Path) -> None:
    step = Step("E2E-like", [sys.executable, "-c", E2E_LIKE], runs_pytest=False, checks_env="SPP_CHECKS")

    outcome = run(step, tmp_path / "checks.json")
    text = summary([outcome])

    assert not outcome.ok
    assert (outcome.tests, outcome.failed, outcome.passed) == (3, 2, 1)
    assert "checks: 1 passed, 2 failed, 0 skipped" in text
    assert text.splitlines()[-4:] == [
        "  E2E-like: FAIL the triggerer kill repeated nothing: 2 duplicates",
        "  E2E-like: FAIL stopped by: step ui skipped (SPP_E2E_SKIP)",
        "",
        "ci: 1 passed, 2 failed",
    ]


def test_a_step_that_wrote_no_checks_report_says_so(tmp_path: Path) -> None:
    step = Step("crashed", [sys.executable, "-c", "raise SystemExit(3)"], runs_pytest=False, checks_env="SPP_CHECKS")

    outcome = run(step, tmp_path / "checks.json")

    assert outcome.tests is None
    assert "no test report (exit 3)" in summary([outcome])
    assert summary([outcome]).splitlines()[-1] == "ci: 0 passed, 1 failed"


def test_the_e2e_summary_ends_with_the_failed_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = Report(work=tmp_path)
    report.check("bulk: 0 duplicates", True)
    report.check("deadline: the note was posted", False, "note None")
    report.bulk.append("1000 reminders in 11.5 s")
    capsys.readouterr()

    report.print()

    lines = capsys.readouterr().out.splitlines()
    assert lines[-3:] == ["Failed checks (1):", "  FAIL  deadline: the note was posted: note None", "=" * 100]
