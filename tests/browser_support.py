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
        env.pop("JUPYTER_PATH", None)
        env.pop("JUPYTER_TOKEN", None)
        return env

    # 2. A `python3` kernelspec for this interpreter, found before the one installed in the venv.
    def _write_kernelspec(self, env: dict[str, str]) -> None:
        kernel_dir = Path(env["JUPYTER_DATA_DIR"]) / "kernels" / "python3"
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


# --- the page -----------------------------------------------------------------------------------

KERNEL_INDICATOR = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator"
CODE_PROMPTS = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputArea-prompt"


def open_notebook(page, server: LabServer, relative_path: str, timeout_ms: float = 60_000) -> None:
    """Open a notebook and wait until its kernel is idle (started and connected)."""
    page.goto(server.notebook_url(relative_path), wait_until="domcontentloaded", timeout=timeout_ms)
    page.wait_for_function("() => window.jupyterapp !== undefined", timeout=timeout_ms)
    page.wait_for_selector(f"{KERNEL_INDICATOR}[data-status='idle']", timeout=timeout_ms)


def run_all_cells(page, timeout_ms: float) -> None:
    """Run all cells with JupyterLab's own command; wait until every code cell has run and the kernel is idle."""
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    page.wait_for_function(
        """([indicator, prompts]) => {
            const status = document.querySelector(indicator)?.getAttribute('data-status');
            const texts = Array.from(document.querySelectorAll(prompts), (p) => p.textContent.trim());
            return status === 'idle' && texts.length > 0 && texts.every((t) => /^\\[\\d+\\]:$/.test(t));
        }""",
        arg=[KERNEL_INDICATOR, CODE_PROMPTS],
        timeout=timeout_ms,
        polling=500,
    )


def unexecuted_cells(page) -> list[str]:
    """The prompts of code cells that have no execution count (for failure messages)."""
    texts = page.eval_on_selector_all(CODE_PROMPTS, "ps => ps.map(p => p.textContent.trim())")
    return [f"cell {index}: {text!r}" for index, text in enumerate(texts) if not text[1:-2].isdigit()]


def error_outputs(page) -> list[str]:
    """Every error output of the open notebook, as 'cell N: ename: evalue'.

    Read from the notebook model, where an error is an output of type `error`; on screen it is drawn
    by the stderr renderer, indistinguishable by selector from a progress bar written to stderr.
    """
    return page.evaluate(
        """() => {
            const panel = window.jupyterapp.shell.currentWidget;
            const found = [];
            const cells = panel.content.model.cells;
            for (let i = 0; i < cells.length; i++) {
                const cell = cells.get(i);
                if (cell.type !== 'code') continue;
                for (let j = 0; j < cell.outputs.length; j++) {
                    const output = cell.outputs.get(j).toJSON();
                    if (output.output_type === 'error') found.push(`cell ${i}: ${output.ename}: ${output.evalue}`);
                }
            }
            return found;
        }"""
    )


def rendered_tracebacks(page) -> list[str]:
    """Outputs drawn on the page whose text looks like a Python traceback (a second, DOM-side check)."""
    return page.evaluate(
        """() => Array.from(document.querySelectorAll(
                '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'))
            .map((el) => el.textContent)
            .filter((text) => /Traceback \\(most recent call last\\)|^\\s*\\w+(Error|Exception)\\b/m.test(text))
            .map((text) => text.slice(0, 400))"""
    )


def explorer_locator(page, css_class: str):
    """The explorer widget: the widget view with the given class, else the first widget view that holds
    both a slider and a widget Output with an image (tqdm progress bars are widgets too, without either)."""
    by_class = page.locator(f".jp-NotebookPanel:not(.lm-mod-hidden) .jupyter-widgets.{css_class}")
    if by_class.count() > 0:
        return by_class.first
    views = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output > .jupyter-widgets")
    return views.filter(has=page.locator(".widget-slider")).filter(has=page.locator(".widget-output img")).first


def plot_source(explorer) -> str:
    """The `src` of the (first) plot image inside the explorer's Output widget."""
    return explorer.locator(".widget-output img").first.get_attribute("src") or ""


def nudge_slider(page, explorer) -> str:
    """Focus the explorer's first slider handle and press an arrow key; return the key pressed.

    ArrowRight, unless the slider already sits at its maximum.
    """
    handle = explorer.locator(".widget-slider .noUi-handle").first
    now, top = handle.get_attribute("aria-valuenow"), handle.get_attribute("aria-valuemax")
    key = "ArrowLeft" if now is not None and now == top else "ArrowRight"
    handle.focus()
    page.keyboard.press(key)
    return key


def wait_for_new_plot(page, explorer, old_src: str, timeout_ms: float) -> str:
    """Wait until the explorer shows a plot image whose source differs from `old_src`; return it."""
    handle = explorer.element_handle()
    page.wait_for_function(
        """([root, old]) => {
            const img = root.querySelector('.widget-output img');
            return img !== null && img.complete && img.getAttribute('src') !== old;
        }""",
        arg=[handle, old_src],
        timeout=timeout_ms,
        polling=200,
    )
    return plot_source(explorer)
