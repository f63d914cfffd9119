"""The command line's text: --version, plain help, and a reader that closes early."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import xconv
from xconv._cli import main

ROOT = Path(__file__).resolve().parent.parent


def test_version_prints_the_version_and_exits_0(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"xconv {xconv.__version__}\n"


@pytest.mark.parametrize("argv", [[], ["demo"], ["train"], ["info"]])
def test_help_is_plain_text(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main([*argv, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: xconv")
    assert "`" not in out  # no reST markup
    assert ":func:" not in out
    assert ":mod:" not in out


def test_a_closed_pipe_ends_quietly():
    # the reader is gone before xconv writes a byte: as `xconv info | head -0`
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "xconv", "info"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)
    assert result.stderr == ""  # no traceback, no "Exception ignored" at the last flush
    assert result.returncode == 141  # 128 + SIGPIPE, as a shell reports a closed pipe


def test_a_reader_that_closes_after_the_first_line():
    # `xconv info | head -1`, in Python: read one line, close, wait
    process = subprocess.Popen(
        [sys.executable, "-m", "xconv", "info"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    first = process.stdout.readline()
    process.stdout.close()
    stderr = process.stderr.read()
    process.stderr.close()
    status = process.wait(timeout=120)
    assert first.startswith(b"xconv ")
    assert b"Traceback" not in stderr
    assert b"BrokenPipeError" not in stderr
    assert status in (0, 141)  # 0 when it had written everything before the close
