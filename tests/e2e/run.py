"""The E2E run: deploy Airflow (CeleryExecutor on PostgreSQL + Redis) and the SPP sandbox, run every check.

Started by ``python3 scripts/e2e.py`` (which sets up .venv first) or, inside the venv, ``python -m tests.e2e``.
Not collected by pytest (tests/conftest.py ignores this folder): it needs root, PostgreSQL and Redis.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.e2e import checks, reacting
from tests.e2e.deploy import (
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
from tests.e2e.report import Report

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
        sandbox_url = start_sandbox(procs, SANDBOX_TOKEN, status_style=checks.STATUS_STYLE)
        airflow = airflow_config(
            work,
            pg,
            broker,
            queue_routes={**checks.FOLLOWUP_ROUTES, **reacting.QUEUE_ROUTES},
            shared_storage=(work / "shared-storage").as_uri(),
            parallelism=checks.PARALLELISM,
            worker_concurrency=checks.WORKER_CONCURRENCY,
            extra_env=reacting.DEPLOYMENT_ENV,
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
        procs.stop_all()  # first: a closed stdout (a pipe into head) must not leave servers running
        say("Stopped every process this run started")
        shutil.rmtree(work / "postgres", ignore_errors=True)  # the throw-away database; logs stay
    report.seconds = time.monotonic() - started
    report.print()
    if os.environ.get("SPP_E2E_RESULTS"):
        report.save(Path(os.environ["SPP_E2E_RESULTS"]))
    return 0 if report.ok else 1
