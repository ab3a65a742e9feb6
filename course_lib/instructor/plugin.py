"""A pytest plugin that turns nbval's per-cell results into points per exercise.

nbval (``pytest --nbval-lax``) runs a notebook in a kernel and makes every code cell a test
item that passes when the cell runs without an error. This plugin reads two cell tags:

* ``points:N``: the cell is a graded test cell worth ``N`` points;
* ``exercise:ID``: the exercise it belongs to (several cells may share one ID; their points add).

A graded cell earns its points when its item passed, and nothing otherwise (failed, errored,
skipped, or raised an exception under nbval's ``raises-exception`` marker). The exercise's title
is the first line of its test cell when that line is a comment (``# Test 2.1 — the LSTM cell``).

What it adds, only when nbval is active (``--nbval`` or ``--nbval-lax``):

* a score table at the end of the run, per notebook: each exercise, its points earned out of
  possible, and the total; printed only when graded notebooks were collected;
* ``--grade-csv PATH``: one row per notebook and exercise with the columns ``learner``
  (the notebook's folder, so ``submissions/alice/02_lstm.ipynb`` is alice's), ``notebook``,
  ``exercise``, ``title``, ``points``, ``possible``, ``status``;
* JUnit: every graded item carries the properties ``exercise``, ``title``, ``possible`` and
  ``points`` (``--junitxml`` writes them, as ``record_property`` would). The same properties
  travel in ``report.user_properties``, which is how pytest-xdist workers pass them to the
  controller that prints the table (run with ``-n 2 --dist loadscope`` so that all the cells
  of a notebook stay in one worker and one kernel);
* a default cell timeout of 60 s instead of nbval's 2000 s: when ``--nbval-cell-timeout`` is
  left at nbval's default it is lowered to ``DEFAULT_CELL_TIMEOUT``, and the run's header
  says so. An endless loop fails its cell when the time is up; in a graded notebook the kernel
  is interrupted and the later cells still run and earn their points (nbval would mark them
  expected-to-fail), and if the kernel cannot be interrupted they are skipped as not run;
* a kernel that dies (``os._exit``, a segfault, running out of memory) fails the cell that
  killed it at once, with the exit code, instead of waiting for the timeout; the rest of that
  notebook is skipped as not run, and the other notebooks are graded as usual.

The plugin never writes to a notebook. It is registered through the ``pytest11`` entry point
``course_grading`` in ``pyproject.toml``; ``python -m course_lib.instructor.grade`` is the short
command. With ``--grade-record FOLDER`` (the instructor's grader sets it) it prints no table and
writes, for every cell, how it ended and which evidence files its checks wrote
(``course_lib.instructor.classroom`` reads them and reaches the verdict).
"""

from __future__ import annotations

import csv
import json
import os
import signal
import time
import warnings
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from queue import Empty
from typing import Any

import pytest

from course_lib.instructor.sandbox import EVIDENCE_FOLDER  # where a sandbox's checks write

# nbval's cell items are untyped: they carry .cell, .cell_num and .test_outputs, and their
# parent (the notebook) .kernel and .timed_out. The hooks below take them as this.
CellItem = Any

DEFAULT_CELL_TIMEOUT = 60.0  # seconds; graded runs must never hang on a learner's endless loop
_NBVAL_DEFAULT_CELL_TIMEOUT = 2000.0  # nbval's own default for --nbval-cell-timeout
_KERNEL_POLL = 0.5  # seconds between checks that the kernel is still alive during a cell
MAX_EVIDENCE = 200  # evidence files read per cell at most
CSV_COLUMNS = ("learner", "notebook", "exercise", "title", "points", "possible", "status")


# --- reading the tags of a cell ----------------------------------------------------------------


@dataclass(frozen=True)
class GradedCell:
    """What the tags and first line of a graded test cell say."""

    exercise: str  # from the exercise:ID tag
    title: str  # the first line of the cell when it is a comment, else the exercise ID
    possible: float  # from the points:N tag


def graded_cell(cell, fallback_id: str = "exercise") -> GradedCell | None:
    """The grading information of a notebook cell, or None when it has no ``points:N`` tag."""
    tags = cell.get("metadata", {}).get("tags", [])
    points = exercise = None
    for tag in tags if isinstance(tags, list) else []:
        if not isinstance(tag, str):
            continue
        if tag.startswith("points:"):
            try:
                points = float(tag.removeprefix("points:"))
            except ValueError:
                warnings.warn(f"ignoring the tag {tag!r}: points must be a number", stacklevel=2)
        elif tag.startswith("exercise:"):
            exercise = tag.removeprefix("exercise:").strip()
    if points is None:
        return None
    exercise = exercise or fallback_id
    first_line = cell.get("source", "").strip().split("\n", 1)[0].strip()
    title = first_line.lstrip("#").strip() if first_line.startswith("#") else ""
    return GradedCell(exercise=exercise, title=title or exercise, possible=points)


def format_points(value: float) -> str:
    """3.0 -> '3', 0.5 -> '0.5'."""
    return f"{value:g}"


# --- the plugin --------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("course grading", "points per exercise for nbval runs (course_lib)")
    group.addoption(
        "--grade-csv",
        metavar="PATH",
        default=None,
        help="write the points per notebook and exercise to PATH as CSV (with --nbval/--nbval-lax)",
    )
    group.addoption(
        "--grade-record",
        metavar="FOLDER",
        default=None,
        help="(used by the instructor's grader) write each cell's outcome and the evidence files "
        "its checks wrote to FOLDER, one JSON line per cell; print no score table",
    )


def pytest_configure(config: pytest.Config) -> None:
    option = config.option
    if not (getattr(option, "nbval", False) or getattr(option, "nbval_lax", False)):
        return  # not a notebook run: stay out of the way
    if getattr(option, "nbval_cell_timeout", None) == _NBVAL_DEFAULT_CELL_TIMEOUT:
        option.nbval_cell_timeout = DEFAULT_CELL_TIMEOUT
    config.pluginmanager.register(CourseGrader(config), "course_grader")


def _is_nbval_cell(item: CellItem) -> bool:
    # nbval's item class; checked by attributes so that nbval stays an optional import
    return hasattr(item, "cell_num") and hasattr(item, "cell") and hasattr(item.parent, "kernel")


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else "skipped"
    return str(reason).removeprefix("Skipped: ")


def _number(value: float) -> int | float:
    """Points as an int when whole, so JUnit and CSV say 3, not 3.0."""
    return int(value) if float(value).is_integer() else float(value)


def _listing(folder: Path) -> set[str]:
    try:
        return {name for name in os.listdir(folder) if name.endswith(".json")}
    except OSError:
        return set()


class KernelDied(Exception):
    """Raised inside nbval's wait for a cell's reply when the kernel process is gone."""


def _exit_description(kernel) -> str:
    process = getattr(getattr(getattr(kernel, "km", None), "provisioner", None), "process", None)
    code = getattr(process, "returncode", None)
    if code is None:
        return "exit code unknown"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


@dataclass
class _Entry:
    """One graded cell as seen by the process that prints the table."""

    notebook: str  # path relative to the rootdir, as in the node id
    cell: int
    exercise: str
    title: str
    possible: float
    points: float = 0.0
    status: str = "not run"


@dataclass
class _Exercise:
    exercise: str
    title: str
    possible: float = 0.0
    points: float = 0.0
    statuses: list[str] = field(default_factory=list)


class CourseGrader:
    """Registered by ``pytest_configure`` when nbval is active; one per pytest process."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.entries: dict[str, _Entry] = {}  # node id -> graded cell
        self.notebook_notes: dict[str, list[str]] = {}  # notebook -> what went wrong there
        self.dead: dict[str, str] = {}  # notebook node id -> why its later cells are not run
        self.notes: dict[str, str] = {}  # item node id -> status note for its reports
        self.graded_notebooks: set[str] = set()  # notebook node ids with a points tag
        self.record_folder = getattr(config.option, "grade_record", None)  # for the instructor
        self.evidence: dict[str, list[str]] = {}  # item node id -> evidence files it wrote

    # -- header --------------------------------------------------------------------------------

    def pytest_report_header(self, config: pytest.Config) -> str:
        timeout = format_points(config.option.nbval_cell_timeout)
        return f"course grading: points per exercise from cell tags; cell timeout {timeout} s"

    # -- on the process that runs the cells (a worker under xdist) ------------------------------

    def pytest_collection_modifyitems(self, items: list[CellItem]) -> None:
        for item in items:
            if not _is_nbval_cell(item):
                continue
            info = graded_cell(item.cell, fallback_id=f"cell-{item.cell_num}")
            if info is None:
                continue
            self.graded_notebooks.add(item.parent.nodeid)
            item.user_properties += [
                ("exercise", info.exercise),
                ("title", info.title),
                ("possible", _number(info.possible)),
                ("cell", item.cell_num),
            ]

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: CellItem) -> None:
        if _is_nbval_cell(item) and item.parent.nodeid in self.dead:
            pytest.skip(self.dead[item.parent.nodeid])

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: CellItem) -> Generator[None, object, object]:
        if not _is_nbval_cell(item) or item.parent.kernel is None:
            return (yield)
        notebook = item.parent
        kernel = notebook.kernel
        was_timed_out = notebook.timed_out
        original_await_reply = kernel.await_reply

        def await_reply(msg_id, timeout=None):
            # nbval waits for the cell's reply in one blocking call, which a dead kernel never
            # answers; wait in short slices instead and look at the kernel process in between.
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise Empty
                try:
                    return original_await_reply(
                        msg_id, _KERNEL_POLL if left is None else min(_KERNEL_POLL, left)
                    )
                except Empty:
                    if not kernel.is_alive():
                        raise KernelDied(_exit_description(kernel)) from None

        kernel.await_reply = await_reply
        evidence = Path(str(item.parent.fspath)).parent / EVIDENCE_FOLDER
        before = _listing(evidence) if self.record_folder else set()
        try:
            return (yield)
        except KernelDied as died:
            self._kernel_died(item, str(died))
            from nbval.plugin import NbCellError

            raise NbCellError(
                item.cell_num,
                f"The kernel died while running this cell ({died}); "
                "the rest of this notebook is not run",
                item.cell.source,
            ) from None
        finally:
            kernel.await_reply = original_await_reply
            if self.record_folder:
                self.evidence[item.nodeid] = sorted(_listing(evidence) - before)[:MAX_EVIDENCE]
            if notebook.timed_out and not was_timed_out:
                self._timed_out(item)

    def _kernel_died(self, item: CellItem, how: str) -> None:
        notebook = item.parent
        self.notes[item.nodeid] = f"kernel died ({how})"
        self.dead[notebook.nodeid] = f"not run: the kernel died in Cell {item.cell_num} ({how})"
        try:  # release the channels and connection file of the dead kernel
            notebook.kernel.stop()
        except Exception:
            pass

    def _timed_out(self, item: CellItem) -> None:
        notebook = item.parent
        timeout = format_points(self.config.option.nbval_cell_timeout)
        self.notes[item.nodeid] = f"timed out after {timeout} s"
        if notebook.nodeid not in self.graded_notebooks:
            return  # nbval's own behaviour: later cells are expected to fail
        if notebook.kernel is not None and notebook.kernel.is_alive():
            # The kernel was interrupted and is usable: grade the later cells on their merits.
            notebook.timed_out = False
        else:
            self.dead[notebook.nodeid] = (
                f"not run: Cell {item.cell_num} timed out and its kernel could not be interrupted"
            )

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(
        self, item: CellItem, call: pytest.CallInfo
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        # tryfirst makes this the outermost wrapper: the outcome seen here is final (xfail applied).
        report = yield
        if not _is_nbval_cell(item):
            return report
        properties: dict[str, Any] = dict(item.user_properties)
        if call.when == "call" and "possible" in properties:
            error = next(
                (out for out in (item.test_outputs or []) if out.get("output_type") == "error"),
                None,
            )
            if report.passed and error is not None:
                # nbval's raises-exception marker lets a cell pass while raising; a graded
                # test cell that raises has not passed.
                report.outcome = "failed"
                report.longrepr = (
                    f"graded test cell raised {error.get('ename')}: {error.get('evalue')}"
                )
            passed = report.passed and not hasattr(report, "wasxfail")
            self._add_property(item, report, "points", properties["possible"] if passed else 0)
        if call.when == "teardown" and "possible" in properties and "points" not in properties:
            self._add_property(item, report, "points", 0)  # never reached the call phase
        if item.nodeid in self.notes and "status" not in properties:
            self._add_property(item, report, "status", self.notes[item.nodeid])
        if self.record_folder and (
            call.when == "call" or (call.when == "setup" and not report.passed)
        ):
            self._record(item, report)
        return report

    def _record(self, item: CellItem, report: pytest.TestReport) -> None:
        """One JSON line for the instructor's grader: how the cell ended, what evidence it left."""
        error = (
            next(
                (out for out in (item.test_outputs or []) if out.get("output_type") == "error"),
                None,
            )
            if getattr(item, "test_outputs", None)
            else None
        )
        line = {
            "notebook": str(item.parent.fspath),
            "cell": item.cell_num,
            "cell_id": item.cell.get("id"),
            "outcome": report.outcome,
            "status": self.notes.get(item.nodeid)
            or (_skip_reason(report) if report.skipped else report.outcome),
            "error": None if error is None else str(error.get("ename")),
            "evidence": self.evidence.get(item.nodeid, []),
        }
        worker = getattr(self.config, "workerinput", {}).get("workerid", "main")
        assert self.record_folder is not None, "only called when recording"
        folder = Path(self.record_folder)
        with (folder / f"cells-{worker}.jsonl").open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(line) + "\n")

    @staticmethod
    def _add_property(item: CellItem, report: pytest.TestReport, name: str, value) -> None:
        # On the item, so the teardown report (which JUnit reads) carries it; on this report,
        # which was already built from a copy of the item's properties.
        item.user_properties.append((name, value))
        report.user_properties.append((name, value))

    # -- on the process that prints the table (the controller under xdist) ----------------------

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        properties: dict[str, Any] = dict(report.user_properties)
        notebook = report.nodeid.split("::", 1)[0]
        if "possible" not in properties:
            if "status" in properties:  # an ungraded cell that timed out or killed the kernel
                cell = report.nodeid.rsplit("::", 1)[-1]
                note = f"{cell}: {properties['status']}"
                notes = self.notebook_notes.setdefault(notebook, [])
                if note not in notes:
                    notes.append(note)
            return
        entry = self.entries.get(report.nodeid)
        if entry is None:
            entry = self.entries[report.nodeid] = _Entry(
                notebook=notebook,
                cell=int(properties.get("cell", 0)),
                exercise=str(properties["exercise"]),
                title=str(properties["title"]),
                possible=float(properties["possible"]),
            )
        if "points" in properties:
            entry.points = float(properties["points"])
        if "status" in properties:
            entry.status = str(properties["status"])
        elif report.skipped:
            entry.status = _skip_reason(report)
        elif report.when == "setup" and report.failed:
            entry.status = "error before the cell ran"
        elif report.when == "call":
            entry.status = "passed" if report.passed else "failed"

    def exercises(self) -> dict[str, list[_Exercise]]:
        """Graded notebooks in path order, each with its exercises in the order of their cells."""
        by_notebook: dict[str, dict[str, _Exercise]] = {}
        for entry in sorted(self.entries.values(), key=lambda e: (e.notebook, e.cell)):
            exercises = by_notebook.setdefault(entry.notebook, {})
            exercise = exercises.setdefault(entry.exercise, _Exercise(entry.exercise, entry.title))
            exercise.possible += entry.possible
            exercise.points += entry.points
            if entry.status != "passed":
                exercise.statuses.append(entry.status)
        return {notebook: list(exercises.values()) for notebook, exercises in by_notebook.items()}

    def learner(self, notebook: str) -> str:
        parent = PurePosixPath(notebook).parent.name
        return parent or self.config.rootpath.name

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if hasattr(self.config, "workerinput") or not self.entries or self.record_folder:
            return
        write = terminalreporter.write_line
        terminalreporter.write_sep("=", "course scores")
        notebooks = self.exercises()
        for notebook, exercises in notebooks.items():
            write(notebook)
            title_width = max(len(e.title) for e in exercises)
            id_width = max(len(e.exercise) for e in exercises)
            score_width = max(len(format_points(e.possible)) for e in exercises)
            total_width = len(format_points(sum(e.possible for e in exercises)))
            width = max(score_width, total_width)
            for e in exercises:
                score = f"{format_points(e.points):>{width}} / {format_points(e.possible):<{width}}"
                note = f"  {'; '.join(dict.fromkeys(e.statuses))}" if e.statuses else ""
                write(
                    f"  {e.title:<{title_width}}  {e.exercise:<{id_width}}  {score}{note}".rstrip()
                )
            earned = sum(e.points for e in exercises)
            possible = sum(e.possible for e in exercises)
            total = f"{format_points(earned):>{width}} / {format_points(possible):<{width}}"
            write(f"  {'total':<{title_width}}  {'':<{id_width}}  {total}".rstrip())
            for note in self.notebook_notes.get(notebook, []):
                write(f"  ! {note}")
        if len(notebooks) > 1:
            write(f"{len(notebooks)} notebooks graded")
        csv_path = self.config.option.grade_csv
        if csv_path:
            write(f"scores written to {csv_path}")

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        csv_path = self.config.option.grade_csv
        if not csv_path or hasattr(self.config, "workerinput"):
            return
        path = Path(csv_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(CSV_COLUMNS)
            for notebook, exercises in self.exercises().items():
                for e in exercises:
                    status = (
                        "passed" if e.points == e.possible else "; ".join(dict.fromkeys(e.statuses))
                    )
                    writer.writerow(
                        [
                            self.learner(notebook),
                            PurePosixPath(notebook).name,
                            e.exercise,
                            e.title,
                            format_points(e.points),
                            format_points(e.possible),
                            status,
                        ]
                    )
