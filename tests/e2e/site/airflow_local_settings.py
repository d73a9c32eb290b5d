"""Cluster policy of the E2E deployment: send chosen tasks to chosen Celery queues.

SPP_E2E_QUEUE_ROUTES is JSON, ``{"<dag_id>.<task_id>": "<queue>"}``. The E2E run uses it to put the
follow-up example's two tasks on two different workers, as they may land in any deployment.
"""

from __future__ import annotations

import json
import os
from typing import Any

_ROUTES: dict[str, str] = json.loads(os.environ.get("SPP_E2E_QUEUE_ROUTES") or "{}")


def task_policy(task: Any) -> None:
    """Route the task to its configured queue, if it has one."""
    queue = _ROUTES.get(f"{task.dag_id}.{task.task_id}")
    if queue:
        task.queue = queue
