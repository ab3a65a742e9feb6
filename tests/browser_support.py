"""Helpers for the browser check: a throw-away JupyterLab server, and what the browser sees.

`tests/test_browser.py` opens a lecture in JupyterLab in headless Chromium, runs every cell and
checks that the lecture's ipywidgets explorer is drawn and reacts to its slider. This module holds
the two halves of that:

1. `LabServer` starts `jupyter lab` as a subprocess, kept apart from the learner's own Jupyter
   setup: temporary config, runtime, data, settings and workspace folders, a random token, a free
   port on 127.0.0.1, and a temporary *copy* of the notebooks as its root, so running cells never
   changes the committed notebooks. Its `python3` kernel is the Python that runs pytest.
2. The page helpers drive JupyterLab through its command registry (`window.jupyterapp`, switched
   on with `--LabApp.expose_app_in_browser`) and read the result from the DOM and the notebook
   model.

Selectors, checked against JupyterLab 4.6 and ipywidgets 8.1:

* `.jp-CodeCell .jp-InputArea-prompt` reads `[n]:` once a cell ran, `[*]:` while it runs.
* An error output is drawn by the stderr renderer (`.jp-OutputArea-output.jp-RenderedText` with
  `data-mime-type="application/vnd.jupyter.stderr"`), exactly like a progress bar or a warning
  written to stderr; `application/vnd.jupyter.error` never reaches the DOM. So errors are read from
  the notebook model (outputs of type `error`), and the DOM is searched for drawn tracebacks, which
  also catches a widget callback that fails inside an `Output` widget.
* A widget view has the class `jupyter-widgets`; a widget in a cell's output is
  `.jp-OutputArea-output > .jupyter-widgets`. An `IntSlider` is `.widget-slider`; its handle is
  `.noUi-handle` (noUiSlider: focusable, moved by the arrow keys, with `aria-valuenow` and
  `aria-valuemax`). An `Output` widget is `.widget-output`, and a matplotlib figure shown in it
  with `plt.show()` or `display(fig)` is an `<img>` with a `data:image/png` source; an `Image`
  widget (what `course_lib.viz` explorers draw into) is `img.widget-image` with a `blob:` source.
* A Markdown image with a relative path, `![alt](figures/x.svg)`, is an `<img>` in
  `.jp-MarkdownCell` whose `src` JupyterLab rewrites to the server's `/files/...` URL; it has a
  natural size once loaded (the course's SVGs carry width and height), 0 when the file is missing.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# Headless Chromium on a closed network: without the background-networking flags its own update,
# sync and component connections are refused, which stalls it.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# JupyterLab settings for the throw-away server, keyed by plugin id.
LAB_SETTINGS = {
    # "none" keeps every cell in the DOM, so prompts and outputs of off-screen cells can be read.
    "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
    # No news or update check: no requests to the internet, and no toast over the screenshots.
    "@jupyterlab/apputils-extension:notification": {"checkForUpdates": False, "fetchNews": "false"},
}

# The server answers these when it is (still) not reachable.
_UNREACHABLE = (urllib.error.URLError, ConnectionError, TimeoutError)


def find_chromium() -> str | None:
    """The path of a Chromium binary, or None. `CHROMIUM_PATH` overrides the search."""
    candidates = [os.environ.get("CHROMIUM_PATH"), "/usr/bin/chromium"]
    candidates += [shutil.which(name) for name in ("chromium", "chromium-browser")]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LabServer:
    """`jupyter lab` on 127.0.0.1 serving a temporary copy of `notebooks`; a context manager."""

    def __init__(self, notebooks: Path, startup_timeout: float = 90.0):
        self.workdir = Path(tempfile.mkdtemp(prefix="course-browser-"))
        self.root = self.workdir / "root"
        # The copy keeps the folder's name: a notebook has the same relative path as in the repo.
        checkpoints = shutil.ignore_patterns(".ipynb_checkpoints")
        shutil.copytree(notebooks, self.root / notebooks.name, ignore=checkpoints)
        self.port = _free_port()
        self.token = secrets.token_hex(24)
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.workdir / "jupyter-lab.log"
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen | None = None

    def _environment(self) -> dict[str, str]:
        """This process's environment, with every Jupyter folder inside the temporary workdir."""
        env = dict(os.environ)
        folders = {
            "JUPYTER_CONFIG_DIR": "config",
            "JUPYTER_RUNTIME_DIR": "runtime",
            "JUPYTER_DATA_DIR": "data",
            # Searched before the user's and the venv's share/jupyter: the kernelspec goes here.
            "JUPYTER_PATH": "jupyter-path",
            "JUPYTERLAB_SETTINGS_DIR": "settings",
            "JUPYTERLAB_WORKSPACES_DIR": "workspaces",
            "IPYTHONDIR": "ipython",  # no startup scripts from the learner's IPython profile
        }
        for variable, name in folders.items():
            folder = self.workdir / name
            folder.mkdir(parents=True, exist_ok=True)
            env[variable] = str(folder)
        # The kernel starts in the copy's folder; course_lib still imports from the repo.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        env.pop("JUPYTER_TOKEN", None)
        return env

    @staticmethod
    def _write_kernelspec(env: dict[str, str]) -> None:
        """A `python3` kernelspec that runs this interpreter, the one whose packages pytest sees."""
        kernel_dir = Path(env["JUPYTER_PATH"]) / "kernels" / "python3"
        kernel_dir.mkdir(parents=True)
        spec = {
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3 (ipykernel)",
            "language": "python",
        }
        (kernel_dir / "kernel.json").write_text(json.dumps(spec, indent=1))

    @staticmethod
    def _write_settings(env: dict[str, str]) -> None:
        for plugin_id, values in LAB_SETTINGS.items():
            package, plugin = plugin_id.split(":")
            path = Path(env["JUPYTERLAB_SETTINGS_DIR"]) / package / f"{plugin}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values, indent=1))

    def start(self) -> LabServer:
        """Start the server and wait until it answers; on failure clean up, raise with its log."""
        env = self._environment()
        self._write_kernelspec(env)
        self._write_settings(env)
        command = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            "--ServerApp.terminals_enabled=False",
            "--ServerApp.allow_root=True",  # containers and CI runners often run as root
            "--LabApp.expose_app_in_browser=True",  # window.jupyterapp, for its command registry
            "--LabApp.extension_manager=readonly",  # no PyPI queries from the extension manager
        ]
        with open(self.log_path, "wb") as log:
            # A session of its own, so stop() can signal the server and all it started at once.
            self.process = subprocess.Popen(
                command,
                cwd=self.root,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _api(self, path: str, method: str = "GET") -> bytes:
        headers = {"Authorization": f"token {self.token}"}
        request = urllib.request.Request(f"{self.base_url}{path}", method=method, headers=headers)
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.read()

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                raise RuntimeError(f"jupyter lab exited with {code}:\n{self.log_tail()}")
            try:
                self._api("/api/status")
                return
            except _UNREACHABLE:
                time.sleep(0.5)
        seconds = f"{self.startup_timeout:.0f} s"
        raise RuntimeError(f"jupyter lab did not answer within {seconds}:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's log, kernels' stderr included (for failure messages)."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def notebook_url(self, relative_path: str) -> str:
        # `reset` starts from an empty workspace; the token logs the browser in.
        return f"{self.base_url}/lab/tree/{relative_path}?reset&token={self.token}"

    def shutdown_kernels(self) -> None:
        """Shut down every running kernel (between lectures, so two never share the CPU).

        Best effort: a kernel that is still starting or already gone can make the server answer
        500 or 404 for a moment, so each call is retried, and what still fails is only warned
        about. This runs in a fixture's teardown, after the test has reached its verdict.
        """
        last_error: Exception | None = None
        for attempt in range(3):
            try:
                for kernel in json.loads(self._api("/api/kernels")):
                    try:
                        self._api(f"/api/kernels/{kernel['id']}", method="DELETE")
                    except urllib.error.HTTPError as error:
                        if error.code != 404:  # 404: it ended by itself meanwhile
                            raise
                return
            except urllib.error.HTTPError as error:
                last_error = error
                time.sleep(1 + attempt)
        warnings.warn(f"could not shut down the lab's kernels: {last_error}", stacklevel=2)

    def stop(self) -> None:
        """Shut down server and kernels politely, then signal the server's process group."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            try:
                self._api("/api/shutdown", method="POST")  # shuts down its kernels too
                process.wait(timeout=15)
            except (*_UNREACHABLE, subprocess.TimeoutExpired):
                pass
            # Kernels run in sessions of their own, but poll their parent and exit when it is gone.
            for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
                if process.poll() is not None:
                    break
                try:
                    os.killpg(process.pid, sig)
                    process.wait(timeout=wait)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    pass
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LabServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


# --- the page ------------------------------------------------------------------------------------

# The notebook on show (other open documents are hidden panels that keep their DOM).
NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden)"
CODE_PROMPTS = f"{NOTEBOOK} .jp-CodeCell .jp-InputArea-prompt"
STDERR_MIME = "application/vnd.jupyter.stderr"
STDERR_OUTPUTS = f'{NOTEBOOK} .jp-OutputArea-output[data-mime-type="{STDERR_MIME}"]'
SLIDER = ".widget-slider"
SLIDER_HANDLE = f"{SLIDER} .noUi-handle"
# A plot: a matplotlib figure shown in an Output widget, or an Image widget; not the gate
# explorer's cell diagram (an Image widget too, with the class course-cell-diagram).
CELL_DIAGRAM = "img.widget-image.course-cell-diagram"
PLOT_IMAGE = ".widget-output img, img.widget-image:not(.course-cell-diagram)"

# The notebook panel on show, in the page's JavaScript.
_PANEL_JS = "window.jupyterapp.shell.currentWidget"


def open_notebook(
    page, server: LabServer, relative_path: str, timeout_ms: float = 90_000, kernel: bool = True
) -> None:
    """Open a notebook in JupyterLab; wait until its kernel has started and is idle.

    Running cells before the kernel is there makes JupyterLab ask for a kernel in a dialog.
    With `kernel=False`, wait only until the notebook is loaded and shown (to look, not run).
    """
    page.goto(server.notebook_url(relative_path), wait_until="domcontentloaded", timeout=timeout_ms)
    page.wait_for_function(
        """([path, kernel]) => {
            const panel = window.jupyterapp?.shell.currentWidget;
            const session = panel?.sessionContext;
            if (panel?.context?.path !== path || !panel.context.isReady) return false;
            return !kernel || (session?.isReady && session.session?.kernel
                && session.kernelDisplayStatus === 'idle');
        }""",
        arg=[relative_path, kernel],
        timeout=timeout_ms,
        polling=250,
    )
    # Fold the file browser away: the notebook, and so the widgets, get the page's width.
    page.evaluate("() => window.jupyterapp.shell.collapseLeft()")


def run_all_cells(page, timeout_ms: float) -> bool:
    """Run all cells with JupyterLab's `notebook:run-all-cells`; wait until the run is over.

    True when every cell ran; False when one failed, where JupyterLab stops the run.
    """
    page.evaluate(
        """() => {
            window.__courseRunAll = undefined;
            window.jupyterapp.commands.execute('notebook:run-all-cells').then(
                (ok) => { window.__courseRunAll = ok === true; },
                (error) => { window.__courseRunAll = false; console.error(error); });
        }"""
    )
    idle = f"{_PANEL_JS}.sessionContext.kernelDisplayStatus === 'idle'"
    page.wait_for_function(
        f"() => window.__courseRunAll !== undefined && {idle}", timeout=timeout_ms, polling=500
    )
    return page.evaluate("() => window.__courseRunAll")


def unexecuted_cells(page) -> list[str]:
    """Code cells without an execution count, as 'code cell N ([ ]:)', N counting from 0."""
    prompts = page.eval_on_selector_all(CODE_PROMPTS, "ps => ps.map(p => p.textContent.trim())")
    return [
        f"code cell {n} ({prompt})"
        for n, prompt in enumerate(prompts)
        if not prompt.strip("[]:").isdigit()
    ]


def error_outputs(page) -> list[str]:
    """Every error output in the notebook on show, as 'cell N: ename: evalue', N counting from 0.

    Read from the notebook model, where an error is an output of type `error`: on the page it
    looks exactly like text on stderr (a tqdm bar, a warning), so no selector tells them apart.
    """
    return page.evaluate(
        f"""() => {{
            const cells = {_PANEL_JS}.content.model.cells;
            const found = [];
            for (let i = 0; i < cells.length; i++) {{
                const cell = cells.get(i);
                if (cell.type !== 'code') continue;
                for (let j = 0; j < cell.outputs.length; j++) {{
                    const out = cell.outputs.get(j).toJSON();
                    if (out.output_type === 'error') {{
                        found.push(`cell ${{i}}: ${{out.ename}}: ${{out.evalue}}`);
                    }}
                }}
            }}
            return found;
        }}"""
    )


def rendered_tracebacks(page) -> list[str]:
    """Tracebacks drawn anywhere in the notebook, widget Outputs included (500 characters each)."""
    texts = page.eval_on_selector_all(STDERR_OUTPUTS, "els => els.map(el => el.textContent)")
    return [text[:500] for text in texts if "Traceback (most recent call last)" in text]


def find_explorer(page, css_class: str, timeout_ms: float):
    """Wait for the explorer widget to be drawn; return a locator for it.

    The explorer is the widget with class `css_class`: `course_lib.viz` puts `course-gate-explorer`
    or `course-attention-explorer` on its outermost box (`add_class`), so no other widget (a tqdm
    progress bar, another slider) can be taken for it. The caller checks its slider and its plot.
    """
    explorer = page.locator(f"{NOTEBOOK} .jupyter-widgets.{css_class}").first
    explorer.wait_for(state="visible", timeout=timeout_ms)
    return explorer


def show_whole(page, element, margin: int = 300) -> None:
    """Make the viewport tall enough that `element` fits in the notebook's scroll area, and scroll
    it into view: a screenshot of an element shows only what is visible of it. `margin` covers
    the menu, tab, toolbar and status bars around the notebook."""
    height = int(element.bounding_box()["height"]) + margin
    viewport = page.viewport_size
    if height > viewport["height"]:
        page.set_viewport_size({"width": viewport["width"], "height": height})
    element.scroll_into_view_if_needed()


def plot_source(explorer) -> str:
    """The `src` of the explorer's first plot image ('' when it has none)."""
    return explorer.locator(PLOT_IMAGE).first.get_attribute("src") or ""


def plot_digest(explorer) -> str:
    """SHA-256 of the bytes of the explorer's first plot image, whether its source is a `data:` URL
    (matplotlib in an Output widget) or a `blob:` URL (an Image widget: a new one on every redraw,
    even of the same picture, so a changed source alone does not prove a changed plot)."""
    return explorer.locator(PLOT_IMAGE).first.evaluate(
        """async (img) => {
            const bytes = await (await fetch(img.src)).arrayBuffer();
            const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
            return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
        }"""
    )


def nudge_slider(page, explorer) -> str:
    """Focus the explorer's first slider and press one arrow key, as a learner would.

    ArrowRight, one step up, unless the slider sits at its maximum. Returns the key pressed.
    """
    handle = explorer.locator(SLIDER_HANDLE).first
    value, top = handle.get_attribute("aria-valuenow"), handle.get_attribute("aria-valuemax")
    key = "ArrowLeft" if value is not None and value == top else "ArrowRight"
    handle.focus()
    page.keyboard.press(key)
    return key


def wait_for_new_plot(page, explorer, old_src: str, timeout_ms: float) -> str:
    """Wait until the explorer shows a loaded plot image with a source other than `old_src`."""
    page.wait_for_function(
        """([root, selector, old]) => {
            const img = root.querySelector(selector);
            return img !== null && img.complete && img.naturalWidth > 0
                && img.getAttribute('src') !== old;
        }""",
        arg=[explorer.element_handle(), PLOT_IMAGE, old_src],
        timeout=timeout_ms,
        polling=200,
    )
    return plot_source(explorer)


# --- images --------------------------------------------------------------------------------------

# Every picture in the notebook on show: diagrams in markdown cells (`![alt](figures/x.svg)`,
# which JupyterLab resolves to a /files/ URL), stored output images, widget images.
IMAGES = f"{NOTEBOOK} img"
MARKDOWN_IMAGES = f"{NOTEBOOK} .jp-MarkdownCell img"


def wait_for_images(page, timeout_ms: float) -> None:
    """Wait until every image in the notebook has finished loading (or failed to)."""
    page.wait_for_function(
        """(selector) => Array.from(document.querySelectorAll(selector))
            .every((img) => img.getAttribute('src') && img.complete)""",
        arg=IMAGES,
        timeout=timeout_ms,
        polling=250,
    )


def image_report(page, selector: str = IMAGES) -> list[dict]:
    """For each image: its source, alt text and natural size."""
    return page.eval_on_selector_all(
        selector,
        """imgs => imgs.map((img) => ({
            src: img.getAttribute('src') || '',
            alt: img.getAttribute('alt') || '',
            complete: img.complete,
            width: img.naturalWidth,
            height: img.naturalHeight,
        }))""",
    )


def broken_images(page) -> list[str]:
    """The images that did not load: no natural size (a missing file, a bad path, bad SVG)."""
    return [
        f"{image['src'][:100]!r} (alt {image['alt'][:40]!r})"
        for image in image_report(page)
        if not (image["complete"] and image["width"] > 0 and image["height"] > 0)
    ]
