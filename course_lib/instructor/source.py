"""The source of truth for instructor grading, and a submission put back together against it.

The instructor grades against the solution notebooks (``solutions/`` by default), never against
what a submission says about itself. For every source notebook this module knows

* its **test cells** (a ``points:N`` tag), each with its exercise id, title and points read from
  the source, and the ``check_*`` calls it makes (read from its code, hidden tests included);
* its **answer cells** (cells with a ``### BEGIN SOLUTION`` region): the learner's to write;
* every other cell, which is the instructor's too (imports, explanations).

:func:`restore` builds the notebook that is actually run: the source's cells in the source's
order, with the learner's version of each answer cell (matched by cell id) and the learner's own
extra cells kept after the cell they followed. Every test cell comes from the source, hidden
tests included, with the source's tags. What the learner changed in the instructor's cells
(edited, deleted, re-tagged) changes nothing and is listed in the returned notes. A submission
that shares no answer or test cell id with its source is another notebook: ``restore`` raises
:class:`WrongNotebook`.

:func:`read_submission` reads a file defensively: every way a file can fail to be a notebook
(unreadable, empty, not JSON, another nbformat) becomes a :class:`BadSubmission` with a reason.
This module does not import torch.
"""

from __future__ import annotations

import ast
import copy
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from course_lib.instructor.generate import BEGIN_SOLUTION

MAX_NOTEBOOK_BYTES = 20 * 2**20  # a submission larger than this is not read at all


class BadSubmission(Exception):
    """A submission that cannot be graded at all; the message is the reason shown to the learner."""


class WrongNotebook(BadSubmission):
    """A readable notebook that belongs to another chapter (no cell of this one)."""


@dataclass(frozen=True)
class CheckCall:
    """One ``check_x(function, seed=N)`` call in a test cell."""

    check: str
    seed: int


@dataclass(frozen=True)
class TestCell:
    """A graded test cell of the source, as the source tags it."""

    cell_id: str
    exercise: str
    title: str
    points: float
    calls: tuple[CheckCall, ...]  # the checks whose verdicts decide this cell's points


@dataclass
class SourceNotebook:
    """One solution notebook, read once per grading run."""

    path: Path
    notebook: nbformat.NotebookNode
    tests: list[TestCell] = field(default_factory=list)
    answers: set[str] = field(default_factory=set)  # ids of answer cells

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def possible(self) -> float:
        return sum(test.points for test in self.tests)

    @property
    def own_ids(self) -> set[str]:
        """The ids that mark a notebook as this one (answer and test cells, not 'setup')."""
        return self.answers | {test.cell_id for test in self.tests}


def _tag_values(cell, prefix: str) -> list[str]:
    tags = cell.get("metadata", {}).get("tags", [])
    return [
        t.removeprefix(prefix).strip() for t in tags if isinstance(t, str) and t.startswith(prefix)
    ]


def check_calls(source: str, known: set[str], where: str) -> tuple[CheckCall, ...]:
    """The ``check_*`` calls of a test cell's code: ``check_x(f)`` or ``check_x(f, seed=N)``."""
    calls = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
            continue
        if node.func.id not in known:
            continue
        seed = 0
        for keyword in node.keywords:
            if keyword.arg == "seed":
                if not (
                    isinstance(keyword.value, ast.Constant) and type(keyword.value.value) is int
                ):
                    raise ValueError(f"{where}: the seed of {node.func.id} must be a literal int")
                seed = keyword.value.value
        if len(node.args) > 1:
            raise ValueError(f"{where}: pass the seed of {node.func.id} as seed=N")
        calls.append((node.lineno, node.col_offset, CheckCall(node.func.id, seed)))
    return tuple(call for *_, call in sorted(calls, key=lambda item: item[:2]))


def load_source(path: Path | str, known_checks: set[str]) -> SourceNotebook:
    """Read a solution notebook and what grading needs from it; errors name the cell."""
    path = Path(path)
    notebook = nbformat.read(path, as_version=4)
    source = SourceNotebook(path, notebook)
    seen: set[str] = set()
    for index, cell in enumerate(notebook.cells):
        cell_id = cell.get("id")
        where = f"{path.name}, cell {index}"
        if not cell_id or cell_id in seen:
            raise ValueError(f"{where}: every source cell needs its own id")
        seen.add(cell_id)
        if cell.cell_type != "code":
            continue
        if any(line.strip() == BEGIN_SOLUTION for line in cell.source.split("\n")):
            source.answers.add(cell_id)
        points = _tag_values(cell, "points:")
        if not points:
            continue
        value = float(points[0])
        if len(points) > 1 or not math.isfinite(value) or value < 0:
            raise ValueError(f"{where}: needs one points:N tag with N finite and >= 0")
        exercise = (_tag_values(cell, "exercise:") or [f"cell-{index}"])[0]
        first = cell.source.strip().split("\n", 1)[0].strip()
        title = first.lstrip("#").strip() if first.startswith("#") else exercise
        calls = check_calls(cell.source, known_checks, where)
        if not calls:
            raise ValueError(
                f"{where}: a test cell must call a check of course_lib.checks, whose verdict the "
                "grader reaches outside the kernel"
            )
        source.tests.append(TestCell(cell_id, exercise, title or exercise, value, calls))
    return source


def read_submission(path: Path) -> nbformat.NotebookNode:
    """The notebook in ``path``, or :class:`BadSubmission` saying why it cannot be one."""
    try:
        size = path.stat().st_size
        if size > MAX_NOTEBOOK_BYTES:
            raise BadSubmission(f"too large to grade ({size} bytes)")
        data = path.read_bytes()
    except OSError as error:
        raise BadSubmission(f"unreadable ({error.strerror or type(error).__name__})") from None
    if not data.strip():
        raise BadSubmission("empty file")
    try:
        content = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise BadSubmission(f"not a notebook: not valid JSON ({type(error).__name__})") from None
    if not isinstance(content, dict) or not isinstance(content.get("cells"), list):
        raise BadSubmission("not a notebook: no list of cells")
    if content.get("nbformat") != 4:
        raise BadSubmission(f"not an nbformat 4 notebook (nbformat {content.get('nbformat')!r})")
    try:
        notebook = nbformat.from_dict(content)
        for cell in notebook.cells:
            if not isinstance(cell, dict) or cell.get("cell_type") not in (
                "code",
                "markdown",
                "raw",
            ):
                raise ValueError("a cell without a valid cell_type")
            source = cell.get("source", "")
            cell["source"] = "".join(source) if isinstance(source, list) else str(source)
            if not isinstance(cell.get("metadata", {}), dict):
                cell["metadata"] = nbformat.NotebookNode()
    except (TypeError, ValueError, AttributeError) as error:
        raise BadSubmission(f"not a notebook: {error}") from None
    return notebook


def restore(source: SourceNotebook, submission: nbformat.NotebookNode) -> tuple:
    """The notebook to run for ``submission``, and notes on what the learner changed.

    Returns ``(notebook, notes)``. Raises :class:`WrongNotebook` when the submission has no
    answer or test cell of ``source``.
    """
    by_id: dict[str, nbformat.NotebookNode] = {}
    extras: dict[str | None, list] = {}  # source cell id they followed -> learner's own cells
    anchor: str | None = None
    source_ids = [cell.id for cell in source.notebook.cells]
    for cell in submission.cells:
        cell_id = cell.get("id")
        if isinstance(cell_id, str) and cell_id in source_ids and cell_id not in by_id:
            by_id[cell_id] = cell
            anchor = cell_id
        else:
            extras.setdefault(anchor, []).append(cell)
    if not (set(by_id) & source.own_ids):
        raise WrongNotebook(f"not {source.name}: none of its exercise cells is in this notebook")
    notes = []
    restored = []
    tests = {test.cell_id: test for test in source.tests}
    for cell in extras.get(None, []):
        restored.append(_learner_cell(cell))
    for original in source.notebook.cells:
        mine = by_id.get(original.id)
        if original.id in source.answers:
            if mine is None:
                notes.append(f"answer cell {original.id} deleted")
                restored.append(_blank_answer(original))
            else:
                restored.append(_learner_cell(mine, keep_id=original.id))
        else:
            if mine is None:
                kind = "test" if original.id in tests else "course"
                notes.append(f"{kind} cell {original.id} deleted (restored)")
            elif mine.get("cell_type") != original.cell_type or mine.get("source") not in (
                original.source,
                _exercise_source(original),
            ):
                kind = "test" if original.id in tests else "course"
                notes.append(f"{kind} cell {original.id} edited (restored)")
            elif _tags(mine) != _tags(original):
                notes.append(f"tags of cell {original.id} changed (restored)")
            restored.append(_instructor_cell(original))
        for cell in extras.get(original.id, []):
            if _tags(cell) and any(t.startswith(("points:", "exercise:")) for t in _tags(cell)):
                notes.append("an added cell carries points or exercise tags (ignored)")
            restored.append(_learner_cell(cell))
    notebook = nbformat.v4.new_notebook(metadata=copy.deepcopy(source.notebook.metadata))
    notebook.cells = restored
    return notebook, notes


def _tags(cell) -> list:
    tags = cell.get("metadata", {}).get("tags", [])
    return list(tags) if isinstance(tags, list) else [tags]


def _instructor_cell(original) -> nbformat.NotebookNode:
    if original.cell_type == "code":
        cell = nbformat.v4.new_code_cell(original.source, metadata=copy.deepcopy(original.metadata))
    else:
        cell = nbformat.v4.new_markdown_cell(
            original.source, metadata=copy.deepcopy(original.metadata)
        )
    cell.id = original.id
    return cell


def _learner_cell(cell, keep_id: str | None = None) -> nbformat.NotebookNode:
    """A learner's cell with its source only: no tags, no outputs, a fresh id unless kept."""
    source = str(cell.get("source", ""))
    if cell.get("cell_type") == "code":
        new = nbformat.v4.new_code_cell(source)
    else:
        new = nbformat.v4.new_markdown_cell(source)
    if keep_id:
        new.id = keep_id
    return new


def _exercise_source(original) -> str:
    """The cell as the exercise notebook has it (hidden tests removed)."""
    from course_lib.instructor.generate import strip_source

    return strip_source(original.source) if original.cell_type == "code" else original.source


def _blank_answer(original) -> nbformat.NotebookNode:
    from course_lib.instructor.generate import strip_source

    cell = nbformat.v4.new_code_cell(strip_source(original.source))
    cell.id = original.id
    return cell
