"""The mapped-task benchmark's table: the contenders' medians side by side and the ratios that split our cost."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.mapped_tasks import Contender, log_marks, table


def _contender(seconds: float, before: float, after: float, parse: float = 0.05) -> Contender:
    return Contender(durations=[seconds] * 3, parse=[parse] * 3, before_post=[before] * 3, after_answer=[after] * 3)


def test_the_table_splits_our_cost_into_bookkeeping_and_the_rest() -> None:
    found = {
        "ours": _contender(0.740, 0.217, 0.141, 0.153),
        "plain": _contender(0.569, 0.200, 0.068, 0.052),
        "http": _contender(0.900, 0.050, 0.060, 0.528),
        "bare": _contender(0.652, 0.179, 0.111, 0.171),
    }

    lines = table(found)

    rows = {line.split(" | ")[0].lstrip("| "): line for line in lines[2:]}
    assert rows["CreateOrderMessageOperator, deduplicate=False"] == (
        "| CreateOrderMessageOperator, deduplicate=False | 3 | 652 | 652 | 171 | 179 | 179 | 111 |"
    )
    assert rows["ours/plain"] == "| ours/plain | | 1.30 | 1.30 | 2.94 | 1.08 | 1.08 | 2.07 |"
    assert rows["bare/plain"] == "| bare/plain | | 1.15 | 1.15 | 3.29 | 0.90 | 0.90 | 1.63 |"
    assert rows["ours/bare"] == "| ours/bare | | 1.13 | 1.13 | 0.89 | 1.21 | 1.21 | 1.27 |"


def test_a_table_without_the_bare_contender_prints_only_the_ratios_it_can() -> None:
    lines = table({"ours": _contender(0.6, 0.2, 0.1), "plain": _contender(0.5, 0.2, 0.1)})

    assert [line.split(" | ")[0] for line in lines[-1:]] == ["| ours/plain"]
    assert not any(line.startswith(("| bare/", "| ours/bare")) for line in lines)


def test_the_log_marks_time_the_dag_file_parse_and_execute(tmp_path: Path) -> None:
    log = tmp_path / "attempt=1.log"
    events = [
        (0.000, "::group::Pre Execute"),
        (0.030, "Filling up the DagBag from /dags/spp_e2e_bench_ours.py"),
        (0.183, "Worker startup parse complete"),
        (0.220, "::endgroup::"),
        (0.470, "Message 22 is on SPP order 1610"),
        (0.540, "::endgroup::"),
    ]
    log.write_text("\n".join(json.dumps({"timestamp": t, "event": e}) for t, e in events) + "\nnot json\n")

    marks = log_marks(log, lambda value: float(value) if isinstance(value, float | int) else None)

    assert marks == {"filling": 0.030, "parsed": 0.183, "execute": 0.220, "end": 0.540}
