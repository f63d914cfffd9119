"""`xconv.config.using` is context-local (issue #25): threads and asyncio tasks each see
their own block's values, interleaved blocks leave the process-wide values as they were,
and the process-wide setter keeps working."""

from __future__ import annotations

import asyncio
import threading

import pytest

import xconv
from xconv import config


def test_interleaved_blocks_in_two_threads_leave_the_process_value_alone():
    # the case: thread A enters, B enters, A leaves, B leaves
    assert config.workspace_bytes is None
    a_entered, b_entered, a_left = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, object] = {}

    def a():
        with config.using(workspace_bytes=1000):
            a_entered.set()
            b_entered.wait(5)
            seen["a"] = config.workspace_bytes
        a_left.set()

    def b():
        a_entered.wait(5)
        with config.using(workspace_bytes=2000):
            b_entered.set()
            a_left.wait(5)
            seen["b"] = config.workspace_bytes

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert seen == {"a": 1000, "b": 2000}
    assert config.workspace_bytes is None


def test_a_block_is_not_seen_by_other_threads():
    seen = []
    with config.using(fast_kernels=False):
        thread = threading.Thread(target=lambda: seen.append(config.fast_kernels))
        thread.start()
        thread.join(10)
        assert config.fast_kernels is False
    assert seen == [True]


def test_asyncio_tasks_keep_their_own_values():
    async def task(value: int, delay: float) -> tuple[object, object]:
        with config.using(workspace_bytes=value):
            await asyncio.sleep(delay)
            inside = config.workspace_bytes
        return inside, config.workspace_bytes

    async def main():
        return await asyncio.gather(task(111, 0.02), task(222, 0.0))

    assert asyncio.run(main()) == [(111, None), (222, None)]
    assert config.workspace_bytes is None


def test_process_wide_setter_and_nesting():
    previous = config.delegate
    try:
        config.delegate = False
        assert config.delegate is False
        seen = []
        thread = threading.Thread(target=lambda: seen.append(config.delegate))
        thread.start()
        thread.join(10)
        assert seen == [False]  # process-wide: every thread
        with config.using(delegate=True):
            assert config.delegate is True
            with config.using(delegate=False, workspace_bytes=64):
                assert (config.delegate, config.workspace_bytes) == (False, 64)
            assert (config.delegate, config.workspace_bytes) == (True, None)
            config.delegate = False  # inside a block that set it: for the block only
            assert config.delegate is False
        assert config.delegate is False
    finally:
        config.delegate = previous


def test_using_restores_on_error_and_checks_its_arguments():
    with pytest.raises(RuntimeError), config.using(fast_kernels=False):
        raise RuntimeError
    assert config.fast_kernels is True
    with pytest.raises(TypeError, match="unknown"):
        config.using(speed=1).__enter__()
    with pytest.raises(ValueError, match="workspace_bytes"):
        config.using(workspace_bytes=-1).__enter__()


def test_monkeypatch_and_checked_value(monkeypatch):
    monkeypatch.setattr(xconv.config, "workspace_bytes", 4096)
    assert config.checked_workspace_bytes() == 4096
    with config.using(workspace_bytes=8192):
        assert config.checked_workspace_bytes() == 8192
