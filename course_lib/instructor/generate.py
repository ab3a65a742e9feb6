"""Generate the learner's notebooks in ``exercises/`` from the complete ones in ``solutions/``.

``solutions/NN_topic.ipynb`` is the single source of truth. Inside its code cells, nbgrader's
markers say what the learner must not see::

    def lstm_step(x, h, c):
        ### BEGIN SOLUTION
        i = torch.sigmoid(...)
        ### END SOLUTION

    # Test 2.1 — the LSTM step            <- a test cell, tagged exercise:lstm_step, points:3
    check_lstm_step(lstm_step)
    ### BEGIN HIDDEN TESTS
    ...                                    <- run on the solutions, removed from the exercises
    ### END HIDDEN TESTS

Generating an exercise notebook

1. replaces each solution region by ``# YOUR CODE HERE`` and ``raise NotImplementedError()``,
   indented like the ``### BEGIN SOLUTION`` line;
2. removes each hidden-test region, markers included;
3. clears every output and execution count, and the timing metadata nbclient leaves on cells;
4. keeps cell ids, cell tags and the notebook metadata (kernelspec ``python3``), minus saved
   widget state, which belongs to the cleared outputs;
5. stores ``metadata.course.generated_sha256``: a hash of what was generated (each cell's type
   and source, nothing else), and writes the file deterministically (``nbformat.writes``: sorted
   keys, one-space indent, ``\\n`` line ends, a trailing newline), so that regenerating from the
   same solution gives a byte-identical file.

Markers are honoured in code cells only; markdown cells are copied as they are.

Protecting the learner's work. Before overwriting ``exercises/X.ipynb`` the generator hashes its
current cells the same way. If the hash equals the stored ``generated_sha256``, nobody has
edited the sources (running the notebook only adds outputs, which are not hashed), so the file is
replaced. Otherwise a learner has worked in it: the file is left alone and listed as skipped,
unless ``force=True`` (``--force``). A notebook without the stored hash was not made by this
generator and is protected the same way.

Command line::

    python -m course_lib.instructor.generate           # solutions/ -> exercises/
    python -m course_lib.instructor.generate --force   # overwrite even edited exercise notebooks
    python -m course_lib.instructor.generate --check   # exit 1 if exercises/ is out of date (CI)
    python -m course_lib.instructor.generate SRC DST   # other folders

``failing_cells`` runs a notebook with nbclient, continuing past errors, and lists the cells that
raised: the check that a blank exercise fails only at its test cells, with NotImplementedError.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import nbformat

from course_lib.instructor import nbgrader

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"
STUB_LINES = ("# YOUR CODE HERE", "raise NotImplementedError()")

# Where the generator keeps its bookkeeping inside a notebook's metadata.
METADATA_KEY = "course"
HASH_KEY = "generated_sha256"

# Cell metadata written by tools that run notebooks, not by authors: dropped with the outputs.
_RUN_METADATA = ("execution", "ExecuteTime")

DEFAULT_KERNELSPEC = {
    "display_name": "Python 3 (ipykernel)",
    "language": "python",
    "name": "python3",
}


class MarkerError(ValueError):
    """A solution or hidden-test region is not closed, or regions are nested."""


# --- turning one solution notebook into one exercise notebook ---------------------------------


def strip_source(source: str, where: str = "cell") -> str:
    """Return ``source`` with solution regions stubbed out and hidden-test regions removed.

    ``where`` names the cell in error messages. Raises ``MarkerError`` on an unclosed, unopened
    or nested region.
    """
    lines_out: list[str] = []
    region: str | None = None  # the BEGIN marker of the region we are inside, if any
    begin_line = 0
    for number, line in enumerate(source.split("\n"), start=1):
        marker = line.strip()
        if marker in (BEGIN_SOLUTION, BEGIN_HIDDEN):
            if region is not None:
                raise MarkerError(
                    f"{where}, line {number}: {marker!r} inside the region opened by "
                    f"{region!r} on line {begin_line}"
                )
            region, begin_line = marker, number
            if marker == BEGIN_SOLUTION:
                indent = line[: len(line) - len(line.lstrip())]
                lines_out.extend(indent + stub for stub in STUB_LINES)
        elif marker in (END_SOLUTION, END_HIDDEN):
            expected = END_SOLUTION if region == BEGIN_SOLUTION else END_HIDDEN
            if region is None or marker != expected:
                raise MarkerError(
                    f"{where}, line {number}: {marker!r} without a matching BEGIN marker"
                )
            region = None
        elif region is None:
            lines_out.append(line)
    if region is not None:
        raise MarkerError(f"{where}, line {begin_line}: {region!r} is never closed")
    stripped = "\n".join(lines_out)
    # A hidden region at the end of a cell would leave blank lines behind: drop them, unless
    # the author's source itself ended with a newline.
    if not source.endswith("\n"):
        stripped = stripped.rstrip("\n")
    return stripped


def content_hash(nb: nbformat.NotebookNode) -> str:
    """SHA-256 of a notebook's cell types and sources: what a learner edits, nothing a run adds."""
    cells = [[cell.cell_type, cell.source] for cell in nb.cells]
    encoded = json.dumps(cells, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(encoded).hexdigest()


def annotate(solution: nbformat.NotebookNode, name: str = "notebook") -> nbformat.NotebookNode:
    """The solution notebook with nbgrader's cell metadata derived from its markers and tags
    (``course_lib.instructor.nbgrader``); the input is not modified."""
    nb = copy.deepcopy(solution)
    for index, cell in enumerate(nb.cells):
        if "id" not in cell:
            # Notebook format 4.4 and older had no cell ids: derive stable ones, not random ones.
            cell["id"] = hashlib.sha1(f"{name}:{index}".encode()).hexdigest()[:8]
        has_solution = cell.cell_type == "code" and any(
            line.strip() == BEGIN_SOLUTION for line in cell.source.split("\n")
        )
        cell.metadata["nbgrader"] = nbgrader.cell_metadata(cell, has_solution)
    nb.nbformat, nb.nbformat_minor = 4, max(nb.get("nbformat_minor", 5), 5)
    return nb


def make_exercise(solution: nbformat.NotebookNode, name: str = "notebook") -> nbformat.NotebookNode:
    """Return the exercise notebook for a solution notebook (the input is not modified)."""
    nb = annotate(solution, name)
    for index, cell in enumerate(nb.cells):
        cell.metadata.update(nbgrader.release_flags(cell.metadata["nbgrader"]))
        for key in _RUN_METADATA:
            cell.metadata.pop(key, None)
        if cell.cell_type == "code":
            cell.source = strip_source(cell.source, where=f"{name}, cell {index}")
            cell.outputs = []
            cell.execution_count = None
    nb.nbformat, nb.nbformat_minor = 4, max(nb.get("nbformat_minor", 5), 5)
    nb.metadata.pop("widgets", None)
    nb.metadata.setdefault("kernelspec", dict(DEFAULT_KERNELSPEC))
    course = dict(nb.metadata.get(METADATA_KEY, {}))
    course[HASH_KEY] = content_hash(nb)
    nb.metadata[METADATA_KEY] = course
    return nb


def dumps(nb: nbformat.NotebookNode) -> str:
    """Serialise a notebook deterministically, with the trailing newline Jupyter writes."""
    text = nbformat.writes(nb)
    return text if text.endswith("\n") else text + "\n"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)


def is_unedited(path: Path) -> bool:
    """True when ``path`` is a generated exercise whose cells nobody has changed since."""
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception:  # unreadable JSON is treated as someone's work, never overwritten
        return False
    stored = nb.metadata.get(METADATA_KEY, {}).get(HASH_KEY)
    return stored is not None and stored == content_hash(nb)


# --- the whole folder --------------------------------------------------------------------------


@dataclass
class Report:
    """What ``generate`` did, one list of exercise paths per outcome."""

    written: list[Path] = field(default_factory=list)  # created or replaced
    unchanged: list[Path] = field(default_factory=list)  # already byte-identical
    skipped: list[Path] = field(default_factory=list)  # edited by a learner: left alone
    annotated: list[Path] = field(default_factory=list)  # solutions given nbgrader metadata

    def __str__(self) -> str:
        lines = [f"nbgrader metadata updated in {path}" for path in self.annotated]
        lines += [f"wrote {path}" for path in self.written]
        lines += [f"up to date {path}" for path in self.unchanged]
        lines += [
            f"skipped {path}: it has been edited since it was generated (use --force to overwrite)"
            for path in self.skipped
        ]
        return "\n".join(lines) if lines else "no solution notebooks found"


def solution_notebooks(solutions_dir: Path | str) -> list[Path]:
    """The solution notebooks in ``solutions_dir``, in name order (not recursive)."""
    return sorted(Path(solutions_dir).glob("*.ipynb"))


def render(solution_path: Path | str) -> str:
    """The exact text of the exercise notebook generated from ``solution_path``."""
    solution_path = Path(solution_path)
    solution = nbformat.read(solution_path, as_version=4)
    return dumps(make_exercise(solution, name=solution_path.name))


def annotated_text(solution_path: Path | str) -> str:
    """The exact text of the solution notebook with its nbgrader metadata up to date."""
    solution_path = Path(solution_path)
    return dumps(annotate(nbformat.read(solution_path, as_version=4), solution_path.name))


def generate(solutions_dir: Path | str, exercises_dir: Path | str, force: bool = False) -> Report:
    """Write ``exercises_dir/X.ipynb`` for every ``solutions_dir/X.ipynb``.

    Each solution notebook first gets its nbgrader metadata brought up to date (in place: its
    cells' ``metadata.nbgrader``, nothing else). An existing exercise notebook that a learner has
    edited is skipped (and listed in the report) unless ``force`` is true. Never deletes anything.
    """
    exercises_dir = Path(exercises_dir)
    report = Report()
    for solution_path in solution_notebooks(solutions_dir):
        text = annotated_text(solution_path)
        if solution_path.read_bytes() != text.encode("utf-8"):
            _write(solution_path, text)
            report.annotated.append(solution_path)
        target = exercises_dir / solution_path.name
        text = render(solution_path)
        if target.exists():
            if target.read_bytes() == text.encode("utf-8"):
                report.unchanged.append(target)
                continue
            if not force and not is_unedited(target):
                report.skipped.append(target)
                continue
        _write(target, text)
        report.written.append(target)
    return report


def check(solutions_dir: Path | str, exercises_dir: Path | str) -> list[str]:
    """Problems that make ``exercises_dir`` out of sync with ``solutions_dir`` (empty: in sync)."""
    exercises_dir = Path(exercises_dir)
    problems = []
    solutions = solution_notebooks(solutions_dir)
    for solution_path in solutions:
        target = exercises_dir / solution_path.name
        if solution_path.read_bytes() != annotated_text(solution_path).encode("utf-8"):
            problems.append(f"{solution_path} lacks its up-to-date nbgrader metadata")
        if not target.exists():
            problems.append(f"{target} is missing")
        elif target.read_bytes() != render(solution_path).encode("utf-8"):
            problems.append(f"{target} differs from what {solution_path} generates")
    names = {path.name for path in solutions}
    for orphan in sorted(exercises_dir.glob("*.ipynb")):
        if orphan.name not in names:
            problems.append(f"{orphan} has no solution notebook in {solutions_dir}")
    return problems


# --- running a notebook and listing the cells that raised --------------------------------------


class CellError(NamedTuple):
    """A cell that raised: its position in ``nb.cells``, its tags and the exception's name."""

    index: int  # type: ignore[assignment]  # a field named like tuple.index, on purpose
    tags: tuple[str, ...]
    ename: str


def failing_cells(
    notebook_path: Path | str, timeout: float = 60, kernel_name: str | None = None
) -> list[CellError]:
    """Run a notebook top to bottom with nbclient, past errors; list the cells that raised.

    The notebook runs in its own folder, like in Jupyter. A cell that runs past ``timeout``
    seconds is interrupted and listed with ``ename`` ``"KeyboardInterrupt"``. If the kernel
    dies, the cell that killed it is listed with ``ename`` ``"DeadKernelError"`` and nothing
    after it runs. The file on disk is not changed.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    notebook_path = Path(notebook_path)
    nb = nbformat.read(notebook_path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        allow_errors=True,
        interrupt_on_timeout=True,  # an endless loop becomes that cell's KeyboardInterrupt
        kernel_name=kernel_name or nb.metadata.get("kernelspec", {}).get("name", "python3"),
        resources={"metadata": {"path": str(notebook_path.parent.resolve())}},
    )
    errors: list[CellError] = []
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            tags = tuple(cell.metadata.get("tags", []))
            try:
                client.execute_cell(cell, index)
            except DeadKernelError:
                errors.append(CellError(index, tags, "DeadKernelError"))
                break
            for output in cell.get("outputs", []):
                if output.output_type == "error":
                    errors.append(CellError(index, tags, output.ename))
                    break
    return errors


# --- command line ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m course_lib.instructor.generate",
        description="Generate exercises/ from solutions/: solutions stubbed, hidden tests removed.",
    )
    parser.add_argument(
        "src", nargs="?", default="solutions", help="solution notebooks (default: solutions)"
    )
    parser.add_argument(
        "dst", nargs="?", default="exercises", help="exercise notebooks (default: exercises)"
    )
    parser.add_argument(
        "--force", action="store_true", help="overwrite even notebooks a learner has edited"
    )
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if DST is out of sync"
    )
    args = parser.parse_args(argv)

    if not Path(args.src).is_dir():
        print(f"error: {args.src} is not a folder", file=sys.stderr)
        return 2
    if args.check:
        problems = check(args.src, args.dst)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print(
                f"{args.dst} is out of date: run `python -m course_lib.instructor.generate`",
                file=sys.stderr,
            )
            return 1
        print(f"{args.dst} is in sync with {args.src}")
        return 0
    report = generate(args.src, args.dst, force=args.force)
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
