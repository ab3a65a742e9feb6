"""Grade exercise notebooks: a short command in front of ``pytest --nbval-lax``.

::

    python -m course_lib.instructor.grade exercises/02_lstm.ipynb
    python -m course_lib.instructor.grade submissions/ --csv grades.csv --junit grades.xml -n 2
    python -m course_lib.instructor.grade exercises/ -q -x              # other options go to pytest

It runs pytest with nbval on the given notebooks and folders (searched recursively), in the
Python environment of this command (``--nbval-current-env``), with a cell timeout
(``--timeout``, default 60 s), and, when there is more than one notebook, in ``-n`` parallel
workers with ``--dist loadscope`` so that each notebook's cells share one worker and one kernel.
The grading plugin (``course_lib.instructor.plugin``) prints the score table and writes the CSV.
The exit code is pytest's: 0 when every cell passed, 1 when some failed.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from importlib.metadata import entry_points
from pathlib import Path

from course_lib.instructor.plugin import DEFAULT_CELL_TIMEOUT

ENTRY_POINT = "course_grading"


def plugin_args() -> list[str]:
    """``-p course_lib.instructor.plugin`` when pytest will not load the plugin by itself.

    pytest loads it through the ``pytest11`` entry point once course_lib is installed
    (``pip install -e .``); naming it again would register it twice.
    """
    installed = any(ep.name == ENTRY_POINT for ep in entry_points(group="pytest11"))
    if installed and not os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        return []
    return ["-p", "course_lib.instructor.plugin"]


def count_notebooks(paths: list[str]) -> int:
    """How many notebooks pytest will collect from ``paths`` (hidden folders are skipped)."""
    count = 0
    for name in paths:
        path = Path(name)
        if path.is_dir():
            count += sum(
                1
                for notebook in path.rglob("*.ipynb")
                if not any(part.startswith(".") for part in notebook.relative_to(path).parts)
            )
        elif path.suffix == ".ipynb":
            count += 1
    return count


def pytest_args(
    paths: list[str],
    csv: str | None = None,
    junit: str | None = None,
    workers: int = 2,
    timeout: float = DEFAULT_CELL_TIMEOUT,
    extra: list[str] | None = None,
) -> list[str]:
    """The pytest command line (without ``pytest`` itself) that grades ``paths``."""
    args = ["--nbval-lax", "--nbval-current-env", f"--nbval-cell-timeout={timeout:g}"]
    args += ["-p", "no:cacheprovider", *plugin_args()]
    if not sys.stdout.isatty():
        args.append("--color=no")  # nbval colours its reports unless told not to
    workers = min(workers, count_notebooks(paths))
    if workers > 1 and importlib.util.find_spec("xdist") is not None:
        args += ["-n", str(workers), "--dist", "loadscope"]
    if csv:
        args += ["--grade-csv", csv]
    if junit:
        args += ["--junitxml", junit]
    return args + list(paths) + list(extra or [])


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(
        prog="python -m course_lib.instructor.grade",
        description="Run exercise notebooks with nbval and print the points per exercise.",
        epilog="Other options, and everything after --, go to pytest unchanged.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="notebooks or folders to grade")
    parser.add_argument("--csv", metavar="FILE", help="write one row per notebook and exercise")
    parser.add_argument("--junit", metavar="FILE", help="write a JUnit XML report with points")
    parser.add_argument(
        "-n", dest="workers", type=int, default=2, help="parallel notebooks (default 2; 1: serial)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_CELL_TIMEOUT,
        help=f"seconds a cell may run (default {DEFAULT_CELL_TIMEOUT:g})",
    )
    options, unknown = parser.parse_known_args(argv)  # other options (-q, -x, ...) go to pytest
    import pytest

    args = pytest_args(
        options.paths, options.csv, options.junit, options.workers, options.timeout, unknown + extra
    )
    return int(pytest.main(args))


if __name__ == "__main__":
    raise SystemExit(main())
