"""Class-scale grading: seconds per notebook, the instructor's command against a learner's run.

::

    python -m benchmarks.grading                 # 60 submissions of chapter 02, 2 workers
    python -m benchmarks.grading --learners 120 --notebook 05_bidirectional.ipynb -n 4

It builds a class from the committed notebooks (every third learner blank, the others the
solution's answers in the exercise notebook), then grades the same folder twice:

* ``learner run``: ``python -m course_lib.instructor.grade FOLDER -n N``, nbval on each notebook
  as it is, the in-kernel checks (what grading cost before instructor grading existed);
* ``instructor``: what ``python -m course_lib.instructor.grade --instructor FOLDER -n N`` runs
  (``classroom.grade_class``, called here in-process): restored from the source, sandboxed, a
  user per kernel, verdicts in the grader, the before-and-after check.

and prints the wall-clock seconds per notebook of each and their ratio. Both pay their start-up
once per batch. The numbers depend on the machine's load.
"""

from __future__ import annotations

import argparse
import copy
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from course_lib.instructor import classroom, sandbox

ROOT = Path(__file__).resolve().parents[1]


def build_class(folder: Path, notebook: str, learners: int) -> None:
    solution = nbformat.read(ROOT / "solutions" / notebook, as_version=4)
    exercise = nbformat.read(ROOT / "exercises" / notebook, as_version=4)
    answers = {c.id: c.source for c in solution.cells if "### BEGIN SOLUTION" in c.source}
    for index in range(learners):
        mine = copy.deepcopy(exercise)
        if index % 3:
            for cell in mine.cells:
                cell.source = answers.get(cell.id, cell.source)
        path = folder / f"learner{index:03d}" / notebook
        path.parent.mkdir(parents=True)
        nbformat.write(mine, path)


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)} failed:\n{(result.stdout + result.stderr)[-3000:]}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.grading", description=__doc__)
    parser.add_argument("--learners", type=int, default=60)
    parser.add_argument("--notebook", default="02_lstm.ipynb")
    parser.add_argument("-n", dest="workers", type=int, default=2)
    parser.add_argument(
        "--skip-repository",
        action="store_true",
        help="leave the checkout out of the before-and-after check (others edit it meanwhile)",
    )
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="grading-benchmark-") as tmp:
        folder = Path(tmp) / "submissions"
        build_class(folder, options.notebook, options.learners)
        grade = [sys.executable, "-m", "course_lib.instructor.grade"]
        plain = timed([*grade, str(folder), "-n", str(options.workers), "-q"])
        print(f"learner run: {plain:.1f} s", flush=True)
        started = time.perf_counter()
        guards = None
        if options.skip_repository:
            guards = [g for g in sandbox.default_guards() if g[0] != ROOT]
        try:
            result = classroom.grade_class(
                folder, ROOT / "solutions", options.workers, guards=guards
            )
            outcome = f"points seen: {sorted({s.points for s in result.submissions})}; "
            outcome += result.isolation
        except classroom.IntegrityError as error:  # someone changed the checkout meanwhile
            outcome = f"the before-and-after check failed (timing still valid): {error}"[:400]
        instructor = time.perf_counter() - started
    per = options.learners
    print(f"{options.learners} submissions of {options.notebook}, {options.workers} workers")
    print(f"learner run (nbval, in-kernel checks)  {plain / per:.2f} s per notebook")
    print(f"instructor (sandboxed, judged outside)  {instructor / per:.2f} s per notebook")
    print(f"ratio                                  {instructor / plain:.2f}")
    print(outcome)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
