"""The Task SDK's link to Airflow (what a worker, the triggerer and ``dag.test()`` give running code), for tests.

Built the way ``dag.test()`` builds it, from Airflow's in-process test supervisor: not a public API, so
only the tests use it. Inside it, ``airflow.sdk.Variable`` reads and writes the test metadata DB.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def task_sdk_link() -> Iterator[None]:
    """Run the block as code inside a task would run, as far as the Task SDK's API calls go."""
    import os
    import uuid

    import psutil
    import structlog
    from airflow.sdk import Variable
    from airflow.sdk.execution_time.supervisor import (
        InProcessSupervisorComms,
        InProcessTestSupervisor,
        set_supervisor_comms,
    )

    supervisor = InProcessTestSupervisor(
        id=uuid.uuid4(),
        pid=os.getpid(),
        process=psutil.Process(),
        process_log=structlog.get_logger(logger_name="task").bind(),
        client=InProcessTestSupervisor._api_client(),
    )
    supervisor.comms = InProcessSupervisorComms(supervisor=supervisor)
    with set_supervisor_comms(supervisor.comms):
        Variable.get("spp_warm_up", default=None)  # the in-process API starts on its first call (seconds)
        yield
