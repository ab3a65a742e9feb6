"""Browser check: JupyterLab runs a lecture, draws its explorer widget, and the widget reacts.

For each lecture with an ipywidgets explorer, the test

1. starts JupyterLab on a temporary copy of `notebooks/` (`browser_support.LabServer`),
2. opens the lecture in headless Chromium and runs all cells (`notebook:run-all-cells`),
3. checks that every code cell ran and that nothing raised,
4. checks that every image in the lecture has loaded (a natural size above zero): the diagrams
   in its markdown, stored plots, the widgets' pictures,
5. finds the explorer and checks that its slider and its plot are drawn,
6. presses an arrow key on the slider and waits for a different picture,
7. saves a screenshot of the explorer under `docs/` for the README.

A second test opens every lecture without running it and checks that each of its images loads
and that each diagram its markdown shows (`figures/*.svg`) is drawn, with alt text.

Chromium is Debian's (`/usr/bin/chromium`, or `CHROMIUM_PATH`), driven by Python Playwright;
`playwright install` is never needed. Where either is missing the test is skipped, unless `CI` is
set: there a missing browser is a failure. Run it alone with `pytest -m browser`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re

import pytest
from browser_support import (
    CELL_DIAGRAM,
    CHROMIUM_ARGS,
    MARKDOWN_IMAGES,
    PLOT_IMAGE,
    REPO_ROOT,
    SLIDER,
    LabServer,
    broken_images,
    error_outputs,
    find_chromium,
    find_explorer,
    image_report,
    nudge_slider,
    open_notebook,
    plot_digest,
    plot_source,
    rendered_tracebacks,
    run_all_cells,
    show_whole,
    unexecuted_cells,
    wait_for_images,
    wait_for_new_plot,
)

if importlib.util.find_spec("playwright") is not None:  # else the chromium_path fixture skips
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
    from playwright.sync_api import sync_playwright

pytestmark = pytest.mark.browser

# (lecture, class of the explorer's outermost widget, screenshot saved under docs/)
EXPLORERS = [
    pytest.param(
        "notebooks/02_lstm.ipynb",
        "course-gate-explorer",
        "screenshot-gate-explorer.png",
        id="gate-explorer",
    ),
    pytest.param(
        "notebooks/06_attention.ipynb",
        "course-attention-explorer",
        "screenshot-attention-explorer.png",
        id="attention-explorer",
    ),
]

LECTURES = sorted(path.name for path in (REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
RUN_ALL_TIMEOUT_MS = 180_000  # a lecture trains small models: well under a minute on 2 cores
WIDGET_TIMEOUT_MS = 30_000  # widgets are drawn once their comm messages arrive, after the run
VIEWPORT = {"width": 1400, "height": 1000}


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="module")
def chromium_path() -> str:
    """Chromium's path; a skip that names what is missing (a failure where `CI` is set)."""
    missing = []
    if importlib.util.find_spec("jupyterlab") is None:
        missing.append("JupyterLab (pip install jupyterlab)")
    if importlib.util.find_spec("playwright") is None:
        missing.append("Python Playwright (pip install playwright)")
    path = find_chromium()
    if path is None:
        missing.append("Chromium (apt-get install chromium, or set CHROMIUM_PATH)")
    if missing:
        reason = "the browser check needs " + " and ".join(missing)
        if _in_ci():
            pytest.fail(f"{reason}; CI is set, so this fails instead of skipping", pytrace=False)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="module")
def lab_server(chromium_path):
    notebooks = REPO_ROOT / "notebooks"
    assert notebooks.is_dir(), f"{notebooks} is missing"
    with LabServer(notebooks) as server:
        yield server


@pytest.fixture(scope="module")
def lab_browser(chromium_path):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def lab_page(lab_browser, lab_server):
    context = lab_browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(WIDGET_TIMEOUT_MS)
    page.js_errors = []  # uncaught JavaScript exceptions, for failure messages
    page.on("pageerror", lambda error: page.js_errors.append(str(error)))
    yield page
    context.close()
    lab_server.shutdown_kernels()  # the next lecture gets the CPU to itself


def wait_or_fail(message, wait, *args, **kwargs):
    """Return `wait(*args, **kwargs)`; on a timeout, fail with `message()`: what did not happen."""
    try:
        return wait(*args, **kwargs)
    except PlaywrightTimeoutError:
        pass
    # Failing out here, after the `except`, keeps Playwright's traceback out of the report.
    pytest.fail(message(), pytrace=False)


@pytest.mark.parametrize(("notebook", "css_class", "screenshot"), EXPLORERS)
def test_explorer_renders_and_reacts(lab_page, lab_server, notebook, css_class, screenshot):
    page = lab_page
    assert (REPO_ROOT / notebook).is_file(), f"{notebook} is missing"

    def context() -> str:
        js_errors = "\n".join(page.js_errors[-5:]) or "(none)"
        log = lab_server.log_tail()
        return f"\n--- JavaScript errors ---\n{js_errors}\n--- jupyter lab and kernels ---\n{log}"

    def failures() -> list[str]:
        # A widget callback that raises inside `with output:` shows its traceback in the Output
        # widget, not in the cell's outputs: only the drawn tracebacks reveal it.
        return error_outputs(page) + rendered_tracebacks(page)

    # 1. Open the lecture and run it top to bottom, as a learner does with Run > Run All Cells.
    wait_or_fail(
        lambda: f"{notebook}: no idle kernel after opening it{context()}",
        open_notebook,
        page,
        lab_server,
        notebook,
    )
    completed = wait_or_fail(
        lambda: (
            f"{notebook}: Run All Cells did not finish in {RUN_ALL_TIMEOUT_MS // 1000} s; "
            f"not run: {unexecuted_cells(page)}{context()}"
        ),
        run_all_cells,
        page,
        timeout_ms=RUN_ALL_TIMEOUT_MS,
    )

    # 2. Every cell ran and none raised. Text on stderr (progress bars, warnings) is no failure.
    assert not failures(), f"{notebook} raised:\n" + "\n".join(failures())
    assert completed, f"{notebook}: Run All Cells stopped early{context()}"
    assert not unexecuted_cells(page), f"{notebook}: not run: {unexecuted_cells(page)}"

    # 3. Every image has loaded: the diagrams in the markdown, stored plots, widget pictures.
    check_images(page, notebook)

    # 4. The explorer is drawn, with its slider and its plot.
    explorer = wait_or_fail(
        lambda: (
            f"{notebook}: no explorer: no widget with class {css_class!r} "
            f"(course_lib.viz adds it to the explorer's outer box){context()}"
        ),
        find_explorer,
        page,
        css_class,
        timeout_ms=WIDGET_TIMEOUT_MS,
    )
    assert explorer.locator(SLIDER).count() > 0, f"{notebook}: the explorer has no slider"
    wait_or_fail(
        lambda: f"{notebook}: the explorer shows no plot image{context()}",
        explorer.locator(PLOT_IMAGE).first.wait_for,
        state="visible",
    )
    before, before_digest = plot_source(explorer), plot_digest(explorer)

    diagram = explorer.locator(CELL_DIAGRAM)
    diagram_before = diagram.first.get_attribute("src") if diagram.count() else None

    # 5. One key press on the slider redraws the plot (and the gate explorer's cell diagram).
    key = nudge_slider(page, explorer)
    wait_or_fail(
        lambda: (
            f"{notebook}: the plot was not redrawn within {WIDGET_TIMEOUT_MS // 1000} s of "
            f"{key} on the slider\n" + "\n".join(failures()) + context()
        ),
        wait_for_new_plot,
        page,
        explorer,
        before,
        timeout_ms=WIDGET_TIMEOUT_MS,
    )
    assert not failures(), f"{notebook}: moving the slider raised:\n" + "\n".join(failures())
    assert plot_digest(explorer) != before_digest, f"{notebook}: {key} redrew the same picture"
    if diagram_before is not None:
        wait_or_fail(
            lambda: f"{notebook}: the cell diagram was not redrawn after {key}{context()}",
            page.wait_for_function,
            """([img, old]) => img.complete && img.naturalWidth > 0
                && img.getAttribute('src') !== old""",
            arg=[diagram.first.element_handle(), diagram_before],
            timeout=WIDGET_TIMEOUT_MS,
        )
    wait_for_images(page, WIDGET_TIMEOUT_MS)
    assert not broken_images(page), f"{notebook}: after {key}: {broken_images(page)}"

    # 6. A picture of the whole explorer for the README, without focus ring or caret.
    page.evaluate("() => document.activeElement?.blur()")
    show_whole(page, explorer)
    (REPO_ROOT / "docs").mkdir(exist_ok=True)
    explorer.screenshot(path=REPO_ROOT / "docs" / screenshot, animations="disabled", caret="hide")


def figure_references(notebook: str) -> list[str]:
    """The diagrams (figures/NAME.svg) that the notebook's markdown cells show, from the file."""
    cells = json.loads((REPO_ROOT / notebook).read_text(encoding="utf-8"))["cells"]
    sources = ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "markdown"]
    return [name for source in sources for name in re.findall(r"\(figures/([\w-]+\.svg)", source)]


def check_images(page, notebook: str) -> None:
    """Every image on the page has loaded; each diagram the markdown shows is drawn, with alt."""
    expected = figure_references(notebook)
    # Markdown cells render asynchronously: wait until every diagram's <img> is in the page, or
    # "every image has loaded" would hold trivially while there are none yet.
    wait_or_fail(
        lambda: f"{notebook}: diagrams never drawn: {expected}",
        page.wait_for_function,
        """([selector, names]) => names.every((name) => Array.from(
            document.querySelectorAll(selector)).some((img) =>
                (img.getAttribute('src') || '').includes(name)))""",
        arg=[MARKDOWN_IMAGES, expected],
        timeout=WIDGET_TIMEOUT_MS,
        polling=250,
    )
    wait_or_fail(
        lambda: (
            f"{notebook}: images still loading: "
            + str([image["src"][:80] for image in image_report(page) if not image["complete"]])
        ),
        wait_for_images,
        page,
        WIDGET_TIMEOUT_MS,
    )
    assert not broken_images(page), f"{notebook}: images that did not load: {broken_images(page)}"
    drawn = image_report(page, MARKDOWN_IMAGES)
    shown = [image for image in drawn if any(name in image["src"] for name in expected)]
    assert len(shown) == len(expected), f"{notebook}: shows {expected}, drawn: {drawn}"
    assert all(image["alt"].strip() for image in shown), f"{notebook}: a diagram lacks alt text"


@pytest.mark.parametrize("lecture", LECTURES)
def test_lecture_images_load(lab_page, lab_server, lecture):
    """Open a lecture as committed (no cell run) and check that all its images load."""
    notebook = f"notebooks/{lecture}"
    wait_or_fail(
        lambda: f"{notebook}: not shown after opening it\n{lab_server.log_tail()}",
        open_notebook,
        lab_page,
        lab_server,
        notebook,
        kernel=False,
    )
    check_images(lab_page, notebook)
