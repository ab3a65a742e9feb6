"""Browser check: JupyterLab runs a lecture and draws its explorer widget, which answers its slider.

For each lecture with an ipywidgets explorer, the test

1. starts JupyterLab on a temporary copy of `notebooks/` (see `browser_support.LabServer`),
2. opens the lecture in headless Chromium and runs all cells with `notebook:run-all-cells`,
3. checks that every code cell ran and none left an error,
4. finds the explorer, checks that its slider and its plot are drawn,
5. presses an arrow key on the slider and checks that the plot is redrawn,
6. saves a screenshot of the explorer under `docs/`, for the README.

Chromium is Debian's (`/usr/bin/chromium`, or `CHROMIUM_PATH`), driven by Python Playwright. Where
either is missing the test is skipped, unless `CI` is set: there a missing browser is a failure.
Run it alone with `pytest -m browser`.
"""

from __future__ import annotations

import importlib.util
import os
from contextlib import contextmanager

import pytest
from browser_support import (
    CHROMIUM_ARGS,
    PLOT_IMAGE,
    REPO_ROOT,
    LabServer,
    error_outputs,
    find_chromium,
    find_explorer,
    nudge_slider,
    open_notebook,
    plot_source,
    rendered_tracebacks,
    run_all_cells,
    unexecuted_cells,
    wait_for_new_plot,
)

if importlib.util.find_spec("playwright") is not None:  # else the chromium_path fixture skips
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
    from playwright.sync_api import sync_playwright

pytestmark = pytest.mark.browser

# (lecture, CSS class of the explorer's outermost widget, screenshot under docs/)
EXPLORERS = [
    pytest.param("notebooks/02_lstm.ipynb", "course-gate-explorer", "screenshot-gate-explorer.png", id="gate-explorer"),
    pytest.param(
        "notebooks/06_attention.ipynb",
        "course-attention-explorer",
        "screenshot-attention-explorer.png",
        id="attention-explorer",
    ),
]

RUN_ALL_TIMEOUT_MS = 180_000  # the lectures train small models; a 2-core CPU needs well under a minute each
WIDGET_TIMEOUT_MS = 30_000  # widgets are drawn after the run, once their comm messages arrive
VIEWPORT = {"width": 1400, "height": 1000}


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="module")
def chromium_path() -> str:
    """Chromium and Playwright, or a skip (a failure in CI) that says which is missing."""
    missing = []
    if importlib.util.find_spec("jupyterlab") is None:
        missing.append("JupyterLab (pip install jupyterlab)")
    if importlib.util.find_spec("playwright") is None:
        missing.append("Python Playwright (pip install playwright)")
    path = find_chromium()
    if path is None:
        missing.append("Chromium (apt-get install chromium, or set CHROMIUM_PATH)")
    if missing:
        reason = "browser check needs " + " and ".join(missing)
        if _in_ci():
            pytest.fail(f"{reason}; CI is set, so this is a failure, not a skip")
        pytest.skip(reason)
    return path


@pytest.fixture(scope="module")
def lab_server(chromium_path):
    with LabServer(REPO_ROOT / "notebooks") as server:
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
    page.page_errors = []  # JavaScript exceptions, for failure messages
    page.on("pageerror", lambda error: page.page_errors.append(str(error)))
    yield page
    context.close()
    lab_server.shutdown_kernels()  # the next lecture gets the CPU to itself


@contextmanager
def explains_timeout(message):
    """Turn a Playwright timeout into a test failure that says what did not happen; `message()` builds it."""
    try:
        yield
    except PlaywrightTimeoutError:
        pytest.fail(message(), pytrace=False)


@pytest.mark.parametrize(("notebook", "css_class", "screenshot"), EXPLORERS)
def test_explorer_renders_and_reacts(lab_page, lab_server, notebook, css_class, screenshot):
    page = lab_page
    assert (REPO_ROOT / notebook).is_file(), f"{notebook} is missing"

    def context() -> str:
        page_errors = "\n".join(page.page_errors[-5:]) or "(none)"
        return f"\n--- JavaScript errors ---\n{page_errors}\n--- jupyter lab and kernel log ---\n{lab_server.log_tail()}"

    def failures() -> list[str]:
        # Error outputs of cells, and tracebacks drawn anywhere, widget Outputs included (a widget
        # callback that raises inside `with output:` shows its traceback there, not in the cell).
        return error_outputs(page) + rendered_tracebacks(page)

    # 1. Open the lecture and run it top to bottom, as a learner would with Run > Run All Cells.
    with explains_timeout(lambda: f"{notebook}: JupyterLab did not open it with an idle kernel{context()}"):
        open_notebook(page, lab_server, notebook)
    with explains_timeout(
        lambda: f"{notebook}: Run All Cells did not finish in {RUN_ALL_TIMEOUT_MS / 1000:.0f} s; "
        f"not run: {unexecuted_cells(page)}{context()}"
    ):
        completed = run_all_cells(page, timeout_ms=RUN_ALL_TIMEOUT_MS)

    # 2. Every cell ran, and none failed. Text on stderr (progress bars, warnings) is not a failure.
    assert not failures(), f"{notebook} raised:\n" + "\n".join(failures())
    assert completed, f"{notebook}: Run All Cells stopped early{context()}"
    assert not unexecuted_cells(page), f"{notebook}: cells that did not run: {unexecuted_cells(page)}"

    # 3. The explorer is drawn: its slider and its plot.
    with explains_timeout(
        lambda: f"{notebook}: no explorer drawn: no widget with class {css_class!r}, and no widget view "
        f"with both a slider and a plot image{context()}"
    ):
        explorer = find_explorer(page, css_class, timeout_ms=WIDGET_TIMEOUT_MS)
    assert explorer.locator(".widget-slider").count() >= 1, f"{notebook}: the explorer has no slider"
    with explains_timeout(lambda: f"{notebook}: the explorer shows no plot image{context()}"):
        explorer.locator(PLOT_IMAGE).first.wait_for(state="visible")
    before = plot_source(explorer)

    # 4. One key press on the slider redraws the plot.
    key = nudge_slider(page, explorer)
    with explains_timeout(
        lambda: f"{notebook}: the plot did not change within {WIDGET_TIMEOUT_MS / 1000:.0f} s of {key} "
        f"on the slider\n" + "\n".join(failures()) + context()
    ):
        wait_for_new_plot(page, explorer, before, timeout_ms=WIDGET_TIMEOUT_MS)
    assert not failures(), f"{notebook}: moving the slider raised:\n" + "\n".join(failures())

    # 5. A picture of the explorer for the README; no focus ring or caret in it.
    page.evaluate("() => document.activeElement?.blur()")
    (REPO_ROOT / "docs").mkdir(exist_ok=True)
    explorer.screenshot(path=REPO_ROOT / "docs" / screenshot, animations="disabled", caret="hide")
