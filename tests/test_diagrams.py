"""course_lib.diagrams: the committed figures are what the code draws, each is valid SVG with a
viewBox, a size, a title and a description, and every colour in it comes from the one palette."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from course_lib import diagrams
from course_lib.diagrams.cells import cell_with_values, lstm_cell
from course_lib.diagrams.svg import PALETTE, rich_text

SVG = "{http://www.w3.org/2000/svg}"
COLOUR = re.compile(r"#[0-9a-fA-F]{3,8}\b")
NAMES = sorted(diagrams.FIGURES)


def test_every_committed_figure_is_what_the_code_draws():
    assert diagrams.stale() == [], "notebooks/figures is out of date: run `make figures`"
    on_disk = {path.stem for path in diagrams.DEFAULT_FOLDER.glob("*.svg")}
    assert on_disk == set(diagrams.FIGURES), "a figure without code, or code without a figure"


def test_stale_notices_a_changed_figure(tmp_path):
    diagrams.write_all(tmp_path)
    assert diagrams.stale(tmp_path) == []
    path = tmp_path / "lstm_cell.svg"
    path.write_text(path.read_text().replace(PALETTE["f"], "#000000"))
    (tmp_path / "gru_cell.svg").unlink()
    assert diagrams.stale(tmp_path) == ["lstm_cell", "gru_cell"]


@pytest.mark.parametrize("name", NAMES)
def test_figure_is_valid_svg_with_size_viewbox_and_text_alternatives(name):
    root = ET.fromstring(diagrams.FIGURES[name]())
    assert root.tag == f"{SVG}svg"
    width, height = float(root.get("width")), float(root.get("height"))
    assert width > 0 and height > 0  # an <img> of it has a natural size
    assert root.get("viewBox") == f"0 0 {root.get('width')} {root.get('height')}"
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title is not None and len(title.text) > 5
    assert desc is not None and len(desc.text) > 40
    # everything drawn lies inside the view box
    for element in root.iter():
        for attribute in ("x", "cx"):
            if element.get(attribute) is not None and not element.get(attribute).endswith("%"):
                assert -1 <= float(element.get(attribute)) <= width + 1, (name, element.attrib)
        for attribute in ("y", "cy"):
            if element.get(attribute) is not None and not element.get(attribute).endswith("%"):
                assert -1 <= float(element.get(attribute)) <= height + 1, (name, element.attrib)


@pytest.mark.parametrize("name", NAMES)
def test_every_colour_comes_from_the_palette(name):
    used = {colour.lower() for colour in COLOUR.findall(diagrams.FIGURES[name]())}
    assert used, "no colours at all"
    assert used <= {colour.lower() for colour in PALETTE.values()}, used - set(PALETTE.values())
    assert not re.search(r'(fill|stroke)="(?!none|url|#)', diagrams.FIGURES[name]()), (
        "a named colour outside the palette"
    )


def test_each_quantity_keeps_its_colour_across_figures():
    lstm, gru = diagrams.FIGURES["lstm_cell"](), diagrams.FIGURES["gru_cell"]()
    for gate in "ifgo":
        assert PALETTE[gate] in lstm
    for gate in "rzn":
        assert PALETTE[gate] in gru and PALETTE[gate] not in lstm
    assert len(set(PALETTE[k] for k in "xhcifgorzn")) == 10, "two quantities share a colour"
    beside = diagrams.FIGURES["gru_beside_lstm"]()
    assert all(PALETTE[k] in beside for k in "xhcifgorzn")


def test_labels_use_the_equations_symbols():
    assert rich_text("h_{t-1}", 10) == 'h<tspan dy="3" font-size="7.2">t−1</tspan>'
    # a superscript then a subscript: the second moves relative to the first, then back
    assert rich_text("h^{(0)}_T x", 10) == (
        'h<tspan dy="-4" font-size="7.2">(0)</tspan><tspan dy="7" font-size="7.2">T</tspan>'
        '<tspan dy="-3"> x</tspan>'
    )
    assert rich_text("a < b", 10) == "a &lt; b"  # escaped: the file stays valid XML
    lstm = diagrams.FIGURES["lstm_cell"]()
    for question in ("1 · forget", "2 · propose", "3 · admit", "4 · show"):
        assert question in lstm


def test_the_lstm_with_values_shows_them_and_fills_its_gates():
    values = {"i": 0.25, "f": 0.9, "g": -0.5, "o": 0.75, "c": 1.5, "c_prev": 0.5, "h": 0.6}
    svg = lstm_cell(values)
    ET.fromstring(svg)
    for value in values.values():
        assert f"= {value:.2f}<" in svg
    # a gate's box is filled as far as the gate is open (36 px tall boxes)
    assert 'height="32.4"' in svg and 'height="9"' in svg  # f = 0.9, i = 0.25
    assert 'height="18"' in svg  # |g| = 0.5: how strong the candidate is
    assert svg != lstm_cell({**values, "f": 0.1})
    assert cell_with_values({"h": 0.3}) is None
    assert "The GRU cell" in cell_with_values({"r": 0.1, "z": 0.2, "n": 0.3, "h": 0.4})


def test_every_image_a_lecture_shows_exists_and_has_alt_text():
    """Markdown images in the lectures: the file exists next to them and the alt text says what
    the figure shows (a screen reader's, and a broken link's, only description)."""
    import json

    notebooks = diagrams.DEFAULT_FOLDER.parent
    image = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)")
    for path in sorted(notebooks.glob("*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] != "markdown":
                continue
            for alt, target in image.findall("".join(cell["source"])):
                if target.startswith(("http:", "https:", "attachment:", "data:")):
                    continue
                assert (notebooks / target).is_file(), f"{path.name}: {target} does not exist"
                assert len(alt.split()) >= 5, f"{path.name}: {target} has no real alt text"


@pytest.mark.parametrize("number", ["01", "02", "03", "04", "05", "06"])
def test_every_lecture_shows_a_diagram_of_its_architecture(number):
    import json

    (path,) = diagrams.DEFAULT_FOLDER.parent.glob(f"{number}_*.ipynb")
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    markdown = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    assert re.search(r"!\[[^\]]+\]\(figures/\w+\.svg", markdown), f"{path.name} shows no diagram"
