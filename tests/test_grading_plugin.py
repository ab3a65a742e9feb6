"""The grading plugin (course_lib.instructor.plugin) and its command (course_lib.instructor.grade).

Small synthetic notebooks are graded by pytest in a subprocess, as a learner would run it (the
instructor's grading against the source is in test_instructor_grading.py): one batch of three
learners in two xdist workers (a failing test, an endless loop, a kernel crash), one notebook
through ``python -m course_lib.instructor.grade``, and a lecture run where no table must appear.
The cell timeout is a few seconds to keep this quick.
"""

from __future__ import annotations

import csv
import hashlib
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course_lib.instructor import plugin as grading_plugin
from course_lib.instructor.grade import plugin_args
from course_lib.instructor.plugin import graded_cell

REPO = Path(__file__).resolve().parents[1]
CELL_TIMEOUT = 5  # seconds, for the endless loop
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def graded_test_cell(source: str, exercise: str, points: int) -> nbformat.NotebookNode:
    return new_code_cell(source, metadata={"tags": [f"exercise:{exercise}", f"points:{points}"]})


def write_notebook(path: Path, cells: list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(new_notebook(cells=cells, metadata={"kernelspec": KERNELSPEC}), path)


ADD = "# Test 1.1 — addition\nassert x + 1 == 2"
DOUBLE_WRONG = "# Test 1.2 — doubling\nassert x * 2 == 3, 'hint: doubling 1 gives 2'"
DOUBLE_RIGHT = "# Test 1.2 — doubling\nassert x * 2 == 2"


def build_submissions(root: Path) -> list[Path]:
    """Three learners' copies of one exercise notebook, worth 2 + 3 points."""
    alice = root / "submissions" / "alice" / "01_basics.ipynb"  # 2 of 5: one test fails
    write_notebook(
        alice,
        [
            new_markdown_cell("# Basics"),
            new_code_cell("x = 1"),
            graded_test_cell(ADD, "add", 2),
            graded_test_cell(DOUBLE_WRONG, "double", 3),
        ],
    )
    bob = root / "submissions" / "bob" / "01_basics.ipynb"  # 3 of 5: an endless loop first
    write_notebook(
        bob,
        [
            new_code_cell("x = 1"),
            graded_test_cell("# Test 1.1 — addition\nwhile True:\n    pass", "add", 2),
            graded_test_cell(DOUBLE_RIGHT, "double", 3),
        ],
    )
    carol = root / "submissions" / "carol" / "01_basics.ipynb"  # 2 of 5: the kernel dies
    write_notebook(
        carol,
        [
            new_code_cell("x = 1"),
            graded_test_cell(ADD, "add", 2),
            new_code_cell("import os\nos._exit(1)"),
            graded_test_cell(DOUBLE_RIGHT, "double", 3),
        ],
    )
    return [alice, bob, carol]


def run_pytest(cwd: Path, *args: str, module: str = "pytest") -> subprocess.CompletedProcess:
    # An ini file of its own keeps the repo's pytest settings out; xfail_strict is the repo's
    # setting that would change how nbval's cells after a timeout count, so it is on here.
    (cwd / "pytest.ini").write_text("[pytest]\nxfail_strict = true\n")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    command = [sys.executable, "-m", module, *args]
    if module == "pytest":
        command += ["-p", "no:cacheprovider", "--color=no", *plugin_args()]
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Grade three learners in two workers, with CSV and JUnit; keep what it printed."""
    root = tmp_path_factory.mktemp("batch")
    notebooks = build_submissions(root)
    before = {path: digest(path) for path in notebooks}
    result = run_pytest(
        root,
        "--nbval-lax",
        "--nbval-current-env",
        f"--nbval-cell-timeout={CELL_TIMEOUT}",
        "-n",
        "2",
        "--dist",
        "loadscope",
        "--grade-csv",
        "grades.csv",
        "--junitxml",
        "grades.xml",
        "submissions",
    )
    return root, notebooks, before, result


def table_block(output: str, notebook: str) -> str:
    """The lines of the score table that belong to one notebook."""
    table = output.split("course scores", 1)[1]
    lines = table.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == notebook)
    block = [lines[start]]
    for line in lines[start + 1 :]:
        if not line.startswith("  "):
            break
        block.append(line)
    return "\n".join(block)


def test_batch_prints_a_score_table_per_learner(batch):
    _, _, _, result = batch
    assert result.returncode == 1, result.stdout + result.stderr  # some cells failed
    assert "course grading" in result.stdout  # the header line
    alice = table_block(result.stdout, "submissions/alice/01_basics.ipynb")
    lines = alice.splitlines()
    assert lines[1].split() == ["Test", "1.1", "—", "addition", "add", "2", "/", "2"]
    assert lines[2].rstrip().endswith("0 / 3  failed")
    assert lines[3].split() == ["total", "2", "/", "5"]
    assert "3 notebooks graded" in result.stdout


def test_an_endless_loop_fails_its_cell_and_later_cells_still_count(batch):
    _, _, _, result = batch
    bob = table_block(result.stdout, "submissions/bob/01_basics.ipynb")
    assert f"0 / 2  timed out after {CELL_TIMEOUT} s" in bob
    assert bob.splitlines()[2].rstrip().endswith("3 / 3")
    assert bob.splitlines()[3].split() == ["total", "3", "/", "5"]
    assert f"Timeout of {CELL_TIMEOUT} seconds exceeded" in result.stdout


def test_a_kernel_crash_fails_that_notebook_only(batch):
    root, _, _, result = batch
    carol = table_block(result.stdout, "submissions/carol/01_basics.ipynb")
    assert carol.splitlines()[1].rstrip().endswith("2 / 2")  # graded before the crash
    assert "0 / 3  not run: the kernel died in Cell 2 (exit code 1)" in carol
    assert "! Cell 2: kernel died (exit code 1)" in carol
    assert "The kernel died while running this cell (exit code 1)" in result.stdout
    assert "FAILED submissions/carol/01_basics.ipynb::Cell 2" in result.stdout
    # Found at once, not after the cell timeout.
    crash = next(
        case
        for case in ET.parse(root / "grades.xml").getroot().iter("testcase")
        if case.get("classname") == "submissions.carol.01_basics.ipynb"
        and case.get("name") == "Cell 2"
    )
    assert float(crash.get("time")) < CELL_TIMEOUT


def test_batch_csv_has_a_row_per_learner_and_exercise(batch):
    root, _, _, _ = batch
    with (root / "grades.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    got = {(r["learner"], r["exercise"]): (r["points"], r["possible"]) for r in rows}
    assert got == {
        ("alice", "add"): ("2", "2"),
        ("alice", "double"): ("0", "3"),
        ("bob", "add"): ("0", "2"),
        ("bob", "double"): ("3", "3"),
        ("carol", "add"): ("2", "2"),
        ("carol", "double"): ("0", "3"),
    }
    assert {r["notebook"] for r in rows} == {"01_basics.ipynb"}
    assert rows[0]["title"] == "Test 1.1 — addition"
    assert list(rows[0]) == [
        "learner",
        "notebook",
        "exercise",
        "title",
        "points",
        "possible",
        "status",
    ]


def test_junit_carries_points_per_cell(batch):
    root, _, _, _ = batch
    cases = ET.parse(root / "grades.xml").getroot().iter("testcase")
    points = {}
    for case in cases:
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        if "exercise" in props:
            points[(case.get("classname"), case.get("name"))] = (props["points"], props["possible"])
    assert points[("submissions.alice.01_basics.ipynb", "Cell 1")] == ("2", "2")
    assert points[("submissions.alice.01_basics.ipynb", "Cell 2")] == ("0", "3")
    assert points[("submissions.carol.01_basics.ipynb", "Cell 3")] == ("0", "3")
    assert len(points) == 6


def test_grading_never_writes_to_the_notebooks(batch):
    _, notebooks, before, _ = batch
    assert {path: digest(path) for path in notebooks} == before


def test_grade_command_on_one_notebook(tmp_path):
    notebook = tmp_path / "exercises" / "01_basics.ipynb"
    write_notebook(notebook, [new_code_cell("x = 1"), graded_test_cell(ADD, "add", 2)])
    before = digest(notebook)
    result = run_pytest(
        tmp_path,
        "exercises/01_basics.ipynb",
        "--csv",
        "out.csv",
        module="course_lib.instructor.grade",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "cell timeout 60 s" in result.stdout
    block = table_block(result.stdout, "exercises/01_basics.ipynb")
    assert block.splitlines()[-1].split() == ["total", "2", "/", "2"]
    assert "exercises,01_basics.ipynb,add,Test 1.1 — addition,2,2,passed" in (
        (tmp_path / "out.csv").read_text(encoding="utf-8")
    )
    assert digest(notebook) == before


def test_no_table_without_graded_notebooks(tmp_path):
    write_notebook(tmp_path / "lecture.ipynb", [new_code_cell("x = 1")])
    result = run_pytest(tmp_path, "--nbval-lax", "--nbval-current-env", "lecture.ipynb")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "cell timeout 60 s" in result.stdout  # nbval's 2000 s default is lowered
    assert "course scores" not in result.stdout


def test_plugin_stays_out_of_runs_without_nbval():
    registered = []
    config = SimpleNamespace(
        option=SimpleNamespace(nbval=False, nbval_lax=False, nbval_cell_timeout=2000.0),
        pluginmanager=SimpleNamespace(register=lambda plugin, name: registered.append(name)),
    )
    grading_plugin.pytest_configure(config)
    assert registered == [] and config.option.nbval_cell_timeout == 2000.0
    config.option.nbval_lax = True
    grading_plugin.pytest_configure(config)
    assert registered == ["course_grader"] and config.option.nbval_cell_timeout == 60


def test_graded_cell_reads_tags_and_title():
    cell = graded_test_cell("# Test 2.1 — the LSTM cell\ncheck()", "lstm_cell", 3)
    info = graded_cell(cell)
    assert (info.exercise, info.title, info.possible) == (
        "lstm_cell",
        "Test 2.1 — the LSTM cell",
        3,
    )
    untitled = new_code_cell("check()", metadata={"tags": ["points:1.5"]})
    info = graded_cell(untitled, fallback_id="cell-4")
    assert (info.exercise, info.title, info.possible) == ("cell-4", "cell-4", 1.5)
    assert graded_cell(new_code_cell("x = 1", metadata={"tags": ["exercise:x"]})) is None
    with pytest.warns(UserWarning, match="points must be a number"):
        assert graded_cell(new_code_cell("", metadata={"tags": ["points:many"]})) is None
