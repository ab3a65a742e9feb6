"""nbgrader's cell metadata, derived from the course's own markers and tags.

nbgrader (``nbgrader generate_assignment``, ``nbgrader autograde``) reads one dictionary per cell,
``metadata.nbgrader`` (schema version 3). The course writes it from what its notebooks already
say, so that the solutions work in an nbgrader course folder as they are:

=================================  =========================================================
course cell                        ``metadata.nbgrader``
=================================  =========================================================
code with ``### BEGIN SOLUTION``   ``solution: true``: an answer cell, the learner's to edit
``points:N`` tag                   ``grade: true, locked: true, points: N``: an autograded test
any other cell                     ``locked: true``: the course's text and setup, read-only
=================================  =========================================================

``grade_id`` is the cell's id, the key by which both nbgrader and the course's own instructor
grader (``course_lib.instructor.source``) put a test cell back from the source. The exercise
generator writes this metadata into the solutions (``generate.annotate``) and keeps it in the
exercises, where it also marks the locked cells ``editable: false`` and ``deletable: false``, as
nbgrader's release does; so a learner who works in the course's ``exercises/`` notebook instead of
nbgrader's release is graded by ``nbgrader autograde`` just the same.
"""

from __future__ import annotations

import re

SCHEMA_VERSION = 3
GRADE_ID = re.compile(r"^[a-zA-Z0-9_\-]+$")  # what nbgrader accepts as a grade_id


def cell_metadata(cell, has_solution: bool) -> dict:
    """The ``metadata.nbgrader`` of one cell."""
    cell_id = str(cell.get("id", ""))
    if not GRADE_ID.match(cell_id):
        raise ValueError(
            f"cell id {cell_id!r} cannot be an nbgrader grade_id (letters, digits, _-)"
        )
    tags = cell.get("metadata", {}).get("tags", [])
    points = [t.removeprefix("points:") for t in tags if str(t).startswith("points:")]
    meta = {
        "grade": False,
        "grade_id": cell_id,
        "locked": True,
        "schema_version": SCHEMA_VERSION,
        "solution": False,
        "task": False,
    }
    if cell.get("cell_type") == "code" and points:
        value = float(points[0])
        meta.update(grade=True, points=int(value) if value.is_integer() else value)
    elif has_solution:
        meta.update(locked=False, solution=True)
    return meta


def release_flags(meta: dict) -> dict:
    """The cell metadata nbgrader's release sets on a locked cell (none on an answer cell)."""
    return {"deletable": False, "editable": False} if meta.get("locked") else {}
