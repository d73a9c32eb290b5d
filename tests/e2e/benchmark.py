"""The E2E's "benchmark" step: benchmarks/mapped_tasks.py in this deployment, its table in the report.

200 mapped task instances each of CreateOrderMessageOperator, a plain ``@task`` posting with ``requests``,
HttpOperator and CreateOrderMessageOperator with ``deduplicate=False``, one DAG run each, all at once
(SPP_E2E_BENCH_TASKS changes the 200). Only "one POST per order" is a check; the figures are printed and
never fail the run.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from tests.e2e.deploy import say

if TYPE_CHECKING:
    from tests.e2e.checks import Context

PER_CONTENDER = int(os.environ.get("SPP_E2E_BENCH_TASKS", "200"))


def check_benchmark(ctx: Context) -> None:
    """Run the mapped-task benchmark once; check every order got exactly one POST; add the table to the report."""
    from benchmarks.mapped_tasks import CONTENDERS, measure

    result = measure(
        ctx.api,
        ctx.sandbox,
        airflow_home=ctx.airflow.home,
        sandbox_url=ctx.sandbox_url,
        token=ctx.token,
        per_contender=PER_CONTENDER,
        say=say,
        alive=ctx.alive,
    )
    ok = ctx.report.check(
        f"benchmark: {len(CONTENDERS) * PER_CONTENDER} mapped posts, one POST and one stored message per order, "
        "runs succeeded",
        result["run_state"] == "success" and result["one_post_per_order"] and result["one_message_per_order"],
        result["lines"][-1],
    )
    if ok:  # check_every_message_accounted_for counts them as reported
        ctx.expected_ids.update(result["message_ids"])
    title = "Mapped-task benchmark (ours vs plain @task vs HttpOperator vs ours without deduplication)"
    ctx.report.figures[title] = result["lines"]
