"""Start and stop the E2E deployment: PostgreSQL, Redis, the SPP sandbox and Airflow's components.

Every server runs in its own process group on 127.0.0.1 and a free port; :class:`Processes` stops
each group it started (TERM, then KILL) and nothing else.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"
SITE_DIR = Path(__file__).resolve().parent / "site"
CHECK_DAGS_DIR = Path(__file__).resolve().parent / "dags"
CHROMIUM = Path("/usr/bin/chromium")
PG_USER = "postgres"  # PostgreSQL refuses to run as root; CI runs as root
STARTED = time.monotonic()
T = TypeVar("T")


def say(message: str) -> None:
    """Print a progress line with the seconds since start."""
    print(f"==> [{time.monotonic() - STARTED:5.0f}s] {message}", flush=True)


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    what: str,
    probe: Callable[[], T | None],
    *,
    timeout: float,
    step: float = 0.5,
    alive: Callable[[], None] | None = None,
) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        if alive is not None:
            alive()
        try:
            result = probe()
        except (OSError, ValueError, KeyError, urllib.error.URLError) as err:
            last_error, result = err, None
        if result:
            return result
        time.sleep(step)
    raise CheckFailed(
        f"timed out after {timeout:.0f} s waiting for {what}" + (f" ({last_error})" if last_error else "")
    )


class CheckFailed(Exception):
    """A check of the E2E run did not hold."""


# -- what the machine needs ---------------------------------------------------------------------------


def _postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's bin directory (Debian layout)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


def ensure_debian_packages() -> list[str]:
    """apt-get install what is missing of postgresql, redis-server and chromium; returns what was installed."""
    missing = [
        package
        for package, present in (
            ("postgresql", _postgres_bin() is not None),
            ("redis-server", shutil.which("redis-server") is not None),
            ("chromium", CHROMIUM.exists()),
        )
        if not present
    ]
    if not missing:
        return []
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    say(f"Installing Debian packages: {' '.join(missing)} (apt-get update first)")
    # Install only: no system PostgreSQL cluster, no redis-server service left running (policy-rc.d's
    # "101: action forbidden"); this run starts its own servers and stops them.
    script = f"""
set -e
if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
  mkdir -p /etc/postgresql-common && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.conf
fi
policy=
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && policy=1
fi
trap '[ -n "$policy" ] && rm -f /usr/sbin/policy-rc.d' EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends {" ".join(missing)} >/dev/null
"""
    subprocess.run([*sudo, "sh", "-c", script], check=True)
    return missing


def ensure_python_packages() -> list[str]:
    """Install the project's ``[e2e]`` extra into .venv when any of it is missing (Airflow kept as is)."""
    probe = "import airflow.providers.celery, airflow.providers.http, asyncpg, playwright.sync_api, psycopg2"
    if subprocess.run([str(VENV_BIN / "python"), "-c", probe], capture_output=True).returncode == 0:
        return []
    airflow_version = subprocess.run(
        [str(VENV_BIN / "python"), "-c", "import airflow; print(airflow.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    say(f"Installing the [e2e] extra into .venv (apache-airflow stays {airflow_version})")
    installer = [str(VENV_BIN / "uv"), "pip", "install", "--python", str(VENV_BIN / "python")]
    if not (VENV_BIN / "uv").exists():
        installer = [str(VENV_BIN / "python"), "-m", "pip", "install", "--disable-pip-version-check"]
    subprocess.run([*installer, "--quiet", "-e", f"{ROOT}[e2e]", f"apache-airflow=={airflow_version}"], check=True)
    return ["airflow-provider-spp[e2e]"]


# -- processes ------------------------------------------------------------------------------------------


@dataclass
class Processes:
    """The process groups this run started, by name; each with its own log file under ``log_dir``."""

    log_dir: Path
    started: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        user: str | None = None,
        cwd: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` in a new session (its own process group), output to ``<log_dir>/<name>.log``."""
        if name in self.started and self.started[name].poll() is None:
            raise RuntimeError(f"{name} is already running")
        with open(self.log_dir / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                user=user,
                start_new_session=True,
            )
        self.started[name] = proc
        return proc

    def check_alive(self, *names: str) -> None:
        """Fail if one of these processes (all by default) has exited."""
        for name in names or tuple(self.started):
            proc = self.started.get(name)
            if proc is not None and proc.poll() is not None:
                tail = (self.log_dir / f"{name}.log").read_text(errors="replace").splitlines()[-15:]
                raise CheckFailed(f"{name} exited with {proc.returncode}; last lines:\n  " + "\n  ".join(tail))

    def kill(self, name: str, sig: int = signal.SIGKILL) -> int:
        """Send ``sig`` to the whole process group of ``name``; returns the group id."""
        proc = self.started[name]
        os.killpg(proc.pid, sig)
        return proc.pid

    def stop(self, name: str, *, grace: float = 15.0) -> None:
        """TERM the group of ``name``, wait up to ``grace`` seconds, then KILL what is left."""
        proc = self.started.get(name)
        if proc is None:
            return
        pgid = proc.pid
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and _group_alive(pgid):
                if proc.poll() is None:
                    time.sleep(0.2)
                else:
                    time.sleep(0.2)
            if not _group_alive(pgid):
                break
        proc.poll()

    def stop_all(self) -> None:
        """Stop every group this run started, newest first."""
        for name in reversed(list(self.started)):
            try:
                self.stop(name)
            except Exception as err:  # keep stopping the others
                print(f"could not stop {name}: {err}", file=sys.stderr)


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group still exists (zombies of our own children are reaped first)."""
    try:
        while os.waitpid(-pgid, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- servers --------------------------------------------------------------------------------------------


def _pg_user() -> str | None:
    """The user PostgreSQL runs as: ``postgres`` (created if missing) when we are root, else ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(PG_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_USER], check=True)
    return PG_USER


def start_postgres(procs: Processes, work: Path) -> str:
    """initdb + postgres on 127.0.0.1 (a free port, no durability: a throw-away database); returns the DSN."""
    bin_dir = _postgres_bin()
    if bin_dir is None:
        raise CheckFailed("PostgreSQL is not installed")
    user = _pg_user()
    data, sockets = work / "postgres" / "data", work / "postgres" / "run"
    sockets.mkdir(parents=True)
    data.mkdir(mode=0o700)
    if user is not None:
        entry = pwd.getpwnam(user)
        for path in (work / "postgres", data, sockets):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    subprocess.run(
        [str(bin_dir / "initdb"), "-D", str(data), "-U", "airflow", "--auth=trust", "-E", "UTF8", "--no-sync"],
        check=True,
        user=user,
        stdout=subprocess.DEVNULL,
        cwd="/",
    )
    port = free_port()
    settings = {
        "listen_addresses": "127.0.0.1",
        "port": str(port),
        "unix_socket_directories": str(sockets),
        "max_connections": "300",
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
    }
    argv = [str(bin_dir / "postgres"), "-D", str(data)]
    for key, value in settings.items():
        argv += ["-c", f"{key}={value}"]
    procs.start("postgres", argv, user=user, cwd=Path("/"))
    wait_for(
        "PostgreSQL",
        lambda: (
            subprocess.run(
                [str(bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port)], check=False
            ).returncode
            == 0
        ),
        timeout=60,
        alive=lambda: procs.check_alive("postgres"),
    )
    subprocess.run(
        [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "airflow", "airflow"], check=True, cwd="/"
    )
    return f"airflow@127.0.0.1:{port}/airflow"


def start_redis(procs: Processes, work: Path) -> str:
    """redis-server on 127.0.0.1, a free port, nothing persisted; returns the broker URL."""
    port = free_port()
    folder = work / "redis"
    folder.mkdir()
    argv = [
        "redis-server",
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(folder),
        "--protected-mode",
        "yes",
    ]
    procs.start("redis", argv)

    def pong() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

    wait_for("Redis", pong, timeout=30, alive=lambda: procs.check_alive("redis"))
    return f"redis://127.0.0.1:{port}/0"


def start_sandbox(procs: Processes, token: str, *, status_style: str = "label") -> str:
    """The SPP sandbox (``spp-sandbox``) on a free port, the token through the environment; returns its URL.

    ``status_style="code"``: orders carry integer statuses (Wayfront today), with the sandbox's code map.
    """
    port = free_port()
    env = {**os.environ, "SPP_SANDBOX_TOKEN": token}
    argv = [str(VENV_BIN / "spp-sandbox"), "--port", str(port), "--status-style", status_style]
    procs.start("spp-sandbox", argv, env=env)
    url = f"http://127.0.0.1:{port}"
    wait_for(
        "the SPP sandbox",
        lambda: get_json(f"{url}/_sandbox/health"),
        timeout=30,
        alive=lambda: procs.check_alive("spp-sandbox"),
    )
    return url


def get_json(url: str, *, timeout: float = 10) -> Any:
    """GET a JSON document (no auth)."""
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - 127.0.0.1 only
        return json.loads(resp.read() or b"null")


# -- Airflow --------------------------------------------------------------------------------------------

WORKERS = ("worker-a", "worker-b")


@dataclass
class Airflow:
    """Where the deployment's pieces listen, and the environment every Airflow process shares."""

    home: Path
    api_url: str
    env: dict[str, str]
    admin_user: str
    admin_password: str = field(repr=False)

    def worker_env(self, name: str) -> dict[str, str]:
        """A worker's environment: its own name (task instance hostname) and its own temp directory."""
        tmp = self.home.parent / name / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        return {**self.env, "SPP_E2E_HOSTNAME": name, "TMPDIR": str(tmp)}


def airflow_config(
    work: Path,
    pg: str,
    broker: str,
    *,
    queue_routes: Mapping[str, str],
    shared_storage: str,
    parallelism: int,
    worker_concurrency: int,
    extra_env: Mapping[str, str] | None = None,
) -> Airflow:
    """The environment of a small CeleryExecutor deployment on PostgreSQL with this repo's DAGs."""
    from cryptography.fernet import Fernet

    home = work / "airflow-home"
    home.mkdir()
    api_port = free_port()
    api_url = f"http://127.0.0.1:{api_port}"
    password = secrets.token_urlsafe(18)
    passwords_file = home / "passwords.json"
    passwords_file.write_text(json.dumps({"admin": password}))
    passwords_file.chmod(0o600)
    bundles = [
        {
            "name": "spp-examples",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(ROOT / "example_dags")},
        },
        {
            "name": "spp-e2e-checks",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(CHECK_DAGS_DIR)},
        },
    ]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW") and k != "PYTHONDONTWRITEBYTECODE"},
        # Like a real deployment, compile each module once: without cached bytecode every task process
        # compiled Airflow, requests and the provider from source (seconds per task on a busy machine).
        # The cache lives in the run folder, so nothing is written into the repository or the venv.
        "PYTHONPYCACHEPREFIX": str(work / "pycache"),
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(SITE_DIR),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{pg}",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE": "3",
        "AIRFLOW__CELERY__BROKER_URL": broker,
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg2://{pg}",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(worker_concurrency),
        "AIRFLOW__CORE__PARALLELISM": str(parallelism),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "e2e_worker.hostname",
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api_url}/execution/",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__BASE_URL": api_url,
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundles),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "3600",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        # Notice a dead worker fast: a task silent for 20 s is failed (and retried).
        "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "3",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_SEC": "3",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "3",
        "AIRFLOW_VAR_SPP_EXAMPLE_STORAGE": shared_storage,
        "SPP_E2E_QUEUE_ROUTES": json.dumps(dict(queue_routes)),
        **(extra_env or {}),
    }
    return Airflow(home=home, api_url=api_url, env=env, admin_user="admin", admin_password=password)


def start_airflow(procs: Processes, airflow: Airflow) -> None:
    """Migrate the database, then start the api-server, scheduler, dag-processor, triggerer and two workers."""
    airflow_bin = str(VENV_BIN / "airflow")
    with open(procs.log_dir / "db-migrate.log", "wb") as log:
        subprocess.run(
            [airflow_bin, "db", "migrate"], env=airflow.env, check=True, stdout=log, stderr=subprocess.STDOUT
        )
    port = airflow.env["AIRFLOW__API__PORT"]
    procs.start(
        "api-server",
        [airflow_bin, "api-server", "--host", "127.0.0.1", "--port", port, "--workers", "1"],
        env=airflow.env,
    )
    for component in ("scheduler", "dag-processor", "triggerer"):
        start_component(procs, airflow, component)
    for name in WORKERS:
        start_worker(procs, airflow, name)


def start_component(procs: Processes, airflow: Airflow, component: str) -> None:
    """``airflow <component>`` (scheduler, dag-processor, triggerer) with the deployment's environment."""
    procs.start(component, [str(VENV_BIN / "airflow"), component], env=airflow.env)


def start_worker(procs: Processes, airflow: Airflow, name: str) -> None:
    """One Celery worker serving the default queue and its own, named ``name``."""
    argv = [
        str(VENV_BIN / "airflow"),
        "celery",
        "worker",
        "--celery-hostname",
        name,
        "--queues",
        f"default,{name}",
        "--skip-serve-logs",
        "--without-mingle",
        "--without-gossip",
    ]
    procs.start(name, argv, env=airflow.worker_env(name))


def restart_worker(procs: Processes, airflow: Airflow, name: str, alive: Callable[[], None]) -> None:
    """Start a killed Celery worker again and wait until it is ready: back to two workers for what follows."""
    log = procs.log_dir / f"{name}.log"
    size = log.stat().st_size if log.exists() else 0  # before the start: its "ready" line comes after
    start_worker(procs, airflow, name)
    wait_for(
        f"{name} to restart",
        lambda: f"celery@{name} ready" in log.read_bytes()[size:].decode(errors="replace"),
        timeout=120,
        alive=alive,
    )
