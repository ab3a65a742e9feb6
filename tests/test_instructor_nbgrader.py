"""nbgrader works on the course's notebooks as shipped, and agrees with the course's grader.

A plain nbgrader course folder gets the unchanged ``solutions/03_gru.ipynb`` as its source;
``nbgrader generate_assignment`` must release exactly the cell sources of ``exercises/``, and
``nbgrader autograde`` of three learners who worked in the course's own ``exercises/`` notebook
(not nbgrader's release) must give the points that ``course_lib.instructor.classroom`` gives:
an honest learner, a blank one, and one who did exercise 3.1 only and replaced the failing test
cell of 3.2 by ``pass`` with its points raised to 100.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course_lib.instructor import classroom

ROOT = Path(__file__).resolve().parents[1]
NAME = "03_gru.ipynb"
ASSIGNMENT = "ps"

pytest.importorskip("nbgrader", reason="nbgrader is in the test extra: pip install -e '.[test]'")


def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.pop("COURSE_GRADING_EVIDENCE", None)
    command = [sys.executable, "-m", "nbgrader", *args]
    result = subprocess.run(command, cwd=course, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def learner_notebooks() -> dict[str, nbformat.NotebookNode]:
    solution = nbformat.read(ROOT / "solutions" / NAME, as_version=4)
    exercise = nbformat.read(ROOT / "exercises" / NAME, as_version=4)

    def filled(*cell_ids):
        notebook = copy.deepcopy(exercise)
        for cell in notebook.cells:
            if cell.id in cell_ids:
                cell.source = next(c.source for c in solution.cells if c.id == cell.id)
        return notebook

    tampered = filled("ex3-1-solution")
    test = next(c for c in tampered.cells if c.id == "ex3-2-test")
    test.source = "pass"
    test.metadata["tags"] = ["exercise:count_parameters", "points:100"]
    test.metadata["nbgrader"]["points"] = 100
    return {
        "honest": filled("ex3-1-solution", "ex3-2-solution"),
        "blank": exercise,
        "tampered": tampered,
    }


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    course = tmp_path_factory.mktemp("nbgrader-course")
    (course / "nbgrader_config.py").write_text(
        'c = get_config()\nc.CourseDirectory.root = "."\nc.CourseDirectory.course_id = "rnn"\n'
    )
    (course / "source" / ASSIGNMENT).mkdir(parents=True)
    shutil.copy(ROOT / "solutions" / NAME, course / "source" / ASSIGNMENT / NAME)
    nbgrader(course, "generate_assignment", ASSIGNMENT, "--force")
    return course


@pytest.mark.slow
def test_generate_assignment_releases_the_exercises(course):
    release = nbformat.read(course / "release" / ASSIGNMENT / NAME, as_version=4)
    exercise = nbformat.read(ROOT / "exercises" / NAME, as_version=4)
    assert [c.source for c in release.cells] == [c.source for c in exercise.cells]
    assert [c.cell_type for c in release.cells] == [c.cell_type for c in exercise.cells]


@pytest.mark.slow
def test_autograde_gives_the_course_graders_points(course, tmp_path):
    from nbgrader.api import Gradebook

    submissions = tmp_path / "submissions"
    for student, notebook in learner_notebooks().items():
        for folder in (course / "submitted" / student / ASSIGNMENT, submissions / student):
            folder.mkdir(parents=True)
            nbformat.write(notebook, folder / NAME)
    nbgrader(course, "autograde", ASSIGNMENT, "--create", "--force")
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        theirs = {
            student: gradebook.find_submission_notebook(NAME[:-6], ASSIGNMENT, student).score
            for student in ("honest", "blank", "tampered")
        }
    guards = [(ROOT / "course_lib" / "checks", True), (ROOT / "solutions", True)]
    result = classroom.grade_class(submissions, ROOT / "solutions", guards=guards)
    ours = {s.learner: s.points for s in result.submissions}
    assert theirs == {"honest": 5, "blank": 0, "tampered": 3}
    assert ours == theirs
