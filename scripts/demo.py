#!/usr/bin/env python3
"""The main job, end to end on this machine: the weekly follow-up example DAG posts to the SPP sandbox.

    python3 scripts/demo.py
    AIRFLOW_VERSION=3.1.8 VENV=.venv-3.1 python3 scripts/demo.py    # another Airflow line in its own venv

Sets up the venv from the project's files (scripts/setup.sh), starts the sandbox on a free 127.0.0.1 port,
migrates a throw-away AIRFLOW_HOME, runs ``airflow dags test spp_order_followup``, then prints the message
ID the ``post_followup`` task returned (its XCom, read from the metadata DB) and what the sandbox stored.
Exit 0 only if the DAG run succeeded with a message ID.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VENV = (ROOT / os.environ.get("VENV", ".venv")).resolve()
DAG_ID = "spp_order_followup"
POST_TASK_ID = "post_followup"
SANDBOX_TOKEN = "demo-sandbox-token"  # the sandbox's own fake token, not an SPP credential


def _in_project_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV


if __name__ == "__main__" and not _in_project_venv():
    # Set up from the project's own files, then run again inside its venv.
    subprocess.run(["bash", str(ROOT / "scripts" / "setup.sh")], check=True, env={**os.environ, "VENV": str(VENV)})
    argv = [str(VENV / "bin" / "python"), str(Path(__file__).resolve()), *sys.argv[1:]]
    os.execv(argv[0], argv)  # noqa: S606 - our own venv's python, fixed arguments


def say(text: str) -> None:
    """A step heading."""
    print(f"==> {text}", flush=True)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_sandbox(url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    """Start ``spp-sandbox`` in the background and wait until it answers its health check."""
    env = {**os.environ, "SPP_SANDBOX_TOKEN": SANDBOX_TOKEN}  # not --token: keeps it out of `ps`
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(VENV / "bin" / "spp-sandbox"), "--port", str(port)], stdout=out, stderr=subprocess.STDOUT, env=env
        )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the sandbox exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_sandbox/health", timeout=1):  # noqa: S310 - our http sandbox
                return proc
        except OSError:
            time.sleep(0.1)
    stop(proc)
    raise RuntimeError(f"the sandbox did not answer on {url} within 20 s:\n{log.read_text()}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process we started, by its PID: SIGTERM, then SIGKILL if it lingers."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def airflow(args: list[str], log: Path) -> bool:
    """Run the ``airflow`` CLI of the venv with its output in ``log``; whether it exited 0."""
    with log.open("wb") as out:
        done = subprocess.run([str(VENV / "bin" / "airflow"), *args], stdout=out, stderr=subprocess.STDOUT, check=False)
    return done.returncode == 0


def run_result(dag_id: str, task_id: str) -> tuple[str | None, Any]:
    """The state of the DAG's latest run and what ``task_id`` returned in it (its ``return_value`` XCom)."""
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        run = session.scalars(select(DagRun).where(DagRun.dag_id == dag_id).order_by(DagRun.id.desc())).first()
        if run is None:
            return None, None
        xcom = session.scalars(
            select(XComModel).where(
                XComModel.dag_id == dag_id,
                XComModel.run_id == run.run_id,
                XComModel.task_id == task_id,
                XComModel.key == "return_value",
            )
        ).first()
        return str(run.state), XComModel.deserialize_value(xcom) if xcom is not None else None


def sandbox_messages(url: str) -> list[dict[str, Any]]:
    """What the sandbox stored (its admin API, oldest first)."""
    with urllib.request.urlopen(f"{url}/_sandbox/messages", timeout=10) as answer:  # noqa: S310 - our sandbox
        messages: list[dict[str, Any]] = json.load(answer)
    return messages


def demo(work: Path) -> int:
    """Sandbox up, Airflow home migrated, the DAG tested, its result shown; 0 on success."""
    port = int(os.environ.get("SPP_SANDBOX_PORT") or free_port())
    url = f"http://127.0.0.1:{port}"
    os.environ.update(
        {
            "AIRFLOW_HOME": str(work / "airflow-home"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "example_dags"),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "AIRFLOW_CONN_SPP_DEFAULT": json.dumps({"conn_type": "spp", "host": url, "password": SANDBOX_TOKEN}),
        }
    )
    say(f"Starting the SPP sandbox on {url}")
    sandbox = start_sandbox(url, port, work / "sandbox.log")
    try:
        say(f"Preparing a throw-away Airflow home in {os.environ['AIRFLOW_HOME']}")
        if not airflow(["db", "migrate"], work / "db.log"):
            print((work / "db.log").read_text())
            return 1
        say(f"airflow dags test {DAG_ID}")
        tested = airflow(["dags", "test", DAG_ID], work / "dag.log")
        state, message_id = run_result(DAG_ID, POST_TASK_ID)
        print(f"DAG run state: {state}")
        print(f"SPP message ID returned by {POST_TASK_ID}: {message_id}")
        if not tested or state != "success" or message_id is None:
            print(f"The DAG run did not succeed; full log:\n{(work / 'dag.log').read_text()}")
            return 1
        say("What the sandbox stored")
        for message in sandbox_messages(url):
            print(json.dumps(message, indent=2, default=str)[:3000])
        return 0
    finally:
        stop(sandbox)


def main() -> int:
    """Run the demo in a temporary folder, removed afterwards."""
    work = Path(tempfile.mkdtemp(prefix="spp-demo-"))
    try:
        return demo(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
