"""No exercise is a transcription of lecture code.

An exercise asks the learner to build something the lecture explained but did not write out
(issue 13). This test compares each solution region of ``solutions/*.ipynb`` (the code between
``### BEGIN SOLUTION`` and ``### END SOLUTION``) with the code cells of the lecture of the same
chapter, line by line after normalising: comments, whitespace and trivial lines (imports,
``return name``, ``def`` lines, loop and branch headers, a bare name, short lines) are left
out, and the variables' names are replaced by ``_``. A region is
flagged when at least three of its lines, or more than half of them (and at least two), appear
in the lecture.
"""

from __future__ import annotations

import io
import json
import keyword
import re
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("0[1-6]_*.ipynb"))
MIN_LENGTH = 10  # lines shorter than this without spaces ("h = h0", "out = []") are trivial


def _code_cells(path: Path) -> list[str]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]


def _strip_comment(line: str) -> str:
    """The line without its comment (a '#' inside a string literal stays)."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(line.strip() + "\n").readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return line.split("#", 1)[0]
    for token in tokens:
        if token.type == tokenize.COMMENT:
            return line.strip()[: token.start[1]]
    return line.strip()


KEPT = {"torch", "np", "numpy", "math", "nn", "F", "True", "False", "None"} | set(keyword.kwlist)


def normalise(line: str) -> str:
    """A line without its comment, its whitespace and its variables' names.

    Every name that is not a module, a called function, an attribute or a keyword argument
    becomes ``_``, so that ``pre = x @ W.T + b`` and ``gates = x @ W.T + b`` are one line: a
    transcription with the variables renamed is still a transcription.
    """
    code = _strip_comment(line)
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(code + "\n").readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return re.sub(r"\s+", "", code)
    out, depth = [], 0
    for k, token in enumerate(tokens):
        text = token.string
        depth += (text in "([{") - (text in ")]}") if token.type == tokenize.OP else 0
        if token.type == tokenize.NAME and text not in KEPT:
            before = tokens[k - 1].string if k else ""
            after = tokens[k + 1].string if k + 1 < len(tokens) else ""
            keyword_argument = depth > 0 and after == "="
            if before != "." and after != "(" and not keyword_argument:
                text = "_"
        out.append(text)
    return re.sub(r"\s+", "", "".join(out))


def is_trivial(line: str) -> bool:
    """Lines that any two implementations share: imports, signatures, `return x`, short ones.

    ``line`` is a source line; its length is counted without comment and whitespace.
    """
    header = re.match(r"(for|while|if|elif|else|with|try|except)\b", _strip_comment(line))
    line = re.sub(r"\s+", "", _strip_comment(line))
    return (
        header is not None
        or not line
        or line.startswith(("import", "from", "def", "class", "###", '"""', "@"))
        or re.fullmatch(r"return[\w,()]*", line) is not None
        or re.fullmatch(r"[\w.]+", line) is not None
        or len(line) < MIN_LENGTH
    )


def solution_regions(path: Path) -> list[tuple[str, list[str]]]:
    """(the function's name, the region's lines) for each solution region of a notebook."""
    regions = []
    for source in _code_cells(path):
        lines, inside, name = [], False, "?"
        for line in source.splitlines():
            match = re.match(r"\s*def (\w+)", line)
            if match and not inside:
                name = match.group(1)
            if line.strip() == "### BEGIN SOLUTION":
                inside, lines = True, []
            elif line.strip() == "### END SOLUTION":
                inside = False
                regions.append((name, lines))
            elif inside:
                lines.append(line)
    return regions


def lecture_lines(chapter: str) -> set[str]:
    (lecture,) = (ROOT / "notebooks").glob(f"{chapter}_*.ipynb")
    return {normalise(line) for source in _code_cells(lecture) for line in source.splitlines()}


def copied_lines(region: list[str], lecture: set[str]) -> tuple[list[str], int]:
    """The region's non-trivial normalised lines that the lecture has, and how many it has."""
    lines = [normalise(line) for line in region if not is_trivial(line)]
    return [n for n in lines if n in lecture], len(lines)


def is_copy(copied: list[str], total: int) -> bool:
    return len(copied) >= 3 or (len(copied) >= 2 and 2 * len(copied) > total)


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_no_solution_region_copies_the_lecture(solution):
    lecture = lecture_lines(solution.name[:2])
    copies = []
    for name, region in solution_regions(solution):
        copied, total = copied_lines(region, lecture)
        if is_copy(copied, total):
            shown = "\n    ".join(copied)
            copies.append(
                f"{name}: {len(copied)} of {total} lines are in the lecture:\n    {shown}"
            )
    assert not copies, f"{solution.name}: exercises transcribe lecture code:\n" + "\n".join(copies)


def test_the_comparison_can_fail():
    """The helpers flag a copy, ignore comments and spacing, and pass a different solution."""
    lecture = {normalise(x) for x in ["gates = x @ W.T + h @ U.T + b  # all", "c = f * c0 + i * g"]}
    lecture |= {normalise("h = o * torch.tanh(c)")}
    copy = [
        "    gates = x@W.T + h@U.T + b",
        "c = f * c0 + i * g  # keep, add",
        "h = o*torch.tanh(c)",
    ]
    assert is_copy(*copied_lines(copy, lecture))
    built = ["pre = torch.addmm(b, x, W.T)", "c = f * c0 + i * g", "out = torch.stack(states)"]
    assert not is_copy(*copied_lines(built, lecture))
    renamed = ["pre = x @ W.T + h @ U.T + b", "c = f * c0 + i * g", "state = o * torch.tanh(c)"]
    assert is_copy(*copied_lines(renamed, lecture)), "renaming the variables hides a copy"
    assert is_trivial("return h, c  # both") and is_trivial("import math") and is_trivial("h = h0")
    assert not is_trivial("return np.tanh(x @ W_ih.T + h_prev @ W_hh.T + b)")
    assert normalise("f(x, dim=-1)  # a '#' comment") == "f(_,dim=-1)"


def test_every_chapter_has_solution_regions():
    assert len(SOLUTIONS) == 6
    for solution in SOLUTIONS:
        assert solution_regions(solution), f"{solution.name} has no solution region"
