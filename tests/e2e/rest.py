"""Airflow's REST API v2 (with a real token from POST /auth/token) and the SPP sandbox's admin API."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from typing import Any

from tests.e2e.deploy import CheckFailed

FINISHED = ("success", "failed")


class HttpError(Exception):
    """A non-2xx answer, with its status and body."""

    def __init__(self, status: int, body: str, url: str) -> None:
        super().__init__(f"{status} from {url}: {body[:500]}")
        self.status = status
        self.body = body


def call(method: str, url: str, body: Any = None, *, token: str | None = None, timeout: float = 30) -> Any:
    """One JSON request; returns the decoded answer (None when empty)."""
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data, headers, method=method)  # noqa: S310 - 127.0.0.1 only
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310
            raw = resp.read()
    except urllib.error.HTTPError as err:
        raise HttpError(err.code, err.read().decode(errors="replace"), url) from None
    return json.loads(raw) if raw else None


def parse_time(value: str | None) -> float | None:
    """An ISO-8601 timestamp from the API as a POSIX time."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else None


class AirflowApi:
    """The deployment's REST API v2, authenticated as a SimpleAuthManager user."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.token: str | None = None

    def login(self, username: str, password: str) -> None:
        """Get a JWT from POST /auth/token (the password is never printed)."""
        answer = call("POST", f"{self.base_url}/auth/token", {"username": username, "password": password})
        self.token = answer["access_token"]

    def request(self, method: str, path: str, body: Any = None, **query: Any) -> Any:
        """``method`` on ``/api/v2/<path>`` (or ``/ui/...`` when the path starts with ``/``)."""
        url = f"{self.base_url}{path}" if path.startswith("/") else f"{self.base_url}/api/v2/{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query, doseq=True)
        return call(method, url, body, token=self.token)

    def get(self, path: str, **query: Any) -> Any:
        """GET under /api/v2."""
        return self.request("GET", path, **query)

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None, *, logical_date: str | None = None) -> str:
        """Start a DAG run; returns its run ID."""
        body: dict[str, Any] = {"logical_date": logical_date, "conf": conf or {}}
        return str(self.request("POST", f"dags/{dag_id}/dagRuns", body)["dag_run_id"])

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """One DAG run."""
        return dict(self.get(f"dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}"))

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of a run (mapped ones included)."""
        found: list[dict[str, Any]] = []
        while True:
            page = self.get(
                f"dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances",
                limit=100,
                offset=len(found),
            )
            found += page["task_instances"]
            if not page["task_instances"] or len(found) >= page["total_entries"]:
                return found

    def tries(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> list[dict[str, Any]]:
        """Every try of one task instance, oldest first."""
        path = f"dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances/{task_id}"
        if map_index >= 0:
            path += f"/{map_index}"
        tries = self.get(f"{path}/tries")["task_instances"]
        return sorted(tries, key=lambda t: t["try_number"])

    def xcom(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> Any:
        """The task's return value from XCom (deserialized by the API)."""
        path = (
            f"dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances/{task_id}"
            "/xcomEntries/return_value"
        )
        entry = self.get(path, map_index=map_index, deserialize="true", stringify="false")
        return entry["value"]

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        """Every run of a DAG, oldest first (up to 100)."""
        return list(self.get(f"dags/{dag_id}/dagRuns", limit=100, order_by="run_after")["dag_runs"])

    def unpause(self, dag_id: str) -> None:
        """PATCH the DAG unpaused."""
        self.request("PATCH", f"dags/{dag_id}", {"is_paused": False})

    def reparse(self, dag_id: str) -> None:
        """Ask the dag-processor to parse the DAG's file again now (PUT /parseDagFile/{file_token})."""
        token = self.get(f"dags/{dag_id}/details")["file_token"]
        self.request("PUT", f"parseDagFile/{token}")

    def asset_events(self, asset_name: str) -> list[dict[str, Any]]:
        """Every event of the asset named ``asset_name``, oldest first, with the runs each created."""
        every: list[dict[str, Any]] = []
        while True:
            page = self._asset_event_page(asset_name, len(every))
            every += page["asset_events"]
            if not page["asset_events"] or len(every) >= page["total_entries"]:
                return [e for e in every if e.get("name") == asset_name]

    def _asset_event_page(self, asset_name: str, offset: int) -> dict[str, Any]:
        """One page of asset events; retried while Airflow 3.3.2 answers 500 for an event whose run is queued.

        (Its AssetEventResponse requires ``created_dagruns[].start_date``, None until the run starts.)
        """
        for attempt in range(40):
            try:
                return dict(
                    self.get("assets/events", name_pattern=asset_name, limit=100, offset=offset, order_by="timestamp")
                )
            except HttpError as err:
                if err.status != 500 or attempt == 39:
                    raise
                time.sleep(0.5)
        raise AssertionError("unreachable")

    def hitl(self, dag_id: str, run_id: str, task_id: str, body: Any = None) -> Any:
        """GET (or PATCH with ``body``) a task's human-in-the-loop detail."""
        path = f"dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances/{task_id}/-1/hitlDetails"
        return self.request("PATCH", path, body) if body is not None else self.get(path)

    def task_state(self, dag_id: str, run_id: str, task_id: str) -> str | None:
        """The state of one (unmapped) task instance."""
        path = f"dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances/{task_id}"
        return self.get(path).get("state")

    def wait_for_run(
        self, dag_id: str, run_id: str, *, timeout: float, on_poll: Any = None, step: float = 1.0
    ) -> dict[str, Any]:
        """Poll every ``step`` seconds until the run finished; fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if on_poll is not None:
                on_poll()
            run = self.run(dag_id, run_id)
            if run["state"] in FINISHED:
                return run
            time.sleep(step)
        raise CheckFailed(f"{dag_id} run {run_id} did not finish within {timeout:.0f} s")


class Sandbox:
    """The SPP sandbox's admin API (no auth, 127.0.0.1)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def messages(self) -> list[dict[str, Any]]:
        """Every stored message (admin view, files with sha256)."""
        return list(call("GET", f"{self.base_url}/_sandbox/messages"))

    def requests(self) -> list[dict[str, Any]]:
        """The request log, oldest first."""
        return list(call("GET", f"{self.base_url}/_sandbox/requests"))

    def add_fault(self, **fault: Any) -> None:
        """Queue one fault (see airflow_provider_spp.sandbox.faults)."""
        call("POST", f"{self.base_url}/_sandbox/faults", {"faults": [fault]})

    def clear_faults(self) -> None:
        """Remove every queued fault."""
        call("DELETE", f"{self.base_url}/_sandbox/faults")

    def client_message(self, order: str, text: str) -> dict[str, Any]:
        """A reply from the order's client (the portal's side); returns the stored message."""
        return dict(call("POST", f"{self.base_url}/_sandbox/orders/{order}/client_messages", {"message": text}))

    def statuses(self) -> dict[str, Any]:
        """The workspace's status style and code map (GET /_sandbox/statuses)."""
        return dict(call("GET", f"{self.base_url}/_sandbox/statuses"))

    def order(self, order: str, token: str) -> dict[str, Any]:
        """One order as the SPP API shows it (GET /api/orders/{order}, with the token)."""
        return dict(call("GET", f"{self.base_url}/api/orders/{order}", token=token))

    def add_orders(self, count: int, status: str | int) -> list[int]:
        """Generate ``count`` orders in ``status``; returns the first and last ID."""
        return list(call("POST", f"{self.base_url}/_sandbox/orders", {"count": count, "status": status})["ids"])

    def file(self, message_id: int, filename: str) -> bytes:
        """The bytes of a stored attachment."""
        url = f"{self.base_url}/_sandbox/files/{message_id}/{urllib.parse.quote(filename, safe='')}"
        with urllib.request.urlopen(url, timeout=30) as resp:  # noqa: S310 - 127.0.0.1 only
            return bytes(resp.read())
