"""Grade exercise notebooks: a learner's own run, or an instructor's run against the source.

::

    python -m course_lib.instructor.grade exercises/02_lstm.ipynb       # a learner's own run
    python -m course_lib.instructor.grade exercises/ -q -x              # other options go to pytest
    python -m course_lib.instructor.grade --instructor submissions/ --csv grades.csv \
        --reports feedback/ --roster roster.txt -n 2    # a class, against solutions/

With ``--instructor`` the submissions are graded against the source notebooks (``--source``,
default ``solutions/``) in sandboxes, and the verdicts are reached outside the learners' kernels:
see :mod:`course_lib.instructor.classroom` and docs/GRADING.md. It exits 0 when the grades were
written, 3 when something outside the sandboxes changed (no grades are written then).

Without it, the command is a learner's own check of their notebook:
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


def parse_size(text: str) -> int:
    """'4G', '512M', '1073741824' -> bytes."""
    text = str(text).strip().upper().removesuffix("B").removesuffix("I")
    factor = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1)
    number = text[:-1] if text[-1:] in "KMG" else text
    try:
        value = int(float(number) * factor)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a size such as 4G or 512M, got {text!r}"
        ) from None
    if value < 64 * 2**20:
        raise argparse.ArgumentTypeError(f"a kernel needs at least 64M, got {text!r}")
    return value


def instructor_main(argv: list[str]) -> int:
    """``--instructor``: grade a class against the source; see classroom.py."""
    from course_lib.instructor import classroom, sandbox

    parser = argparse.ArgumentParser(
        prog="python -m course_lib.instructor.grade --instructor",
        description="Grade a folder of submissions (one folder per learner) against the source.",
    )
    parser.add_argument("--instructor", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("root", metavar="SUBMISSIONS", help="one folder per learner")
    parser.add_argument(
        "--source", default="solutions", help="solution notebooks (default solutions)"
    )
    parser.add_argument("--csv", metavar="FILE", help="one row per learner, notebook and exercise")
    parser.add_argument("--reports", metavar="FOLDER", help="write FOLDER/<learner>.md feedback")
    parser.add_argument("--roster", metavar="FILE", help="learner names, one a line")
    parser.add_argument("-n", dest="workers", type=int, default=2, help="parallel kernels")
    parser.add_argument("--timeout", type=float, default=DEFAULT_CELL_TIMEOUT, help="per cell, s")
    parser.add_argument(
        "--memory",
        type=parse_size,
        default=sandbox.DEFAULT_MEMORY,
        help=f"address space per kernel (default {sandbox.DEFAULT_MEMORY // 2**30}G)",
    )
    parser.add_argument("--seed", type=int, default=None, help="the run's seed (default: random)")
    options = parser.parse_args(argv)
    if options.workers < 1:
        parser.error("-n must be at least 1")
    outputs = [Path(p) for p in (options.csv, options.reports) if p]
    try:
        result = classroom.grade_class(
            options.root,
            options.source,
            workers=options.workers,
            timeout=options.timeout,
            memory=options.memory,
            roster=classroom.read_roster(options.roster) if options.roster else None,
            outputs=outputs,
            run_seed=options.seed,
        )
    except classroom.IntegrityError as error:
        print(f"GRADING FAILED: {error}", file=sys.stderr)
        return 3
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(classroom.table(result))
    if options.csv:
        classroom.write_csv(result, Path(options.csv))
        print(f"scores written to {options.csv}")
    if options.reports:
        classroom.write_reports(result, Path(options.reports))
        print(f"feedback written to {options.reports}/")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--instructor" in argv:
        return instructor_main(argv)
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
