"""The committed chapter-07 lecture stores what issue 11 asks of it, in the stored outputs.

nbval re-runs the notebook and compares; this reads the committed outputs, so a lecture committed
without its results (or with a model missing from the comparison) fails here in a second.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "07_language_model.ipynb"
LINE = re.compile(r"^held-out bits per character: (\S+) (\d+\.\d+)$", re.MULTILINE)
MODELS = ("tanh-RNN", "LSTM", "GRU")
BASELINES = ("unigram", "bigram", "gzip-9", "lzma", "gzip-9+train", "lzma+train")


@pytest.fixture(scope="module")
def notebook() -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOK, as_version=4)


def stored_text(notebook: nbformat.NotebookNode) -> str:
    return "\n".join(
        output.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "stream"
    )


@pytest.fixture(scope="module")
def bpc(notebook) -> dict[str, float]:
    return {name: float(value) for name, value in LINE.findall(stored_text(notebook))}


def test_every_model_and_baseline_has_its_line(bpc):
    missing = [name for name in MODELS + BASELINES if name not in bpc]
    assert not missing, f"no 'held-out bits per character: <model> <value>' line for {missing}"


def test_stored_numbers_support_the_lectures_claims(bpc):
    lstm = bpc["LSTM"]
    assert lstm < bpc["bigram"] - 0.5 and lstm < bpc["gzip-9"] - 0.5
    assert lstm < bpc["lzma+train"] < bpc["lzma"] < bpc["gzip-9"]
    assert lstm < bpc["tanh-RNN"] and bpc["GRU"] < bpc["tanh-RNN"]
    assert bpc["bigram"] < bpc["unigram"]


def test_figures_are_stored(notebook):
    images = sum(
        "image/png" in output.get("data", {})
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )
    # clipping (gradient norm and loss), the comparison, the distributions at three temperatures
    assert images >= 3, f"{images} figures stored"


def test_samples_at_three_temperatures_are_stored(notebook):
    text = stored_text(notebook)
    for tau in ("0.5", "1.0", "1.5"):
        assert f"--- τ = {tau} ---" in text, f"no sample stored at temperature {tau}"
