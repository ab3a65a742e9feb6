"""The exercise notebooks keep their contract (docs/GRADING.md).

* every solution notebook passes nbval and scores full marks with the grading plugin;
* every exercise notebook in ``exercises/``, executed as is, fails exactly at its test cells,
  each with ``NotImplementedError``: no other cell calls an exercise's function, and no later cell
  depends on an exercise's result;
* every test cell in ``solutions/`` carries both tags and a title comment, calls a check from
  ``course_lib.checks``, and is numbered in order within its chapter.

The first two run notebooks in kernels (a few seconds each); the last is static.
"""

from __future__ import annotations

import ast
import csv
import os
import re
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import nbformat
import pytest

from course_lib import checks as grading
from course_lib.instructor.generate import BEGIN_HIDDEN, BEGIN_SOLUTION, failing_cells

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
PARAMS = [pytest.param(path, id=path.name) for path in SOLUTIONS]
TITLE = re.compile(r"# Test (\d+)\.(\d+) — \S.*")
CHECK_CALL = re.compile(r"^(check_\w+)\((\w+)[,)]", re.MULTILINE)


def tags_of(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def graded_cells(notebook) -> list[tuple[int, nbformat.NotebookNode]]:
    """(index, cell) of every graded test cell: the cells with a points: tag."""
    return [
        (index, cell)
        for index, cell in enumerate(notebook.cells)
        if any(tag.startswith("points:") for tag in tags_of(cell))
    ]


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def test_there_are_solution_notebooks():
    assert [path.name[:2] for path in SOLUTIONS] == ["01", "02", "03", "04", "05", "06", "07"]


# --- static checks of the solution notebooks --------------------------------------------------


@pytest.mark.parametrize("path", PARAMS)
def test_test_cells_are_tagged_titled_and_numbered(path):
    notebook = read(path)
    graded = graded_cells(notebook)
    assert 2 <= len(graded) <= 4, f"{len(graded)} test cells; a chapter has 2 to 4 exercises"
    ids = []
    for number, (index, cell) in enumerate(graded, start=1):
        tags = tags_of(cell)
        exercises = [t for t in tags if t.startswith("exercise:")]
        points = [t for t in tags if t.startswith("points:")]
        assert len(exercises) == 1 and len(points) == 1, f"cell {index}: tags {tags}"
        assert float(points[0].removeprefix("points:")) > 0, f"cell {index}: {points[0]}"
        ids.append(exercises[0])
        title = TITLE.fullmatch(cell.source.split("\n", 1)[0])
        assert title, f"cell {index} starts with {cell.source.splitlines()[0]!r}, not a title"
        chapter, exercise = int(title.group(1)), int(title.group(2))
        assert (chapter, exercise) == (int(path.name[:2]), number), (
            f"cell {index} is titled Test {chapter}.{exercise}; expected {int(path.name[:2])}."
            f"{number}"
        )
        call = CHECK_CALL.search(cell.source)
        assert call and hasattr(grading, call.group(1)), f"cell {index} calls no grading check"
    assert len(set(ids)) == len(ids), f"exercise ids repeat: {ids}"
    untagged = [
        index
        for index, cell in enumerate(notebook.cells)
        if any(t.startswith("exercise:") for t in tags_of(cell))
        and not any(t.startswith("points:") for t in tags_of(cell))
    ]
    assert not untagged, f"cells {untagged} have an exercise: tag but no points: tag"


@pytest.mark.parametrize("path", PARAMS)
def test_solution_regions_are_function_bodies_and_hidden_tests_are_in_test_cells(path):
    notebook = read(path)
    graded = {index for index, _ in graded_cells(notebook)}
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        for line in cell.source.splitlines():
            if line.strip() == BEGIN_SOLUTION:
                assert line.startswith(" "), (
                    f"cell {index}: a solution region at the top level would raise in its own "
                    "cell; put it inside a function body"
                )
            if line.strip() == BEGIN_HIDDEN:
                assert index in graded, f"cell {index}: hidden tests outside a test cell"


def top_level_names(source: str) -> set[str]:
    """Names a cell uses when it runs: its statements, not the bodies of what it defines."""
    names = set()

    def visit(node):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            return
        if isinstance(node, ast.Name):
            names.add(node.id)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source))
    return names


@pytest.mark.parametrize("path", PARAMS)
def test_no_other_cell_uses_an_exercise(path):
    """Only test cells may call an exercise's function; otherwise a blank one fails elsewhere."""
    notebook = read(path)
    graded = {index for index, _ in graded_cells(notebook)}
    exercise_functions = set()
    for cell in notebook.cells:
        if cell.cell_type == "code" and BEGIN_SOLUTION in cell.source:
            tree = ast.parse(cell.source)
            exercise_functions |= {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert exercise_functions, "no function holds a solution region"
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code" and index not in graded:
            used = top_level_names(cell.source) & exercise_functions
            assert not used, f"cell {index} uses the exercise functions {sorted(used)}"


# --- solutions: nbval passes and the plugin gives full marks ---------------------------------


@pytest.fixture(scope="module")
def solution_grades(tmp_path_factory) -> tuple[subprocess.CompletedProcess, list[dict]]:
    """One nbval run over all solution notebooks, with the grading plugin writing a CSV."""
    csv_path = tmp_path_factory.mktemp("grades") / "grades.csv"
    # A clean pytest: plugins autoloaded (nbval, the grading plugin), no traces of an outer
    # xdist worker or test.
    env = {
        k: v
        for k, v in os.environ.items()
        if k != "PYTEST_DISABLE_PLUGIN_AUTOLOAD"
        and not k.startswith(("PYTEST_XDIST", "PYTEST_CURRENT_TEST"))
    }
    env["COURSE_DEVICE"] = "cpu"
    installed = any(ep.name == "course_grading" for ep in entry_points(group="pytest11"))
    command = [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env"]
    command += ["-p", "no:cacheprovider", "--grade-csv", str(csv_path), "-q"]
    command += [] if installed else ["-p", "course_lib.instructor.plugin"]
    command += [str(path.relative_to(ROOT)) for path in SOLUTIONS]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    rows = []
    if csv_path.exists():
        with csv_path.open(encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    return result, rows


@pytest.mark.slow
@pytest.mark.parametrize("path", PARAMS)
def test_solution_passes_nbval_with_full_marks(path, solution_grades):
    result, rows = solution_grades
    log = (result.stdout + result.stderr)[-4000:]
    mine = [row for row in rows if row["notebook"] == path.name]
    expected = {
        tag.removeprefix("exercise:")
        for _, cell in graded_cells(read(path))
        for tag in tags_of(cell)
        if tag.startswith("exercise:")
    }
    assert {row["exercise"] for row in mine} == expected, f"graded exercises differ:\n{log}"
    short = [row for row in mine if float(row["points"]) != float(row["possible"])]
    assert not short, f"points lost: {short}\n{log}"
    assert result.returncode == 0, f"nbval failed on some solution cell:\n{log}"


# --- exercises: a blank notebook fails exactly at its test cells -----------------------------


@pytest.mark.slow
@pytest.mark.parametrize("path", PARAMS)
def test_blank_exercise_fails_only_at_its_test_cells(path):
    exercise = ROOT / "exercises" / path.name
    assert exercise.exists(), (
        f"{exercise} is missing; run `python -m course_lib.instructor.generate`"
    )
    expected = [(index, "NotImplementedError") for index, _ in graded_cells(read(exercise))]
    assert expected, f"{exercise.name} has no test cells"
    got = [(error.index, error.ename) for error in failing_cells(exercise, timeout=60)]
    assert got == expected, (
        f"cells that raised (index, exception): {got}; expected exactly the test cells, "
        f"each with NotImplementedError: {expected}"
    )
