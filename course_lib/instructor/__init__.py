"""The instructor's machinery: what builds, grades and ships the exercise notebooks.

Learners never need to read this package; the checks their test cells call live in
:mod:`course_lib.checks`.

==========================  ================================================================
module                      what it does
==========================  ================================================================
``generate``                writes ``exercises/`` from ``solutions/`` (``python -m course_lib.instructor.generate``)
``plugin``                  the pytest plugin (entry point ``course_grading``): points per exercise
``grade``                   the grading command (``python -m course_lib.instructor.grade``)
==========================  ================================================================

pytest loads ``plugin`` for every run, so nothing here imports torch at import time.
"""
