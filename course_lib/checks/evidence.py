"""Evidence for an instructor's grading run: what a check records instead of judging.

When the instructor's grader (``python -m course_lib.instructor.grade --instructor``) runs a
submission, it starts the learner's kernel with two environment variables:

* ``COURSE_GRADING_EVIDENCE``: a folder inside the submission's sandbox;
* ``COURSE_GRADING_SEED``: this notebook's seed for this grading run, drawn by the grader.

Every ``check_*`` call then runs the learner's function on inputs built from
``call_seed(COURSE_GRADING_SEED, check, seed)`` (the ``seed`` written in the test cell is only
one part of it, so no table of answers prepared for the visible inputs helps) and writes what
came out to one JSON file in that folder. Nothing is compared in the kernel: the grader reads the
files after each cell and judges them in its own process with the same :class:`Check`
declarations (:func:`course_lib.checks.core.judge`). A learner who switches this off, replaces
the check or writes files by hand only loses the evidence, and with it the points.

A blank exercise still fails its test cell with ``NotImplementedError``, as in a learner's run.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import Callable

EVIDENCE_VARIABLE = "COURSE_GRADING_EVIDENCE"
SEED_VARIABLE = "COURSE_GRADING_SEED"

_counter = itertools.count()


def active() -> bool:
    """True inside a kernel that an instructor's grading run started."""
    return bool(os.environ.get(EVIDENCE_VARIABLE))


def call_seed(notebook_seed: int, check_name: str, seed: int) -> int:
    """The seed of one check call: the run's seed for this notebook, the check and its ``seed``."""
    text = f"{int(notebook_seed)}:{check_name}:{int(seed)}".encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:4], "big") % (2**31)


def record(check, fn: Callable, seed: int) -> None:
    """Run ``fn`` on this run's inputs for ``check`` and write the evidence; judge nothing."""
    from course_lib.checks.core import collect

    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    evidence = collect(check, fn, call_seed(int(os.environ[SEED_VARIABLE]), check.name, seed))
    evidence.pop("exceptions")
    evidence["seed"] = seed
    folder = os.environ[EVIDENCE_VARIABLE]
    name = f"{next(_counter):06d}-{os.getpid()}"
    temporary = os.path.join(folder, f".{name}.tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(evidence, handle)
    os.replace(temporary, os.path.join(folder, f"{name}.json"))
    if any(case.get("blank") for case in evidence["cases"]):
        raise NotImplementedError(f"{check.function} is not written yet")
    print(f"`{check.function}`: evidence recorded for the grader")
