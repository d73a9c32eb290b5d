"""Fault matrix: many posts through real Airflow task tries under injected faults, then count what SPP stored.

Each post is one mapped task instance of CreateOrderMessageOperator, run by ``dag.test()`` with Airflow
retries; the local SPP sandbox fails a share of the POSTs at random (rate limits, 5xx, connections dropped
before or after the message was created, answers slower than the client's timeout, requests still being
processed after the client gave up, broken bodies).
Afterwards the sandbox's store is the ground truth: every intended message should be there exactly once.

    python scripts/fault_matrix.py --posts 200 --rate 0.35 --seed 7
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta

ALL_FAULTS = (
    "rate_limit",
    "server_error",
    "unavailable",
    "bad_gateway",
    "gateway_timeout",
    "server_error_after_commit",
    "unavailable_after_commit",
    "drop_before",
    "drop_after",
    "break_stream_after",
    "slow",
    "slow_commit",
    "malformed_json",
    "missing_id",
)
ORDERS = ("E4A269FC", "B7C3D2A1", "9F8E7D6C", "1004")
#: The shipped defaults (timeout 30 s, lost_answer_wait 30 s) scaled down to 1 s; slow faults take 1.5 s,
#: so SPP commits after the client gave up but within the grace.
EQUAL_TIMEOUT_AND_GRACE = {"timeout": 1.0, "grace": 1.0, "delay": 1.5}


@dataclass
class MatrixResult:
    """What one run intended, what the sandbox stored, and what it cost."""

    deduplicate: bool
    posts: int
    stored: int
    duplicates: int
    lost: int
    faults: dict[str, int] = field(default_factory=dict)
    post_requests: int = 0
    get_requests: int = 0
    task_tries: int = 0
    failed_tasks: int = 0
    seconds: float = 0.0
    timeout: float = 0.0
    grace: float = 0.0

    @property
    def label(self) -> str:
        """Column heading: deduplication, and the client timeout against the operator's grace."""
        dedup = "deduplicate=True (default)" if self.deduplicate else "deduplicate=False"
        return f"{dedup}, timeout {self.timeout:g} s, grace {self.grace:g} s"


def _isolated_airflow_home() -> None:
    """Point Airflow at a throw-away home and fresh DB when run as a script (pytest sets its own)."""
    if "AIRFLOW_HOME" not in os.environ:
        os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="spp-fault-matrix-")
        os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
        os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = tempfile.mkdtemp(prefix="spp-fault-matrix-dags-")
        from airflow.utils import db

        db.resetdb()


def run_matrix(
    posts: int = 200,
    rate: float = 0.35,
    seed: int = 7,
    *,
    deduplicate: bool = True,
    kinds: tuple[str, ...] = ALL_FAULTS,
    timeout: float = 0.5,
    grace: float = 1.5,
    delay: float = 1.0,
) -> MatrixResult:
    """Post ``posts`` distinct messages through mapped Airflow tasks while the sandbox injects faults.

    The sandbox speaks TLS (so ``break_stream_after`` is a TLS error after the handshake); ``timeout``
    is the client's, ``grace`` the operator's ``lost_answer_wait``, ``delay`` how long slow faults take.
    """
    import pendulum
    from airflow.sdk import DAG

    from airflow_provider_spp.operators.order_messages import CreateOrderMessageOperator
    from airflow_provider_spp.sandbox import SandboxServer
    from airflow_provider_spp.testing import run_dag

    tag = f"{'dedup' if deduplicate else 'nodedup'}-{seed}-{time.time_ns()}"
    texts = [f"Fault matrix {tag} post {i}" for i in range(posts)]
    with SandboxServer(token="fault-matrix-fake-token", tls=True) as sandbox:
        os.environ["AIRFLOW_CONN_SPP_FAULT_MATRIX"] = sandbox.connection_json(
            timeout=timeout, retry_backoff=0.01, max_retries=3
        )
        sandbox.set_random_faults(
            rate, kinds, seed=seed, method="POST", path_prefix="/api/order_messages", retry_after=1, delay=delay
        )
        with DAG(f"spp_fault_matrix_{tag}", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
            CreateOrderMessageOperator.partial(
                task_id="post",
                spp_conn_id="spp_fault_matrix",
                deduplicate=deduplicate,
                retries=8,
                retry_delay=timedelta(0),
                lost_answer_wait=grace,
            ).expand_kwargs([{"order": ORDERS[i % len(ORDERS)], "message": text} for i, text in enumerate(texts)])
        started = time.monotonic()
        dag_run = run_dag(dag)
        seconds = time.monotonic() - started
        counts = collections.Counter(m.message for m in sandbox.messages())
        requests = sandbox.requests()
    tis = [ti for ti in dag_run.get_task_instances() if ti.task_id == "post"]
    return MatrixResult(
        deduplicate=deduplicate,
        posts=posts,
        stored=sum(counts[t] for t in texts),
        duplicates=sum(max(0, counts[t] - 1) for t in texts),
        lost=sum(1 for t in texts if counts[t] == 0),
        faults=dict(collections.Counter(r["fault"] for r in requests if r.get("fault"))),
        post_requests=sum(1 for r in requests if r["method"] == "POST"),
        get_requests=sum(1 for r in requests if r["method"] == "GET"),
        task_tries=sum(ti.try_number for ti in tis),
        failed_tasks=sum(1 for ti in tis if ti.state != "success"),
        seconds=seconds,
        timeout=timeout,
        grace=grace,
    )


def format_table(results: list[MatrixResult]) -> str:
    """A Markdown table, one column per run."""
    header = ["", *(r.label for r in results)]
    kinds = sorted({k for r in results for k in r.faults})
    rows = [
        ("posts intended", [r.posts for r in results]),
        ("messages stored", [r.stored for r in results]),
        ("**duplicates**", [r.duplicates for r in results]),
        ("**lost**", [r.lost for r in results]),
        ("task tries (Airflow)", [r.task_tries for r in results]),
        ("tasks failed for good", [r.failed_tasks for r in results]),
        ("POST requests", [r.post_requests for r in results]),
        ("GET requests (look-ups)", [r.get_requests for r in results]),
        *((f"fault: {k}", [r.faults.get(k, 0) for r in results]) for k in kinds),
        ("wall time (s)", [f"{r.seconds:.1f}" for r in results]),
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join([name, *map(str, values)]) + " |" for name, values in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the matrix with deduplication on and off, print the table; exit 1 if the default lost or duplicated."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", type=int, default=200)
    parser.add_argument("--rate", type=float, default=0.35, help="share of POSTs that get a fault")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-baseline", action="store_true", help="do not run deduplicate=False for contrast")
    args = parser.parse_args(argv)
    _isolated_airflow_home()
    results = [
        run_matrix(args.posts, args.rate, args.seed, deduplicate=True),
        run_matrix(args.posts, args.rate, args.seed, deduplicate=True, **EQUAL_TIMEOUT_AND_GRACE),
    ]
    if not args.skip_baseline:
        results.append(run_matrix(args.posts, args.rate, args.seed, deduplicate=False))
    print(f"\nFault matrix: {args.posts} posts, fault rate {args.rate} on POST, seed {args.seed}\n")
    print(format_table(results))
    return 1 if any(r.deduplicate and (r.duplicates or r.lost) for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
