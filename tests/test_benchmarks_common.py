"""The benchmarks' record of the machine's load: other processes' share of the CPUs."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def common(benchmarks_module: Any) -> Any:
    return benchmarks_module("_common")


def _load(average: float, t: float, busy: float, own: float) -> dict[str, Any]:
    return {
        "load_average": [average] * 3,
        "monotonic_s": t,
        "machine_busy_s": busy,
        "own_cpu_s": own,
    }


def test_the_benchmarks_own_workers_do_not_count_as_load(common):
    # 10 s on 2 CPUs, the machine busy 19 CPU-seconds, 18.5 of them the benchmark's own
    note = common.load_note(_load(0.1, 0, 100, 5), _load(1.9, 10, 119, 23.5), 2)
    assert "other processes took 2% of the CPUs' time" in note
    assert "under load" not in note


def test_other_processes_make_a_run_loaded(common):
    # 10 s on 2 CPUs, busy 20 CPU-seconds, only 12 of them the benchmark's
    note = common.load_note(_load(0.1, 0, 100, 5), _load(2.0, 10, 120, 17), 2)
    assert "other processes took 40% of the CPUs' time" in note
    assert note.endswith("**measured under load**.")


def test_without_cpu_times_the_load_average_at_the_start_decides(common):
    before, after = {"load_average": [0.9, 0, 0]}, {"load_average": [2.0, 0, 0]}
    assert common.load_note(before, after, 2).endswith("**measured under load**.")
    before["load_average"] = [0.2, 0, 0]
    assert "under load" not in common.load_note(before, after, 2)


def test_machine_load_reads_the_busy_time_and_its_own(common):
    load = common.machine_load()
    assert load["own_cpu_s"] > 0
    assert load["machine_busy_s"] is None or load["machine_busy_s"] > 0
