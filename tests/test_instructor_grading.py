"""Instructor grading against the source (course_lib.instructor.classroom), tried as a class would.

One batch of chapter 02 (four exercises, 3 + 2 + 1 + 2 points), built from the committed solutions
and exercises: an honest learner, a blank one, and one learner per attack. Every attacker did the
same honest work, a correct ``lstm_step`` (3 points), and nothing else that a correct answer
needs, so no attacker may earn more than 3. Files that cannot be run get a row with a reason.
The grader's own before-and-after check runs on the paths this test owns; the test hashes the
submissions itself too.
"""

from __future__ import annotations

import copy
import hashlib
import json
import site
import sysconfig
from pathlib import Path

import nbformat
import pytest

from course_lib.checks.evidence import EVIDENCE_VARIABLE, SEED_VARIABLE
from course_lib.instructor import classroom, sandbox
from course_lib.instructor.source import BadSubmission, read_submission

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "02_lstm.ipynb"
SOLUTION = nbformat.read(ROOT / "solutions" / NOTEBOOK, as_version=4)
EXERCISE = nbformat.read(ROOT / "exercises" / NOTEBOOK, as_version=4)
HONEST_WORK = 3  # what a correct lstm_step alone is worth


def _tagged(prefix: str) -> list[str]:
    """What follows ``prefix`` in the source's cell tags, e.g. "points:3" -> "3"."""
    tags = [tag for cell in SOLUTION.cells for tag in cell.metadata.get("tags", [])]
    return [tag.removeprefix(prefix) for tag in tags if tag.startswith(prefix)]


# The chapter's total and exercises, read from the source's test-cell tags, not written here.
TOTAL = sum(int(points) for points in _tagged("points:"))
EXERCISES = set(_tagged("exercise:"))
# Every answer cell of the source: the honest learner writes them all.
SOLUTION_CELLS = [c.id for c in SOLUTION.cells if c.metadata.get("nbgrader", {}).get("solution")]


def cell(notebook, cell_id):
    return next(c for c in notebook.cells if c.id == cell_id)


def learner(answers=(), edit=None) -> nbformat.NotebookNode:
    """The exercise notebook with the solution's answer cells ``answers`` filled in."""
    notebook = copy.deepcopy(EXERCISE)
    for cell_id in answers:
        cell(notebook, cell_id).source = cell(SOLUTION, cell_id).source
    if edit:
        edit(notebook)
    return notebook


def add_cell(notebook, after: str, source: str, tags=()) -> None:
    index = [c.id for c in notebook.cells].index(after) + 1
    new = nbformat.v4.new_code_cell(source, metadata={"tags": list(tags)} if tags else {})
    notebook.cells.insert(index, new)


def tamper(notebook):
    cell(notebook, "ex2-2-test").source = "pass"  # the failing test replaced
    cell(notebook, "ex2-1-test").metadata["tags"] = ["exercise:lstm_step", "points:100"]
    add_cell(notebook, "ex2-3-test", "# Test 2.5 — bonus\npass", ["exercise:bonus", "points:10"])


def delete_failing(notebook):
    notebook.cells = [c for c in notebook.cells if c.id not in ("ex2-2-test", "ex2-3-test")]


PATCHES = """\
import numpy, torch, course_lib.checks as checks, course_lib.checks.core as core
check_forget_bias = check_half_life = lambda *args, **kwargs: None
checks.check_forget_bias = checks.check_half_life = check_forget_bias
core.judge = lambda *args, **kwargs: core.Verdict(True, "✓")
core.run = lambda *args, **kwargs: print("✓")
numpy.allclose = torch.allclose = lambda *args, **kwargs: True
import os
os.environ.pop("COURSE_GRADING_EVIDENCE", None)
"""

STACK_WALK = '''\
def forget_half_life(forget_bias):
    """Find the grader's reference on the call stack and return what it returns."""
    import sys
    frame = sys._getframe(1)
    while frame is not None:
        for name in ("expected", "reference", "want"):
            if name in frame.f_locals:
                value = frame.f_locals[name]
                return value(forget_bias) if callable(value) else value
        frame = frame.f_back
    return 0.0
'''

# Passes the visible check of a learner's own run (seed 0), knows nothing else.
LOOKUP = """\
def forget_half_life(forget_bias):
    import math
    seen = (3.0, 1.0, 0.0, -1.5, 1.541)  # the inputs the visible check printed
    known = {b: math.log(0.5) / math.log(1 / (1 + math.exp(-b))) for b in seen}
    return known.get(forget_bias, 0.0)
"""

WRITES = """\
import os, pathlib, sysconfig, course_lib
attempts = {
    "course_lib": pathlib.Path(course_lib.__file__).parent / "checks" / "core.py",
    "site-packages": pathlib.Path(sysconfig.get_paths()["purelib"]) / "zz_course_attack.pth",
    "submissions": pathlib.Path(os.environ["SUBMISSIONS"]) / "honest" / "02_lstm.ipynb",
    "other sandbox": pathlib.Path.cwd().parent / "s0" / "02_lstm.ipynb",
}
for what, path in attempts.items():
    try:
        with open(path, "a") as handle:
            handle.write("\\n")
        print("wrote", what)
    except OSError as error:
        print("refused", what, type(error).__name__)
"""


def build_batch(root: Path) -> dict[str, Path]:
    submissions = {
        "honest": learner(SOLUTION_CELLS),
        "blank": learner(),
        "tamper": learner(["ex2-1-solution"], tamper),
        "deleter": learner(["ex2-1-solution"], delete_failing),
        "patcher": learner(["ex2-1-solution"], lambda nb: add_cell(nb, "ex2-2-solution", PATCHES)),
        "stackwalker": learner(
            ["ex2-1-solution"], lambda nb: setattr(cell(nb, "ex2-3-solution"), "source", STACK_WALK)
        ),
        "lookup": learner(
            ["ex2-1-solution"], lambda nb: setattr(cell(nb, "ex2-3-solution"), "source", LOOKUP)
        ),
        "writer": learner(["ex2-1-solution"], lambda nb: add_cell(nb, "ex2-1-solution", WRITES)),
    }
    paths = {}
    for name, notebook in submissions.items():
        path = root / name / NOTEBOOK
        path.parent.mkdir(parents=True)
        path.write_text(nbformat.writes(notebook), encoding="utf-8")
        paths[name] = path
    broken = {
        "empty": b"",
        "garbage": b"{ this is not json",
        "nbformat3": json.dumps({"nbformat": 3, "nbformat_minor": 0, "cells": []}).encode(),
        "wrongchapter": (ROOT / "solutions" / "03_gru.ipynb").read_bytes(),
    }
    for name, data in broken.items():
        path = root / name / NOTEBOOK
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
        paths[name] = path
    return paths


def digests(paths) -> dict:
    return {str(p): hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("class") / "submissions"
    root.mkdir()
    paths = build_batch(root)
    before = digests(paths.values())
    guards = [
        (ROOT / "course_lib" / "checks", True),
        (ROOT / "course_lib" / "instructor", True),
        (ROOT / "solutions", True),
        (ROOT / "exercises", True),
    ]  # not all of site-packages: other installs on a shared machine would fail the batch
    import os

    os.environ["SUBMISSIONS"] = str(root)  # where the writer learner aims
    try:
        result = classroom.grade_class(
            root,
            ROOT / "solutions",
            workers=2,
            timeout=60,
            roster=["absent", "honest"],
            guards=guards,
        )
    finally:
        os.environ.pop("SUBMISSIONS")
    return result, paths, before


def by_learner(result) -> dict:
    return {s.learner: s for s in result.submissions}


@pytest.mark.slow
def test_the_honest_learner_has_full_marks_and_the_blank_one_none(graded):
    result, _, _ = graded
    learners = by_learner(result)
    assert len(SOLUTION_CELLS) == 4 and TOTAL > HONEST_WORK, "the batch has lost exercises"
    assert (learners["honest"].points, learners["honest"].possible) == (TOTAL, TOTAL), (
        classroom.table(result)
    )
    assert learners["honest"].notes == []
    assert (learners["blank"].points, learners["blank"].possible) == (0, TOTAL)
    assert not learners["blank"].notes  # an untouched exercise notebook changed nothing


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", ["tamper", "deleter", "patcher", "stackwalker", "lookup", "writer"]
)
def test_no_attack_earns_more_than_the_work_done(graded, name):
    result, _, _ = graded
    attacker = by_learner(result)[name]
    assert attacker.possible == TOTAL, "the possible total is the source's"
    assert attacker.points == HONEST_WORK, classroom.table(result)
    assert set(attacker.exercises) == EXERCISES, "every exercise of the source is a row"


@pytest.mark.slow
def test_edited_deleted_and_added_test_cells_are_noted(graded):
    learners = by_learner(graded[0])
    assert "test cell ex2-2-test edited (restored)" in learners["tamper"].notes
    assert "tags of cell ex2-1-test changed (restored)" in learners["tamper"].notes
    assert "an added cell carries points or exercise tags (ignored)" in learners["tamper"].notes
    assert {
        "test cell ex2-2-test deleted (restored)",
        "test cell ex2-3-test deleted (restored)",
    } <= set(learners["deleter"].notes)


@pytest.mark.slow
def test_hidden_tests_and_unpredictable_inputs_defeat_a_table_of_answers(graded):
    lookup = by_learner(graded[0])["lookup"]
    assert lookup.exercises["half_life"].points == 0
    # The same function passes the visible check of a learner's own run.
    namespace = {}
    exec(LOOKUP, namespace)
    from course_lib.checks import check_half_life

    check_half_life(namespace["forget_half_life"])


@pytest.mark.slow
def test_a_hint_reaches_the_learner(graded):
    stackwalker = by_learner(graded[0])["stackwalker"]
    hints = " ".join(stackwalker.exercises["half_life"].hints)
    assert "Not quite" in hints


@pytest.mark.slow
def test_files_that_are_no_notebook_get_a_row_and_a_reason(graded):
    learners = by_learner(graded[0])
    assert learners["empty"].status == "empty file"
    assert "not valid JSON" in learners["garbage"].status
    assert "nbformat 3" in learners["nbformat3"].status
    assert learners["wrongchapter"].status.startswith("not 02_lstm.ipynb")
    assert learners["wrongchapter"].status.endswith("(it looks like 03_gru.ipynb)")
    assert learners["absent"].status == "no submission"
    for name in ("empty", "garbage", "nbformat3", "wrongchapter", "absent"):
        assert (learners[name].points, learners[name].possible) == (0, TOTAL)
    rows = classroom.rows(graded[0])
    assert {row["learner"] for row in rows} >= set(learners)
    assert all(float(row["points"]) >= 0 for row in rows)


@pytest.mark.slow
def test_the_grader_writes_no_submission(graded):
    _, paths, before = graded
    assert digests(paths.values()) == before


@pytest.mark.slow
def test_kernels_cannot_write_outside_their_sandbox(graded):
    result, _, _ = graded
    separate, _ = sandbox.separate_users_possible()
    if separate:
        # The writer's cell printed "refused ..." for every target: nothing there changed,
        # which the grader's own before-and-after check confirmed (it raises otherwise).
        assert "each kernel ran as a user of its own" in result.isolation
        assert not (Path(sysconfig.get_paths()["purelib"]) / "zz_course_attack.pth").exists()
    else:
        assert "before-and-after check" in result.isolation or "root" in result.isolation


def test_reports_csv_and_table(graded, tmp_path):
    result, _, _ = graded
    classroom.write_csv(result, tmp_path / "grades.csv")
    header = (tmp_path / "grades.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header == ",".join(classroom.CSV_COLUMNS)
    written = classroom.write_reports(result, tmp_path / "feedback")
    honest = (tmp_path / "feedback" / "honest.md").read_text(encoding="utf-8")
    assert f"02_lstm.ipynb: {TOTAL} / {TOTAL}" in honest
    assert len(written) == len(by_learner(result))
    assert "total" in classroom.table(result)


# --- without kernels ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty file"),
        (b"[1, 2]", "no list of cells"),
        (b"\xff\xfe", "not valid JSON"),
        (json.dumps({"nbformat": 5, "cells": []}).encode(), "nbformat 5"),
        (json.dumps({"nbformat": 4, "cells": [{"cell_type": "nope"}]}).encode(), "cell_type"),
    ],
)
def test_read_submission_names_what_is_wrong(tmp_path, data, reason):
    path = tmp_path / "x.ipynb"
    path.write_bytes(data)
    with pytest.raises(BadSubmission, match=reason):
        read_submission(path)


def test_a_changed_file_fails_the_integrity_check(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    guards = [(tmp_path, True)]
    before = sandbox.fingerprint(guards)
    assert sandbox.changes(before, sandbox.fingerprint(guards)) == []
    (tmp_path / "a.py").write_text("x = 2\n")
    (tmp_path / "b.pth").write_text("import os\n")
    assert sandbox.changes(before, sandbox.fingerprint(guards)) == [
        f"added {tmp_path / 'b.pth'}",
        f"changed {tmp_path / 'a.py'}",
    ]


def test_the_default_guards_cover_course_lib_site_packages_and_the_repository():
    guarded = {str(path) for path, _ in sandbox.default_guards()}
    assert str(ROOT / "course_lib") in guarded and str(ROOT) in guarded
    assert sysconfig.get_paths()["purelib"] in guarded
    assert site.getusersitepackages() in guarded


def test_the_launcher_and_the_checks_agree_on_the_variables():
    assert (sandbox.EVIDENCE_VARIABLE, sandbox.SEED_VARIABLE) == (EVIDENCE_VARIABLE, SEED_VARIABLE)


def test_the_command_writes_rows_for_files_it_cannot_run(tmp_path, capsys):
    from course_lib.instructor.grade import main

    (tmp_path / "subs" / "carol").mkdir(parents=True)
    (tmp_path / "subs" / "carol" / NOTEBOOK).write_bytes(b"")
    (tmp_path / "roster.txt").write_text("# the class\ncarol\ndave\n")
    code = main(
        [
            "--instructor",
            str(tmp_path / "subs"),
            "--source",
            str(ROOT / "solutions"),
            "--csv",
            str(tmp_path / "grades.csv"),
            "--reports",
            str(tmp_path / "feedback"),
            "--roster",
            str(tmp_path / "roster.txt"),
            "-n",
            "1",
        ]
    )
    assert code == 0, capsys.readouterr()
    text = (tmp_path / "grades.csv").read_text(encoding="utf-8")
    assert text.count("carol,02_lstm.ipynb") == len(EXERCISES) and "empty file" in text
    assert text.count("dave,02_lstm.ipynb") == len(EXERCISES) and "no submission" in text
    assert (tmp_path / "feedback" / "dave.md").exists()
    assert main(["--instructor", str(tmp_path / "subs"), "--source", str(tmp_path)]) == 2
