"""Helpers for the browser check: a throw-away JupyterLab server and what a learner's browser sees.

`tests/test_browser.py` opens a course notebook in JupyterLab in headless Chromium, runs every cell
and checks that the notebook's ipywidgets explorer renders and reacts to its slider. This module holds
the two halves of that:

1. `LabServer` starts `jupyter lab` as a subprocess, isolated from the learner's own Jupyter setup:
   temporary config, runtime, data, settings and workspace folders, a random token, a free port on
   127.0.0.1, and a temporary *copy* of the notebooks as its root, so running cells never changes
   the committed notebooks. Its kernel is the Python that runs pytest, so `course_lib` imports.
2. The page helpers drive JupyterLab through what it exposes: the command registry
   (`window.jupyterapp`, switched on with `--LabApp.expose_app_in_browser`) to run all cells, and
   the DOM to observe the result (execution prompts, the kernel indicator, outputs, widgets).

Selectors (checked against JupyterLab 4.6 and ipywidgets 8):

* `.jp-Notebook-ExecutionIndicator[data-status]` is the kernel indicator in the notebook toolbar
  (`idle`, `busy`, `starting`, ...).
* `.jp-CodeCell .jp-InputArea-prompt` holds `[n]:` once a cell ran, `[*]:` while it runs.
* JupyterLab renders an error output with the stderr renderer, so the mime type alone cannot tell a
  traceback from a progress bar written to stderr; the model can. Errors are therefore read from
  the notebook model (outputs of type `error`, with `ename` and `evalue`), and the DOM is checked
  for a rendered traceback too (`.jp-OutputArea-output` whose text holds the `ename`).
* An ipywidgets view has the class `jupyter-widgets`; an `IntSlider` is `.widget-slider`, its
  draggable handle `.noUi-handle` (noUiSlider, keyboard-aware, with `aria-valuenow`/`aria-valuemax`);
  an `Output` widget is `.widget-output`, and a matplotlib figure shown in it is an `<img>` with a
  `data:image/png` source.
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
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# The flags that keep Chromium quiet on a closed network: without the background-networking ones its
# own update and sync connections are refused and it stalls.
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
    # No news or update check: no network requests and no toast over the widgets in screenshots.
    "@jupyterlab/apputils-extension:notification": {"checkForUpdates": False, "fetchNews": "false"},
}


def find_chromium() -> str | None:
    """Return the path of a Chromium binary, or None. `CHROMIUM_PATH` overrides the search."""
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
    """`jupyter lab` on 127.0.0.1, serving a temporary copy of `notebooks`; use as a context manager."""

    def __init__(self, notebooks: Path, startup_timeout: float = 90.0):
        self.workdir = Path(tempfile.mkdtemp(prefix="course-browser-"))
        self.root = self.workdir / "root"
        # The copy keeps the folder name, so a notebook opens at the same relative path as in the repo.
        shutil.copytree(notebooks, self.root / notebooks.name, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        self.port = _free_port()
        self.token = secrets.token_hex(24)
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.workdir / "jupyter-lab.log"
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen | None = None

    # 1. An environment that points every Jupyter folder at the temporary workdir.
    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        folders = {
            "JUPYTER_CONFIG_DIR": "config",
            "JUPYTER_RUNTIME_DIR": "runtime",
            "JUPYTER_DATA_DIR": "data",
            "JUPYTERLAB_SETTINGS_DIR": "settings",
            "JUPYTERLAB_WORKSPACES_DIR": "workspaces",
            "IPYTHONDIR": "ipython",
            "MPLCONFIGDIR": "matplotlib",
        }
        for variable, name in folders.items():
            folder = self.workdir / name
            folder.mkdir(parents=True, exist_ok=True)
            env[variable] = str(folder)
        # The kernel starts in the copied notebooks' folder; course_lib must still import from the repo.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        # JUPYTER_PATH comes first in every search, even before the venv's own share/jupyter, so the
        # kernelspec written below is the `python3` that notebooks ask for.
        env["JUPYTER_PATH"] = str(self.workdir / "jupyter-path")
        env.pop("JUPYTER_TOKEN", None)
        return env

    # 2. A `python3` kernelspec for this interpreter, found before the one installed in the venv.
    def _write_kernelspec(self, env: dict[str, str]) -> None:
        kernel_dir = Path(env["JUPYTER_PATH"]) / "kernels" / "python3"
        kernel_dir.mkdir(parents=True, exist_ok=True)
        spec = {
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3 (course)",
            "language": "python",
        }
        (kernel_dir / "kernel.json").write_text(json.dumps(spec, indent=1))

    def _write_settings(self, env: dict[str, str]) -> None:
        for plugin_id, values in LAB_SETTINGS.items():
            package, plugin = plugin_id.split(":")
            path = Path(env["JUPYTERLAB_SETTINGS_DIR"]) / package / f"{plugin}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values, indent=1))

    def start(self) -> LabServer:
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
            "--LabApp.expose_app_in_browser=True",
            "--ServerApp.terminals_enabled=False",
            "--ServerApp.allow_root=True",  # containers and CI runners often run as root
            "--LabApp.extension_manager=readonly",  # no PyPI queries from the extension manager
        ]
        with open(self.log_path, "wb") as log:
            # A session of its own, so stop() can signal the server and everything it started at once.
            self.process = subprocess.Popen(
                command, cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._wait_until_ready()
        return self

    def _api(self, path: str, method: str = "GET") -> bytes:
        request = urllib.request.Request(
            f"{self.base_url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.read()

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                self._api("/api/status")
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.5)
        raise RuntimeError(f"jupyter lab did not answer within {self.startup_timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def notebook_url(self, relative_path: str) -> str:
        # `reset` starts from an empty workspace; the token logs the browser in.
        return f"{self.base_url}/lab/tree/{relative_path}?reset&token={self.token}"

    def stop(self) -> None:
        """Shut down kernels and server politely, then make sure nothing of the group is left."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            try:
                self._api("/api/shutdown", method="POST")  # also shuts down the kernels it started
                process.wait(timeout=15)
            except (urllib.error.URLError, ConnectionError, TimeoutError, subprocess.TimeoutExpired):
                pass
            for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
                if process.poll() is not None:
                    break
                try:
                    os.killpg(process.pid, sig)
                    process.wait(timeout=wait)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    pass
        # Kernels run in sessions of their own; after /api/shutdown none should be left.
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LabServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


    def shutdown_kernels(self) -> None:
        """Shut down every running kernel (between notebooks, so two never compete for the CPU)."""
        for kernel in json.loads(self._api("/api/kernels")):
            self._api(f"/api/kernels/{kernel['id']}", method="DELETE")


# --- the page -----------------------------------------------------------------------------------

# The notebook on show; hidden panels (other open documents) keep their DOM.
NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden)"
CODE_PROMPTS = f"{NOTEBOOK} .jp-CodeCell .jp-InputArea-prompt"
# An error output is drawn by the stderr renderer, like any text written to stderr.
STDERR_OUTPUTS = f'{NOTEBOOK} .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
# A top-level widget view in a cell's output.
WIDGET_VIEWS = f"{NOTEBOOK} .jp-OutputArea-output > .jupyter-widgets"
# A plot: a matplotlib figure shown in an Output widget, or an Image widget.
PLOT_IMAGE = ".widget-output img, img.widget-image"
SLIDER_HANDLE = ".widget-slider .noUi-handle"

# The notebook panel on show, in the page's JavaScript.
_PANEL_JS = "window.jupyterapp.shell.currentWidget"


def open_notebook(page, server: LabServer, relative_path: str, timeout_ms: float = 90_000) -> None:
    """Open a notebook in JupyterLab and wait until its kernel has started and is idle."""
    page.goto(server.notebook_url(relative_path), wait_until="domcontentloaded", timeout=timeout_ms)
    page.wait_for_function(
        f"""(path) => {{
            const panel = window.jupyterapp?.shell.currentWidget;
            const session = panel?.sessionContext;
            return panel?.context?.path === path && session?.isReady && session.session?.kernel
                && session.kernelDisplayStatus === 'idle';
        }}""",
        arg=relative_path,
        timeout=timeout_ms,
        polling=250,
    )
    # More room for the notebook, so outputs and widgets are drawn at a readable width.
    page.evaluate("() => window.jupyterapp.shell.collapseLeft()")


def run_all_cells(page, timeout_ms: float) -> bool:
    """Run all cells with JupyterLab's `notebook:run-all-cells` and wait until the run is over.

    Returns the command's result: True when every cell ran, False when a cell failed (the run stops there).
    """
    page.evaluate(
        """() => {
            window.__courseRunAll = undefined;
            window.jupyterapp.commands.execute('notebook:run-all-cells').then(
                (ok) => { window.__courseRunAll = ok === true; },
                (error) => { window.__courseRunAll = false; console.error(error); });
        }"""
    )
    page.wait_for_function(
        f"() => window.__courseRunAll !== undefined && {_PANEL_JS}.sessionContext.kernelDisplayStatus === 'idle'",
        timeout=timeout_ms,
        polling=500,
    )
    return page.evaluate("() => window.__courseRunAll")


def unexecuted_cells(page) -> list[str]:
    """Code cells without an execution count, as 'cell N (prompt)'; N counts code cells from 0."""
    prompts = page.eval_on_selector_all(CODE_PROMPTS, "ps => ps.map(p => p.textContent.trim())")
    return [f"code cell {n} ({text})" for n, text in enumerate(prompts) if not text.strip("[]:").isdigit()]


def error_outputs(page) -> list[str]:
    """Every error output of the notebook on show, as 'cell N: ename: evalue' (N counts all cells from 0).

    Read from the notebook model, where an error is an output of type `error`: on the page it is drawn
    exactly like text written to stderr (a tqdm bar, a warning), so no selector tells them apart.
    """
    return page.evaluate(
        f"""() => {{
            const cells = {_PANEL_JS}.content.model.cells;
            const found = [];
            for (let i = 0; i < cells.length; i++) {{
                const cell = cells.get(i);
                if (cell.type !== 'code') continue;
                for (let j = 0; j < cell.outputs.length; j++) {{
                    const output = cell.outputs.get(j).toJSON();
                    if (output.output_type === 'error') found.push(`cell ${{i}}: ${{output.ename}}: ${{output.evalue}}`);
                }}
            }}
            return found;
        }}"""
    )


def rendered_tracebacks(page) -> list[str]:
    """Tracebacks drawn on the page (stderr-rendered outputs that hold one), first 500 characters each."""
    texts = page.eval_on_selector_all(STDERR_OUTPUTS, "els => els.map(el => el.textContent)")
    return [text[:500] for text in texts if "Traceback (most recent call last)" in text]


def find_explorer(page, css_class: str, timeout_ms: float):
    """Wait for the explorer widget and return a locator for it.

    The explorer is the widget view with class `css_class` (set with `add_class` on its outermost box);
    without one, the first top-level widget view that holds a slider and a plot image. Progress bars
    (tqdm renders them as widgets) hold neither.
    """
    by_class = page.locator(f"{NOTEBOOK} .jupyter-widgets.{css_class}")
    by_shape = page.locator(WIDGET_VIEWS).filter(has=page.locator(".widget-slider")).filter(has=page.locator(PLOT_IMAGE))
    by_class.or_(by_shape).first.wait_for(state="visible", timeout=timeout_ms)
    return by_class.first if by_class.count() else by_shape.first


def plot_source(explorer) -> str:
    """The `src` of the explorer's (first) plot image."""
    return explorer.locator(PLOT_IMAGE).first.get_attribute("src") or ""


def nudge_slider(page, explorer) -> str:
    """Focus the explorer's first slider handle and press one arrow key, as a learner would; return the key.

    ArrowRight moves one step up, unless the slider already sits at its maximum.
    """
    handle = explorer.locator(SLIDER_HANDLE).first
    value, top = handle.get_attribute("aria-valuenow"), handle.get_attribute("aria-valuemax")
    key = "ArrowLeft" if value is not None and value == top else "ArrowRight"
    handle.focus()
    page.keyboard.press(key)
    return key


def wait_for_new_plot(page, explorer, old_src: str, timeout_ms: float) -> str:
    """Wait until the explorer shows a loaded plot image whose source is not `old_src`; return the new one."""
    page.wait_for_function(
        """([root, selector, old]) => {
            const img = root.querySelector(selector);
            return img !== null && img.complete && img.naturalWidth > 0 && img.getAttribute('src') !== old;
        }""",
        arg=[explorer.element_handle(), PLOT_IMAGE, old_src],
        timeout=timeout_ms,
        polling=200,
    )
    return plot_source(explorer)
