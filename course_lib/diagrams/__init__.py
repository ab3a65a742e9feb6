"""The course's diagrams, drawn by code: one visual language, regenerated with `make figures`.

Every lecture shows its architecture in the same colours and glyphs (defined once, in
`course_lib.diagrams.svg`): a colour per quantity (x, h, c, each gate), a box for a layer with
weights (σ or tanh), a circle for an element-wise operation (⊙, +), labels in the equations'
symbols. The figures:

| name | lecture | module |
|---|---|---|
| rnn_cell, rnn_unrolled | 01 | cells, sequences |
| lstm_cell (also with one step's values, for the gate explorer) | 02 | cells |
| gru_cell, gru_beside_lstm | 03 | cells |
| peephole_cell | 04 | cells |
| bidirectional, stacked | 05 | sequences |
| encoder_decoder, self_attention | 06 | attention |

Where the files live: `notebooks/figures/NAME.svg`, and the lectures show them with a relative
Markdown image, ``![alt](figures/lstm_cell.svg)``. A path next to the notebook is the one form
that all three places resolve: JupyterLab (relative to the notebook), GitHub's notebook view
(relative images render; cell attachments are not reliably shown by every viewer), and
`jupyter nbconvert --to html` (the page lands next to the notebook, so the path still holds;
`--HTMLExporter.embed_images=True` inlines the files, which nbconvert does only for paths
below the notebook's folder).
"""

from __future__ import annotations

from pathlib import Path

from course_lib.diagrams import attention, cells, sequences
from course_lib.diagrams.svg import PALETTE

FIGURES = {
    "rnn_cell": cells.rnn_cell,
    "rnn_unrolled": sequences.rnn_unrolled,
    "lstm_cell": cells.lstm_cell,
    "gru_cell": cells.gru_cell,
    "gru_beside_lstm": cells.gru_beside_lstm,
    "peephole_cell": cells.peephole_cell,
    "bidirectional": sequences.bidirectional,
    "stacked": sequences.stacked,
    "encoder_decoder": attention.encoder_decoder,
    "self_attention": attention.self_attention,
}
DEFAULT_FOLDER = Path(__file__).resolve().parents[2] / "notebooks" / "figures"


def write_all(folder: Path = DEFAULT_FOLDER) -> list[Path]:
    """Write every figure as folder/NAME.svg; return the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, draw in FIGURES.items():
        path = folder / f"{name}.svg"
        path.write_text(draw(), encoding="utf-8")
        paths.append(path)
    return paths


def stale(folder: Path = DEFAULT_FOLDER) -> list[str]:
    """Names of the figures whose file in `folder` is missing or differs from the code's."""
    folder = Path(folder)
    return [
        name
        for name, draw in FIGURES.items()
        if not (folder / f"{name}.svg").is_file()
        or (folder / f"{name}.svg").read_text(encoding="utf-8") != draw()
    ]


__all__ = ["DEFAULT_FOLDER", "FIGURES", "PALETTE", "stale", "write_all"]
