"""The ``run`` script's choice of pytest arguments for ``./run test``, tried alone (its functions sourced: nothing
is installed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parents[1] / "run"


def pytest_args(*args: str) -> list[str]:
    """What ``./run test ARGS`` passes to pytest after ``-q``."""
    script = f'source "{RUN}" ""; pytest_args "$@"; printf "%s\\n" "${{PYTEST_ARGS[@]}}"'
    done = subprocess.run(["bash", "-c", script, "bash", *args], capture_output=True, text=True, check=True,
                          env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"})
    return done.stdout.splitlines()


def test_the_files_run_in_parallel_by_default() -> None:
    args = pytest_args("tests/test_cli.py", "-k", "resume")
    assert args[:2] == ["-n", args[1]] and int(args[1]) >= 1
    assert args[2:] == ["--dist", "loadfile", "tests/test_cli.py", "-k", "resume"]


@pytest.mark.parametrize("given", [["-p", "no:xdist"], ["-pno:xdist"], ["-n", "2"], ["-n2"], ["--numprocesses", "2"],
                                   ["--numprocesses=auto"]])
def test_workers_chosen_by_the_user_are_left_to_them(given: list[str]) -> None:
    """`./run test -p no:xdist` failed: ./run always passed -n WORKERS --dist loadfile, which need xdist."""
    assert pytest_args("tests/test_cli.py", *given) == ["tests/test_cli.py", *given]
