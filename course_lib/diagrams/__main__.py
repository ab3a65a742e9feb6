"""`python -m course_lib.diagrams [FOLDER]`: write every figure as FOLDER/NAME.svg.

FOLDER defaults to notebooks/figures, next to the lectures that show them (see
course_lib/diagrams/__init__.py for why there). `--check` writes nothing and fails if a file in
FOLDER differs from what the code draws.
"""

import sys
from pathlib import Path

from course_lib.diagrams import DEFAULT_FOLDER, FIGURES, stale, write_all

arguments = [a for a in sys.argv[1:] if a != "--check"]
folder = Path(arguments[0]) if arguments else DEFAULT_FOLDER
if "--check" in sys.argv[1:]:
    differing = stale(folder)
    if differing:
        sys.exit(f"out of date (run make figures): {', '.join(differing)}")
    print(f"{len(FIGURES)} figures in {folder} are up to date")
else:
    for path in write_all(folder):
        print(path)
