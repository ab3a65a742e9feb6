"""Every committed notebook is clean: valid, runnable as committed, and free of noise.

* all notebooks (``notebooks/``, ``solutions/``, ``exercises/``): valid nbformat 4, kernel
  ``python3``, execution counts increasing where set, no stored error output, no stored widget
  state (``metadata.widgets``: large, and it changes at every run);
* lectures (``notebooks/``): committed executed, top to bottom in one fresh kernel (counts
  1, 2, 3, ...), so their plots show on the web (``make execute`` does this);
* exercises (``exercises/``): no outputs and no execution counts (they are generated blank);
* lectures and solutions seed their randomness (``seed_everything`` or ``torch.manual_seed``);
* each folder has its chapters: 00-06 in ``notebooks/``, 01-06 in ``solutions/`` and
  ``exercises/``, with one exercise per solution of the same name.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]

# Each folder and the chapters it must hold (a two-digit prefix per chapter).
EXPECTED_CHAPTERS = {
    "notebooks": ["00", "01", "02", "03", "04", "05", "06", "07"],
    "solutions": ["01", "02", "03", "04", "05", "06", "07"],
    "exercises": ["01", "02", "03", "04", "05", "06", "07"],
}
NAME_PATTERN = re.compile(r"\d\d_[a-z0-9]+(_[a-z0-9]+)*\.ipynb")
SEED_CALL = re.compile(r"\b(seed_everything|torch\.manual_seed)\(")


def notebooks_in(folder: str) -> list[Path]:
    return sorted((ROOT / folder).glob("*.ipynb"))  # not recursive: skips .ipynb_checkpoints/


def collect(*folders: str) -> list:
    """pytest parameters, one per notebook, named by their path in the repository."""
    return [
        pytest.param(path, id=path.relative_to(ROOT).as_posix())
        for folder in folders
        for path in notebooks_in(folder)
    ]


@functools.cache
def load(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=nbformat.NO_CONVERT)


def code_cells(path: Path) -> list[nbformat.NotebookNode]:
    return [cell for cell in load(path).cells if cell.cell_type == "code"]


ALL = collect(*EXPECTED_CHAPTERS)
LECTURES = collect("notebooks")
SOLUTIONS = collect("solutions")
EXERCISES = collect("exercises")


@pytest.mark.parametrize("folder", sorted(EXPECTED_CHAPTERS))
def test_folder_has_its_chapters(folder):
    paths = notebooks_in(folder)
    chapters = ", ".join(EXPECTED_CHAPTERS[folder])
    assert paths, f"{folder}/ holds no notebooks yet; it needs chapters {chapters}"
    badly_named = [path.name for path in paths if not NAME_PATTERN.fullmatch(path.name)]
    assert not badly_named, f"{folder}/: name notebooks NN_topic.ipynb, not {badly_named}"
    prefixes = [path.name[:2] for path in paths]
    missing = [chapter for chapter in EXPECTED_CHAPTERS[folder] if chapter not in prefixes]
    assert not missing, f"{folder}/ lacks chapters {missing}; it has {[p.name for p in paths]}"
    repeated = sorted({prefix for prefix in prefixes if prefixes.count(prefix) > 1})
    assert not repeated, f"{folder}/ has more than one notebook for chapters {repeated}"


def test_one_exercise_per_solution():
    solutions = {path.name for path in notebooks_in("solutions")}
    exercises = {path.name for path in notebooks_in("exercises")}
    assert solutions == exercises, (
        f"solutions without an exercise: {sorted(solutions - exercises)}; "
        f"exercises without a solution: {sorted(exercises - solutions)} (run `make exercises`)"
    )


@pytest.mark.parametrize("path", ALL)
def test_valid_nbformat(path):
    notebook = load(path)
    assert notebook.nbformat == 4, f"nbformat {notebook.nbformat}, expected 4"
    nbformat.validate(notebook)  # raises ValidationError, naming the bad field


@pytest.mark.parametrize("path", ALL)
def test_kernel_is_python3(path):
    kernelspec = load(path).metadata.get("kernelspec", {})
    assert kernelspec.get("name") == "python3", (
        f"kernelspec name is {kernelspec.get('name')!r}; use 'python3' so the notebook runs in "
        "whichever environment opens it"
    )


@pytest.mark.parametrize("path", ALL)
def test_execution_counts_increase(path):
    counts = [cell.execution_count for cell in code_cells(path) if cell.execution_count is not None]
    out_of_order = [(a, b) for a, b in zip(counts, counts[1:]) if b <= a]
    assert not out_of_order, (
        f"execution counts go back at {out_of_order}: cells were run out of order; "
        "re-run the notebook top to bottom"
    )


@pytest.mark.parametrize("path", ALL)
def test_no_stored_errors(path):
    errors = [
        f"cell {index}: {output.get('ename')}: {output.get('evalue')}"
        for index, cell in enumerate(load(path).cells)
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    ]
    assert not errors, f"stored error outputs: {errors}"


@pytest.mark.parametrize("path", ALL)
def test_no_stored_widget_state(path):
    assert "widgets" not in load(path).metadata, (
        "metadata.widgets holds saved widget state; drop it (make execute stores none)"
    )


@pytest.mark.parametrize("path", LECTURES)
def test_lecture_is_committed_executed(path):
    cells = [cell for cell in code_cells(path) if cell.source.strip()]
    assert cells, "a lecture without code cells"
    counts = [cell.execution_count for cell in cells]
    assert counts == list(range(1, len(cells) + 1)), (
        f"execution counts {counts}: commit lectures executed top to bottom in a fresh kernel "
        "(make execute NB=...)"
    )


@pytest.mark.parametrize("path", EXERCISES)
def test_exercise_is_blank(path):
    run = [
        index
        for index, cell in enumerate(load(path).cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not run, f"cells {run} have outputs or execution counts; regenerate with make exercises"


@pytest.mark.parametrize("path", LECTURES + SOLUTIONS)
def test_randomness_is_seeded(path):
    source = "\n".join(cell.source for cell in code_cells(path))
    assert SEED_CALL.search(source), (
        "no call to seed_everything(...) or torch.manual_seed(...): results would change per run"
    )
