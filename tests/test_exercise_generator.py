"""The exercise generator: solutions/ -> exercises/ (course_lib.instructor.generate).

The synthetic tests build small solution notebooks in tmp_path. The last tests check the
course itself: every committed exercise notebook is exactly what its solution generates.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from course_lib.instructor import generate as exercises
from course_lib.instructor.generate import (
    HASH_KEY,
    METADATA_KEY,
    MarkerError,
    check,
    failing_cells,
    generate,
    strip_source,
)

REPO = Path(__file__).resolve().parents[1]

FUNCTION_CELL = """\
import math


def area(radius):
    \"\"\"The area of a circle.\"\"\"
    ### BEGIN SOLUTION
    squared = radius**2
    return math.pi * squared
    ### END SOLUTION"""

TOP_LEVEL_CELL = """\
### BEGIN SOLUTION
answer = 42
### END SOLUTION
print("done")"""

TEST_CELL = """\
# Test 1.1 — the area of a circle
assert abs(area(1.0) - math.pi) < 1e-12
### BEGIN HIDDEN TESTS
assert area(0.0) == 0.0
### END HIDDEN TESTS"""


def solution_notebook() -> nbformat.NotebookNode:
    """A small solution notebook as an author leaves it: executed, with outputs and counts."""
    function = new_code_cell(
        FUNCTION_CELL,
        execution_count=1,
        metadata={"execution": {"iopub.status.busy": "2024-05-01T10:00:00.000Z"}},
    )
    top_level = new_code_cell(TOP_LEVEL_CELL, execution_count=2)
    top_level.outputs = [new_output("stream", name="stdout", text="done\n")]
    test = new_code_cell(
        TEST_CELL, execution_count=3, metadata={"tags": ["exercise:area", "points:2"]}
    )
    nb = new_notebook(
        cells=[new_markdown_cell("# Circles\nWrite `area`."), function, top_level, test],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
            "widgets": {"application/vnd.jupyter.widget-state+json": {"state": {}}},
        },
    )
    for index, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{index}"  # fixed ids, so two builds are the same notebook
    return nb


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    solutions, exercise_dir = tmp_path / "solutions", tmp_path / "exercises"
    solutions.mkdir()
    nbformat.write(solution_notebook(), solutions / "01_circle.ipynb")
    return solutions, exercise_dir


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


# --- markers -----------------------------------------------------------------------------------


def test_solution_region_becomes_a_stub_at_its_indentation():
    stripped = strip_source(FUNCTION_CELL)
    assert stripped.endswith(
        '    """The area of a circle."""\n    # YOUR CODE HERE\n    raise NotImplementedError()'
    )
    assert "math.pi * squared" not in stripped
    assert strip_source(TOP_LEVEL_CELL) == (
        '# YOUR CODE HERE\nraise NotImplementedError()\nprint("done")'
    )


def test_hidden_tests_are_removed_with_their_markers():
    stripped = strip_source(TEST_CELL)
    assert stripped == (
        "# Test 1.1 — the area of a circle\nassert abs(area(1.0) - math.pi) < 1e-12"
    )


def test_cells_without_markers_are_unchanged():
    for source in ("", "x = 1", "x = 1\n", "# ### BEGIN SOLUTION is only a comment here"):
        assert strip_source(source) == source


@pytest.mark.parametrize(
    "source",
    [
        "### BEGIN SOLUTION\nx = 1",
        "x = 1\n### END SOLUTION",
        "### BEGIN SOLUTION\n### BEGIN HIDDEN TESTS\n### END HIDDEN TESTS\n### END SOLUTION",
        "### BEGIN SOLUTION\nx = 1\n### END HIDDEN TESTS",
    ],
)
def test_broken_markers_are_errors_that_say_where(source):
    with pytest.raises(MarkerError, match="line"):
        strip_source(source, where="01_circle.ipynb, cell 3")


# --- one notebook ------------------------------------------------------------------------------


def test_generated_notebook_is_blank_with_ids_tags_and_metadata_kept(folders):
    solutions, exercise_dir = folders
    report = generate(solutions, exercise_dir)
    assert report.written == [exercise_dir / "01_circle.ipynb"]
    solution, exercise = read(solutions / "01_circle.ipynb"), read(exercise_dir / "01_circle.ipynb")

    assert [c.id for c in exercise.cells] == [c.id for c in solution.cells]
    assert [c.cell_type for c in exercise.cells] == [c.cell_type for c in solution.cells]
    for cell in exercise.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
            assert "execution" not in cell.metadata
            assert "BEGIN" not in cell.source and "END" not in cell.source
    assert exercise.cells[0].source == solution.cells[0].source  # markdown untouched
    assert exercise.cells[3].metadata.tags == ["exercise:area", "points:2"]
    assert exercise.metadata.kernelspec.name == "python3"
    assert exercise.metadata.language_info == solution.metadata.language_info
    assert "widgets" not in exercise.metadata
    assert exercise.metadata[METADATA_KEY][HASH_KEY] == exercises.content_hash(exercise)
    # The solution is not touched.
    assert solution.cells[1].source == FUNCTION_CELL
    assert solution.cells[2].outputs


def test_regeneration_is_byte_identical(folders, tmp_path):
    solutions, exercise_dir = folders
    generate(solutions, exercise_dir)
    first = (exercise_dir / "01_circle.ipynb").read_bytes()
    assert first.endswith(b"}\n")

    again = generate(solutions, exercise_dir)
    assert again.unchanged == [exercise_dir / "01_circle.ipynb"] and not again.written
    assert (exercise_dir / "01_circle.ipynb").read_bytes() == first

    generate(solutions, tmp_path / "elsewhere")  # the output does not depend on the folder
    assert (tmp_path / "elsewhere" / "01_circle.ipynb").read_bytes() == first


# --- protecting a learner's work ---------------------------------------------------------------


def change_solution(solutions: Path) -> None:
    nb = read(solutions / "01_circle.ipynb")
    nb.cells[0].source += "\n\nA new sentence from the author."
    nbformat.write(nb, solutions / "01_circle.ipynb")


def test_a_learner_edited_notebook_is_skipped_and_reported(folders, capsys):
    solutions, exercise_dir = folders
    generate(solutions, exercise_dir)
    target = exercise_dir / "01_circle.ipynb"
    work = read(target)
    work.cells[1].source = work.cells[1].source.replace(
        "raise NotImplementedError()", "return math.pi * radius**2"
    )
    nbformat.write(work, target)
    learner_bytes = target.read_bytes()

    change_solution(solutions)
    report = generate(solutions, exercise_dir)
    assert report.skipped == [target] and not report.written
    assert target.read_bytes() == learner_bytes
    assert "skipped" in str(report) and "--force" in str(report)

    assert exercises.main([str(solutions), str(exercise_dir)]) == 0  # the CLI says so too
    assert f"skipped {target}" in capsys.readouterr().out
    assert target.read_bytes() == learner_bytes


def test_force_overwrites_an_edited_notebook(folders):
    solutions, exercise_dir = folders
    generate(solutions, exercise_dir)
    target = exercise_dir / "01_circle.ipynb"
    work = read(target)
    work.cells.append(new_code_cell("my_notes = 'mine'"))
    nbformat.write(work, target)

    change_solution(solutions)
    report = generate(solutions, exercise_dir, force=True)
    assert report.written == [target]
    assert target.read_text(encoding="utf-8") == exercises.render(solutions / "01_circle.ipynb")


def test_a_notebook_that_was_only_run_is_safe_to_overwrite(folders):
    solutions, exercise_dir = folders
    generate(solutions, exercise_dir)
    target = exercise_dir / "01_circle.ipynb"
    run = read(target)  # outputs, counts and UI metadata change; sources do not
    run.cells[2].outputs = [
        new_output("error", ename="NotImplementedError", evalue="", traceback=[])
    ]
    run.cells[2].execution_count = 7
    run.cells[2].metadata["scrolled"] = True
    nbformat.write(run, target)

    change_solution(solutions)
    assert generate(solutions, exercise_dir).written == [target]


def test_a_notebook_not_made_by_the_generator_is_protected(folders):
    solutions, exercise_dir = folders
    exercise_dir.mkdir()
    target = exercise_dir / "01_circle.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("print('my own')")]), target)
    before = target.read_bytes()
    assert generate(solutions, exercise_dir).skipped == [target]
    assert target.read_bytes() == before


# --- --check -----------------------------------------------------------------------------------


def test_check_fails_when_missing_different_or_orphaned(folders, capsys):
    solutions, exercise_dir = folders
    args = ["--check", str(solutions), str(exercise_dir)]
    assert exercises.main(args) == 1
    assert "missing" in capsys.readouterr().err

    generate(solutions, exercise_dir)
    assert exercises.main(args) == 0 and check(solutions, exercise_dir) == []

    change_solution(solutions)
    assert exercises.main(args) == 1
    assert "differs" in capsys.readouterr().err

    generate(solutions, exercise_dir)
    nbformat.write(new_notebook(), exercise_dir / "99_orphan.ipynb")
    assert any("no solution" in problem for problem in check(solutions, exercise_dir))


# --- running an exercise: it fails exactly at its test cells ----------------------------------


def test_failing_cells_finds_the_blank_exercise_failing_only_at_its_test_cell(folders):
    solutions, exercise_dir = folders
    generate(solutions, exercise_dir)
    errors = failing_cells(exercise_dir / "01_circle.ipynb", timeout=30)
    # The stubbed top-level cell (2) and the test cell (3) raise; the function cell (1) only
    # defines a function, so it runs.
    assert [(e.index, e.ename) for e in errors] == [
        (2, "NotImplementedError"),
        (3, "NotImplementedError"),
    ]
    assert errors[1].tags == ("exercise:area", "points:2")
    assert failing_cells(solutions / "01_circle.ipynb", timeout=30) == []


# --- the course itself: exercises/ is what solutions/ generates --------------------------------

SOLUTIONS = sorted((REPO / "solutions").glob("*.ipynb"))


@pytest.mark.parametrize(
    "solution",
    SOLUTIONS
    or [pytest.param(None, marks=pytest.mark.skip(reason="solutions/ has no notebooks yet"))],
    ids=lambda path: path.name if isinstance(path, Path) else "none",
)
def test_committed_exercise_is_in_sync_with_its_solution(solution, tmp_path):
    generate(solution.parent, tmp_path)
    committed = REPO / "exercises" / solution.name
    assert committed.exists(), (
        f"exercises/{solution.name} is missing: run `python -m course_lib.instructor.generate`"
    )
    assert committed.read_bytes() == (tmp_path / solution.name).read_bytes(), (
        f"exercises/{solution.name} differs from what solutions/{solution.name} generates: "
        "run `python -m course_lib.instructor.generate` (never edit exercises/ by hand)"
    )


def test_every_committed_exercise_has_a_solution():
    names = {path.name for path in SOLUTIONS}
    orphans = [p.name for p in sorted((REPO / "exercises").glob("*.ipynb")) if p.name not in names]
    assert not orphans, f"exercises without a notebook in solutions/: {orphans}"


# --- nbgrader metadata --------------------------------------------------------------------------


def test_solutions_and_exercises_carry_nbgrader_metadata():
    for name in ("02_lstm.ipynb", "05_bidirectional.ipynb"):
        for folder in ("solutions", "exercises"):
            notebook = nbformat.read(REPO / folder / name, as_version=4)
            kinds = {}
            for cell in notebook.cells:
                meta = cell.metadata["nbgrader"]
                assert meta["grade_id"] == cell.id and meta["schema_version"] == 3
                tags = cell.metadata.get("tags", [])
                points = [float(t.removeprefix("points:")) for t in tags if t.startswith("points:")]
                if points:
                    assert (meta["grade"], meta["locked"], meta["points"]) == (
                        True,
                        True,
                        points[0],
                    )
                    kinds["test"] = True
                elif meta["solution"]:
                    assert (meta["grade"], meta["locked"]) == (False, False)
                    assert folder == "exercises" or "### BEGIN SOLUTION" in cell.source
                    kinds["answer"] = True
                else:
                    assert meta["locked"] and not meta["grade"]
                if folder == "exercises" and meta["locked"]:
                    assert (
                        cell.metadata["editable"] is False and cell.metadata["deletable"] is False
                    )
            assert kinds == {"test": True, "answer": True}, f"{folder}/{name}"


def test_check_reports_a_solution_without_nbgrader_metadata(folders):
    solutions, exercise_dir = folders
    generate(solutions, exercise_dir)
    assert check(solutions, exercise_dir) == []
    path = solutions / "01_circle.ipynb"
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        cell.metadata.pop("nbgrader")
    nbformat.write(notebook, path)
    assert any("nbgrader metadata" in problem for problem in check(solutions, exercise_dir))
    assert path in generate(solutions, exercise_dir).annotated
