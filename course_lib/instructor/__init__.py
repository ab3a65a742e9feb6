"""The instructor's machinery: what builds, grades and ships the exercise notebooks.

Learners never need to read this package; the checks their test cells call live in
:mod:`course_lib.checks`.

==============  ================================================================================
module          what it does
==============  ================================================================================
``generate``    writes ``exercises/`` from ``solutions/``, with nbgrader's cell metadata
``nbgrader``    that metadata, derived from the course's markers and tags
``plugin``      the pytest plugin (entry point ``course_grading``): points per exercise
``grade``       the grading command (``python -m course_lib.instructor.grade``)
``classroom``   ``grade --instructor``: a class graded against the source, verdicts outside
``source``      the source notebooks, and a submission rebuilt against them
``sandbox``     one sandbox (and user) per submission, limits, the before-and-after check
==============  ================================================================================

pytest loads ``plugin`` for every run, so nothing here imports torch at import time.
"""
