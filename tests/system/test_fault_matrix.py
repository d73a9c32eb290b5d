"""The fault matrix as a test: 200 posts through real Airflow task tries, every fault kind, no duplicate, none lost."""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

import pytest

from tests.conftest import TESTS_DIR

pytestmark = [pytest.mark.dag, pytest.mark.integration, pytest.mark.slow]


def _fault_matrix() -> Any:
    spec = importlib.util.spec_from_file_location("fault_matrix", TESTS_DIR.parent / "scripts" / "fault_matrix.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_200_posts_under_faults_store_each_message_exactly_once(airflow_db: str) -> None:
    matrix = _fault_matrix()
    result = matrix.run_matrix(posts=200, rate=0.35, seed=7, deduplicate=True)
    assert set(result.faults) == set(matrix.ALL_FAULTS)
    assert sum(result.faults.values()) >= 50
    assert result.task_tries > result.posts
    assert result.failed_tasks == 0
    assert (result.stored, result.duplicates, result.lost) == (200, 0, 0)


def test_with_timeout_equal_to_grace_as_shipped_no_post_is_duplicated_or_lost(airflow_db: str) -> None:
    matrix = _fault_matrix()
    kinds = ("slow_commit", "slow", "server_error_after_commit", "unavailable_after_commit", "break_stream_after")
    result = matrix.run_matrix(posts=40, rate=0.5, seed=11, kinds=kinds, **matrix.EQUAL_TIMEOUT_AND_GRACE)
    assert sum(result.faults.values()) >= 10
    assert result.failed_tasks == 0
    assert (result.stored, result.duplicates, result.lost) == (40, 0, 0)


def test_the_matrix_detects_duplicates_when_deduplication_is_off(airflow_db: str) -> None:
    result = _fault_matrix().run_matrix(
        posts=30, rate=0.5, seed=3, deduplicate=False, kinds=("drop_after", "gateway_timeout", "missing_id")
    )
    assert result.lost == 0
    assert result.duplicates > 0
