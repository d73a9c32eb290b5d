#!/usr/bin/env python3
"""E2E: the provider in a real Airflow deployment on this machine, checked through the REST API and the UI.

    python3 scripts/e2e.py            # sets up .venv (scripts/setup.sh) and the [e2e] extra, then runs
    SPP_E2E_BULK_ORDERS=200 python3 scripts/e2e.py   # a smaller bulk run (default 1000)

PostgreSQL, Redis and Chromium come from Debian's packages (apt-get install when missing). Airflow runs
with the CeleryExecutor (Redis broker, PostgreSQL result backend) and two Celery workers, plus the
scheduler, dag-processor, triggerer and api-server, on this repo's example_dags/ and the SPP sandbox;
everything on 127.0.0.1, free ports. Logs, screenshots and AIRFLOW_HOME stay in the run folder it
prints. Every process it started is stopped by process group, also on failure or Ctrl-C. Exit 0 only
if every check held.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"


def _in_project_venv() -> bool:
    return Path(sys.prefix).resolve() == (ROOT / ".venv").resolve()


if __name__ == "__main__" and not _in_project_venv():
    # Set up from the project's own files, then run again inside its venv.
    subprocess.run(["bash", str(ROOT / "scripts" / "setup.sh")], check=True)
    argv = [str(VENV_PYTHON), str(Path(__file__).resolve()), *sys.argv[1:]]
    os.execv(argv[0], argv)  # noqa: S606 - our own venv's python, fixed arguments

sys.path.insert(0, str(Path(__file__).resolve().parent))

from spp_e2e import checks  # noqa: E402
from spp_e2e.deploy import (  # noqa: E402
    CheckFailed,
    Processes,
    airflow_config,
    ensure_debian_packages,
    ensure_python_packages,
    say,
    start_airflow,
    start_postgres,
    start_redis,
    start_sandbox,
)
from spp_e2e.report import Report  # noqa: E402

SANDBOX_TOKEN = "e2e-sandbox-fake-token"


def _raise_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main() -> int:
    """Deploy, run every check, print the summary; always stop what was started."""
    started = time.monotonic()
    work = Path(os.environ.get("SPP_E2E_DIR") or tempfile.mkdtemp(prefix="spp-e2e-"))
    work.mkdir(parents=True, exist_ok=True)
    work.chmod(0o755)  # the postgres user must reach its data folder inside
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    say(f"Run folder (logs, screenshots, AIRFLOW_HOME): {work}")
    report = Report(work=work)
    procs = Processes(log_dir=logs)
    signal.signal(signal.SIGTERM, _raise_on_signal)
    signal.signal(signal.SIGHUP, _raise_on_signal)
    try:
        report.installed += ensure_debian_packages()
        report.installed += ensure_python_packages()
        say("Starting PostgreSQL, Redis and the SPP sandbox")
        pg = start_postgres(procs, work)
        broker = start_redis(procs, work)
        sandbox_url = start_sandbox(procs, SANDBOX_TOKEN)
        airflow = airflow_config(
            work,
            pg,
            broker,
            queue_routes=checks.FOLLOWUP_ROUTES,
            shared_storage=(work / "shared-storage").as_uri(),
            parallelism=checks.PARALLELISM,
            worker_concurrency=checks.WORKER_CONCURRENCY,
        )
        say(f"Starting Airflow (CeleryExecutor, 2 workers) on {airflow.api_url}")
        start_airflow(procs, airflow)
        ctx = checks.Context(
            procs=procs, airflow=airflow, sandbox_url=sandbox_url, token=SANDBOX_TOKEN, work=work, report=report
        )
        checks.run_all(ctx)
    except (CheckFailed, subprocess.CalledProcessError) as err:
        report.fail(str(err))
    except KeyboardInterrupt:
        report.fail("interrupted")
    except SystemExit as err:
        report.fail(f"stopped by a signal (exit {err.code})")
    except Exception as err:
        report.fail(f"{type(err).__name__}: {err}")
        import traceback

        traceback.print_exc()
    finally:
        say("Stopping every process this run started")
        procs.stop_all()
        shutil.rmtree(work / "postgres", ignore_errors=True)  # the throw-away database; logs stay
    report.seconds = time.monotonic() - started
    report.print()
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
