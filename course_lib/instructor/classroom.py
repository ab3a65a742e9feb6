"""Grade a class against the source: ``python -m course_lib.instructor.grade --instructor``.

::

    python -m course_lib.instructor.grade --instructor submissions/ --csv grades.csv \\
        --reports feedback/ --roster roster.txt -n 2

For every submission (``submissions/<learner>/<notebook>.ipynb``, at any depth below the
learner's folder) :func:`grade_class`

1. reads it defensively and rebuilds it against the source notebook of the same name
   (:mod:`course_lib.instructor.source`): every test cell from the source, by cell id, hidden
   tests included, with the source's points; what the learner changed is noted;
2. runs it with nbval in a sandbox of its own (:mod:`course_lib.instructor.sandbox`), where
   every check only records evidence: the learner's outputs and gradients on inputs drawn from a
   seed that this run draws and the learner cannot know (:mod:`course_lib.checks.evidence`);
3. judges that evidence here, in the grader's process, with the checks' own declarations
   (:func:`course_lib.checks.core.judge`): a test cell earns its points when it ran without an
   error *and* every check it calls passed here;
4. checks that nothing outside the sandboxes changed (course_lib, site-packages, the repository,
   the submissions), and fails the whole batch if anything did.

Every learner gets rows, with a status even when nothing could be run (an unreadable file, the
wrong chapter, no submission at all for a learner on the roster). Points are finite and never
negative: they come from the source's tags, which are checked when the source is read.
"""

from __future__ import annotations

import csv
import importlib
import json
import os
import pkgutil
import secrets
import stat
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from course_lib.instructor import sandbox
from course_lib.instructor.generate import dumps, solution_notebooks
from course_lib.instructor.grade import plugin_args
from course_lib.instructor.plugin import DEFAULT_CELL_TIMEOUT, format_points
from course_lib.instructor.source import (
    BadSubmission,
    SourceNotebook,
    WrongNotebook,
    load_source,
    read_submission,
    restore,
)

CSV_COLUMNS = ("learner", "notebook", "exercise", "title", "points", "possible", "status", "notes")
MAX_EVIDENCE_BYTES = 20 * 2**20  # an evidence file larger than this is not read


class IntegrityError(RuntimeError):
    """Something outside the sandboxes changed during the batch: its grades cannot be trusted."""


@dataclass
class ExerciseResult:
    exercise: str
    title: str
    possible: float
    points: float = 0.0
    hints: list[str] = field(default_factory=list)


@dataclass
class Submission:
    """One learner's notebook (or the lack of it) and what grading made of it."""

    learner: str
    name: str  # the notebook's file name, which names its source
    path: Path | None = None  # None: the learner submitted nothing
    source: SourceNotebook | None = None
    status: str = ""  # why nothing was run, if nothing was
    notes: list[str] = field(default_factory=list)
    sandbox: Path | None = None
    exercises: dict[str, ExerciseResult] = field(default_factory=dict)

    @property
    def points(self) -> float:
        return sum(e.points for e in self.exercises.values())

    @property
    def possible(self) -> float:
        return self.source.possible if self.source else 0.0


def _folder(submission: Submission) -> Path:
    """The sandbox folder of a submission that is being run (it has one by then)."""
    assert submission.sandbox is not None, f"{submission.learner}: no sandbox yet"
    return submission.sandbox


@dataclass
class ClassResult:
    submissions: list[Submission]
    isolation: str  # how kernels were kept apart (separate users or not, and why)
    seconds: float
    run_output: str = ""


# --- finding the submissions ---------------------------------------------------------------------


def _visible(path: Path, root: Path) -> bool:
    return not any(part.startswith(".") for part in path.relative_to(root).parts)


def discover(root: Path) -> list[tuple[str, Path]]:
    """(learner, notebook path) for every notebook below ``root``; the learner is the first
    folder below it (a notebook directly in ``root`` belongs to a learner named after ``root``)."""
    found = []
    for path in sorted(root.rglob("*.ipynb")):
        if not _visible(path, root) or path.is_dir():
            continue
        parts = path.relative_to(root).parts
        found.append((parts[0] if len(parts) > 1 else root.name, path))
    return found


def read_roster(path: Path) -> list[str]:
    """Learner names, one a line; blank lines and lines starting with # are skipped."""
    names = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        name = line.strip()
        if name and not name.startswith("#"):
            names.append(name)
    return names


def learner_folders(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


# --- judging the evidence ------------------------------------------------------------------------


def _read_evidence(path: Path) -> dict | None:
    """One evidence file, read without following links and without trusting its size."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(descriptor, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_EVIDENCE_BYTES:
            return None
        try:
            data = json.loads(handle.read(MAX_EVIDENCE_BYTES + 1).decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None
    return data if isinstance(data, dict) else None


def judge_cell(test, record: dict | None, sandbox_folder: Path, notebook_seed: int):
    """(passed, hint) for one restored test cell from its nbval record and its evidence."""
    from course_lib.checks.core import CHECKS, judge
    from course_lib.checks.evidence import call_seed

    if record is None:
        return False, "not run"
    evidence = []
    for name in record.get("evidence", []):
        if isinstance(name, str) and "/" not in name:
            data = _read_evidence(sandbox_folder / sandbox.EVIDENCE_FOLDER / name)
            if data is not None:
                evidence.append(data)
    hints: list[str] = []
    for call in test.calls:
        found = next(
            (e for e in evidence if e.get("check") == call.check and e.get("seed") == call.seed),
            None,
        )
        if found is None:
            if not hints:  # after a failed check the cell stops: later checks are not news
                hints.append(f"`{call.check}` did not run")
            continue
        evidence.remove(found)
        try:
            verdict = judge(
                CHECKS[call.check], found, call_seed(notebook_seed, call.check, call.seed)
            )
        except Exception as error:  # evidence that is not what the check writes
            hints.append(f"`{call.check}`: its evidence is unreadable ({type(error).__name__})")
            continue
        if not verdict.passed:
            hints.append(verdict.message)
    if record.get("outcome") != "passed":
        status = str(record.get("status") or "failed")
        if status == "failed" and record.get("error"):
            status = f"the cell raised {record['error']}"
        hints.insert(0, status)
    return not hints, "; ".join(dict.fromkeys(hints))


# --- the batch -----------------------------------------------------------------------------------


def _pytest_environment(batch: Path, run_seed: int, memory: int) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_XDIST", "PYTEST_CURRENT_TEST", "COURSE_GRADING"))
        and k not in ("PYTEST_ADDOPTS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    }
    env.update(
        {
            "JUPYTER_PATH": str(batch / "jupyter"),
            "JUPYTER_RUNTIME_DIR": str(batch / "runtime"),
            sandbox.RUN_SEED_VARIABLE: str(run_seed),
            sandbox.MEMORY_VARIABLE: str(int(memory)),
        }
    )
    return env


def _run_notebooks(batch: Path, notebooks: list[Path], workers, timeout, run_seed, memory):
    records = batch / "records"
    records.mkdir(mode=0o700)
    args = [
        sys.executable,
        "-m",
        "pytest",
        "--nbval-lax",
        f"--nbval-kernel-name={sandbox.KERNEL_NAME}",
    ]
    args += [f"--nbval-cell-timeout={timeout:g}", "-p", "no:cacheprovider", "-c", "pytest.ini"]
    args += ["--rootdir", str(batch), "--grade-record", str(records), "-q", "--color=no"]
    args += plugin_args()
    workers = min(workers, len(notebooks))
    if workers > 1:
        args += ["-n", str(workers), "--dist", "loadscope"]
    args += [str(path.relative_to(batch)) for path in notebooks]
    result = subprocess.run(
        args,
        cwd=batch,
        env=_pytest_environment(batch, run_seed, memory),
        capture_output=True,
        text=True,
        check=False,
    )
    output = result.stdout + result.stderr
    by_notebook: dict[str, dict[str, dict]] = {}
    for file in sorted(records.glob("cells-*.jsonl")):
        for line in file.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            by_notebook.setdefault(record["notebook"], {})[str(record["cell_id"])] = record
    if result.returncode not in (0, 1) and not by_notebook:
        raise RuntimeError(f"pytest could not run the notebooks:\n{output[-3000:]}")
    return by_notebook, output


def grade_class(
    root: Path | str,
    source_dir: Path | str = "solutions",
    workers: int = 2,
    timeout: float = DEFAULT_CELL_TIMEOUT,
    memory: int = sandbox.DEFAULT_MEMORY,
    roster: list[str] | None = None,
    outputs: Sequence[Path] = (),
    guards: list[tuple[Path, bool]] | None = None,
    run_seed: int | None = None,
) -> ClassResult:
    """Grade every submission below ``root`` against ``source_dir``; see the module docstring.

    ``outputs`` are the files the caller will write (left out of the integrity check);
    ``guards`` replaces the default guarded paths (:func:`sandbox.default_guards`). Raises
    :class:`IntegrityError` when a guarded file changed during the run.
    """
    # Everything the grader imports is imported before the fingerprint, so that no cache file
    # Python writes on a first import can pass for a change a kernel made.
    import course_lib.checks
    from course_lib.checks.core import CHECKS

    for module in pkgutil.iter_modules(course_lib.checks.__path__):
        importlib.import_module(f"course_lib.checks.{module.name}")  # registers every check

    started = time.perf_counter()
    root, source_dir = Path(root).resolve(), Path(source_dir).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder of submissions")
    sources, broken = {}, {}
    for path in solution_notebooks(source_dir):
        try:
            sources[path.name] = load_source(path, set(CHECKS))
        except (ValueError, OSError) as error:  # one bad source must not stop the others
            broken[path.name] = f"its source cannot be graded: {error}"
    if not sources and not broken:
        raise FileNotFoundError(f"no source notebooks in {source_dir}")
    run_seed = secrets.randbits(62) if run_seed is None else int(run_seed)
    guards = sandbox.default_guards() if guards is None else guards
    guards = [*guards, (root, True)]
    before = sandbox.fingerprint(guards, exclude=list(outputs))
    separate, isolation = sandbox.separate_users_possible()

    submissions = []
    for learner, path in discover(root):
        submission = Submission(learner, path.name, path, sources.get(path.name))
        if submission.source is None:
            submission.status = broken.get(
                path.name, f"no source notebook named {path.name} in {source_dir.name}/"
            )
        submissions.append(submission)
    names = sorted({s.name for s in submissions if s.source})
    learners = sorted(
        set(learner_folders(root)) | set(roster or []) | {s.learner for s in submissions}
    )
    have = {(s.learner, s.name) for s in submissions}
    for learner in learners:
        for name in names or [""]:
            if (learner, name) not in have:
                missing = Submission(learner, name, None, sources.get(name), status="no submission")
                submissions.append(missing)
    submissions.sort(key=lambda s: (s.learner, s.name))

    batch = sandbox.make_batch_folder()
    try:
        runnable = []
        for index, submission in enumerate(submissions):
            for test in submission.source.tests if submission.source else []:
                result = submission.exercises.setdefault(
                    test.exercise, ExerciseResult(test.exercise, test.title, 0.0)
                )
                result.possible += test.points
            if submission.path is None or submission.source is None:
                continue
            try:
                submitted = read_submission(submission.path)
                notebook, submission.notes = restore(submission.source, submitted)
            except WrongNotebook as problem:
                ids = {c.get("id") for c in submitted.cells}
                like = [name for name, other in sources.items() if ids & other.own_ids]
                submission.status = str(problem) + (f" (it looks like {like[0]})" if like else "")
                continue
            except BadSubmission as problem:
                submission.status = str(problem)
                continue
            uid = sandbox.free_uid(index) if separate else None
            submission.sandbox = sandbox.make_sandbox(
                batch, index, submission.name, dumps(notebook), uid
            )
            runnable.append(submission)
        records, output = {}, ""
        if runnable:
            records, output = _run_notebooks(
                batch, [_folder(s) / s.name for s in runnable], workers, timeout, run_seed, memory
            )
        for submission in runnable:
            folder, source = _folder(submission), submission.source
            assert source is not None, "a runnable submission has its source"
            cells = records.get(str(folder / submission.name), {})
            seed = sandbox.notebook_seed(run_seed, folder.name)
            for test in source.tests:
                passed, hint = judge_cell(test, cells.get(test.cell_id), folder, seed)
                result = submission.exercises[test.exercise]
                if passed:
                    result.points += test.points
                elif hint:
                    result.hints.append(hint)
    finally:
        sandbox.remove_batch_folder(batch)
    changed = sandbox.changes(before, sandbox.fingerprint(guards, exclude=list(outputs)))
    if changed:
        listed = "\n  ".join(changed[:20])
        raise IntegrityError(
            f"files outside the sandboxes changed while grading, so no grade of this batch can "
            f"be trusted ({len(changed)} changes):\n  {listed}"
        )
    return ClassResult(submissions, isolation, time.perf_counter() - started, output)


# --- what the instructor and the learners read ---------------------------------------------------


def rows(result: ClassResult) -> list[dict]:
    """One row per learner, notebook and exercise (one row when there is no exercise to show)."""
    table = []
    for s in result.submissions:
        notes = "; ".join(s.notes)
        if s.status or not s.exercises:
            for e in s.exercises.values() or [ExerciseResult("", "", 0.0)]:
                table.append(
                    dict(
                        learner=s.learner,
                        notebook=s.name,
                        exercise=e.exercise,
                        title=e.title,
                        points="0",
                        possible=format_points(e.possible),
                        status=s.status or "nothing to grade",
                        notes=notes,
                    )
                )
            continue
        for e in s.exercises.values():
            table.append(
                dict(
                    learner=s.learner,
                    notebook=s.name,
                    exercise=e.exercise,
                    title=e.title,
                    points=format_points(e.points),
                    possible=format_points(e.possible),
                    status="passed" if e.points == e.possible else "; ".join(e.hints) or "failed",
                    notes=notes,
                )
            )
    return table


def write_csv(result: ClassResult, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows(result))


def _markdown_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write_reports(result: ClassResult, folder: Path) -> list[Path]:
    """``folder/<learner>.md``: each notebook's exercises, points and hints, and the notes."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    by_learner: dict[str, list[Submission]] = {}
    for s in result.submissions:
        by_learner.setdefault(s.learner, []).append(s)
    written = []
    for learner, submissions in by_learner.items():
        lines = [f"# Feedback for {learner}", ""]
        for s in submissions:
            total = f"{format_points(s.points)} / {format_points(s.possible)}"
            lines += [f"## {s.name or 'no notebook'}: {total}", ""]
            if s.status:
                lines += [f"Not graded: {s.status}.", ""]
            if s.exercises:
                lines += ["| exercise | points | what to look at |", "|---|---|---|"]
                for e in s.exercises.values():
                    hint = "" if e.points == e.possible else "; ".join(e.hints) or s.status
                    score = f"{format_points(e.points)} / {format_points(e.possible)}"
                    lines.append(
                        f"| {_markdown_cell(e.title)} | {score} | {_markdown_cell(hint)} |"
                    )
                lines.append("")
            if s.notes:
                lines += ["Changes to the course's cells (the originals were graded):", ""]
                lines += [f"- {note}" for note in s.notes] + [""]
        path = folder / f"{Path(learner).name or 'learner'}.md"
        path.write_text("\n".join(lines), encoding="utf-8")
        written.append(path)
    return written


def table(result: ClassResult) -> str:
    """The score table printed at the end of a run."""
    lines = []
    for s in result.submissions:
        lines.append(f"{s.learner}/{s.name or '-'}")
        width = max([len(e.title) for e in s.exercises.values()] + [5])
        for e in s.exercises.values():
            score = (
                f"{format_points(e.points if not s.status else 0)} / {format_points(e.possible)}"
            )
            hint = (
                "" if e.points == e.possible and not s.status else ("; ".join(e.hints) or s.status)
            )
            lines.append(f"  {e.title:<{width}}  {score}  {hint[:150]}".rstrip())
        status = f"  ({s.status})" if s.status else ""
        total = f"{format_points(s.points)} / {format_points(s.possible)}"
        lines.append(f"  {'total':<{width}}  {total}{status}")
        for note in s.notes:
            lines.append(f"  note: {note}")
    graded = sum(1 for s in result.submissions if s.sandbox)
    lines.append(
        f"{len(result.submissions)} rows, {graded} notebooks run in {result.seconds:.1f} s; "
        f"{result.isolation}"
    )
    return "\n".join(lines)
