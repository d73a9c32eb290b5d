"""What the E2E run found: each check with its outcome, the runs, and the figures for the summary."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Report:
    """Collected while the checks run; printed at the end."""

    work: Path
    installed: list[str] = field(default_factory=list)
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    #: Checks reported but not blocking (they wait for work not merged yet): they never fail the run.
    observed: list[tuple[str, bool, str]] = field(default_factory=list)
    figures: dict[str, list[str]] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)
    worker_kill: dict[str, Any] = field(default_factory=dict)
    handover: dict[str, Any] = field(default_factory=dict)
    screenshots: list[Path] = field(default_factory=list)
    bulk: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether every check held and nothing failed outside a check."""
        return not self.failures and all(ok for _, ok, _ in self.checks) and bool(self.checks)

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        """Record one check and print it at once."""
        ok = bool(ok)
        self.checks.append((name, ok, detail))
        print(f"    [{'PASS' if ok else 'FAIL'}] {name}" + (f": {detail}" if detail else ""), flush=True)
        return ok

    def observe(self, name: str, ok: bool, detail: str = "") -> bool:
        """Record a check that is reported, not blocking: printed with its outcome, never fails the run."""
        ok = bool(ok)
        self.observed.append((name, ok, detail))
        verdict = "pass" if ok else "FAIL"
        print(f"    [REPORTED, NOT BLOCKING: {verdict}] {name}" + (f": {detail}" if detail else ""), flush=True)
        return ok

    def fail(self, reason: str) -> None:
        """Record a failure that stopped the run."""
        self.failures.append(reason)
        print(f"    [FAIL] {reason}", flush=True)

    def print(self) -> None:
        """The summary: checks, runs, worker-kill counts, screenshots, the bulk figure."""
        line = "=" * 100
        verdict = "PASSED" if self.ok else "FAILED"
        print(f"\n{line}\nE2E SUMMARY ({verdict}) in {self.seconds:.0f} s; run folder {self.work}")
        if self.installed:
            print(f"Installed first: {', '.join(self.installed)}")
        passed = sum(1 for _, ok, _ in self.checks if ok)
        print(f"Checks: {passed} of {len(self.checks)} passed")
        for name, ok, detail in self.checks:
            print(f"  {'PASS' if ok else 'FAIL'}  {name}" + (f": {detail}" if detail and not ok else ""))
        for name, ok, detail in self.observed:
            print(f"  REPORTED, NOT BLOCKING ({'pass' if ok else 'FAIL'})  {name}: {detail}")
        if self.runs:
            print("DAG runs:")
            for run in self.runs:
                print(f"  {run['dag_id']:<22} {run['state']:<8} {run['run_id']:<48} {run.get('note', '')}")
        if self.handover:
            print("File handover across workers: " + ", ".join(f"{k}={v}" for k, v in self.handover.items()))
        if self.worker_kill:
            print("Worker kill: " + ", ".join(f"{k}={v}" for k, v in self.worker_kill.items()))
        for title, lines in self.figures.items():
            print(f"{title}:")
            for text in lines:
                print(f"  {text}")
        if self.screenshots:
            print("Screenshots:")
            for path in self.screenshots:
                print(f"  {path}")
        if self.bulk:
            print("Bulk reminders:")
            for text in self.bulk:
                print(f"  {text}")
        for note in self.notes:
            print(f"Note: {note}")
        for reason in self.failures:
            print(f"STOPPED BY: {reason}")
        failed = [(name, detail) for name, ok, detail in self.checks if not ok]
        if failed:  # last, so the tail of a long log still shows what failed
            print(f"Failed checks ({len(failed)}):")
            for name, detail in failed:
                print(f"  FAIL  {name}" + (f": {detail}" if detail else ""))
        print(line)

    def save(self, path: Path) -> None:
        """Write the checks and the failures as JSON, for CI's summary (scripts/ci.py)."""
        checks = [{"name": name, "ok": ok, "detail": detail} for name, ok, detail in self.checks]
        path.write_text(json.dumps({"checks": checks, "failures": self.failures}, indent=1))
