#!/usr/bin/env python3
"""E2E: the provider in a real Airflow deployment on this machine, checked through the REST API and the UI.

    python3 scripts/e2e.py            # sets up .venv (scripts/setup.sh) and the [e2e] extra, then runs
    SPP_E2E_BULK_ORDERS=200 python3 scripts/e2e.py   # a smaller bulk run (default 1000)

PostgreSQL, Redis and Chromium come from Debian's packages (apt-get install when missing). Airflow runs
with the CeleryExecutor (Redis broker, PostgreSQL result backend) and two Celery workers, plus the
scheduler, dag-processor, triggerer and api-server, on this repo's example_dags/ and the SPP sandbox;
everything on 127.0.0.1, free ports. Logs, screenshots and AIRFLOW_HOME stay in the run folder it
prints. Every process it started is stopped by process group, also on failure or Ctrl-C. Exit 0 only
if every check held. The suite itself lives in tests/e2e/ (``python -m tests.e2e`` inside the venv).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"


def _in_project_venv() -> bool:
    return Path(sys.prefix).resolve() == (ROOT / ".venv").resolve()


def _usage() -> str:
    """What this script does and the environment variables that shape a run."""
    return (
        f"{__doc__}\nEnvironment:\n"
        "  SPP_E2E_SKIP=step,...      leave steps out (their names: see tests/e2e/checks.py run_all)\n"
        "  SPP_E2E_DIR=PATH           the run folder (default: a new temporary folder)\n"
        "  SPP_E2E_KILL_BLOCKING=0    report the triggerer-kill check of the activity watcher without failing\n"
        "  SPP_E2E_BENCH_TASKS=N      mapped tasks per contender in the benchmark step (default 200)\n"
        "  SPP_E2E_RESULTS=PATH       also write every check and its outcome there as JSON (CI's summary reads it)\n"
    )


if __name__ == "__main__" and set(sys.argv[1:]) & {"-h", "--help"}:
    print(_usage())
    sys.exit(0)

if __name__ == "__main__" and sys.argv[1:]:
    sys.exit(f"scripts/e2e.py takes no arguments (got {sys.argv[1:]}); see --help")

if __name__ == "__main__" and not _in_project_venv():
    # Set up from the project's own files, then run again inside its venv.
    subprocess.run(["bash", str(ROOT / "scripts" / "setup.sh")], check=True)
    argv = [str(VENV_PYTHON), str(Path(__file__).resolve()), *sys.argv[1:]]
    os.execv(argv[0], argv)  # noqa: S606 - our own venv's python, fixed arguments

sys.path.insert(0, str(ROOT))

if __name__ == "__main__":
    from tests.e2e.run import main

    sys.exit(main())
