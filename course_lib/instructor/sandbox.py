"""Each submission in its own sandbox, and proof afterwards that nothing else changed.

A grading batch lives in one temporary folder (``mkdtemp``, mode 0711: others may pass through
it but not list it). Each submission gets a folder of its own inside it, ``s<k>/``, holding the
restored notebook, an ``.evidence/`` folder for the checks, and its own home and temporary
folders. The kernel starts in that folder, so its working directory is inside the copy.

**Separate users.** When the grader runs as root, each submission's folder belongs to a user id
of its own (``FIRST_UID + k``, one that no account uses, mode 0700), and the kernel is started
through :func:`launch`, which drops to that user before it becomes the kernel. The kernel can
then read the course's environment but not write to it: not course_lib's source, not the
site-packages (no ``.pth`` file or patched nbval can outlive it), not the repository, not the
submissions, and not another learner's sandbox (each is another user's, mode 0700). When the
grader is not root, or the environment is not readable by other users, kernels run as the
grader's own user: say so loudly, and rely on the check below, which then catches what the
kernel wrote instead of preventing it.

**Limits.** :func:`launch` also sets, before the kernel starts, a memory limit
(``RLIMIT_AS``, default ``DEFAULT_MEMORY`` bytes), a limit on file size and processes, and no
core dumps. The cell timeout is nbval's (``--nbval-cell-timeout``).

**Proof.** :func:`fingerprint` records every file under the guarded paths (course_lib, the
site-packages, the repository, the submissions): size, modification and status-change times
(``st_ctime`` cannot be set back by a user), mode, owner, and a SHA-256 of the content for the
small trees. :func:`changes` compares two fingerprints; the batch fails when they differ.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import resource
import shutil
import site
import stat
import sys
import sysconfig
import tempfile
from collections.abc import Sequence
from pathlib import Path

DEFAULT_MEMORY = 4 * 2**30  # bytes of address space per kernel: torch and a course model fit
FIRST_UID = 200_000  # kernels run as FIRST_UID + k; ids no account on the machine uses
KERNEL_NAME = "course-sandbox"
FILE_SIZE_LIMIT = 256 * 2**20  # no single file a kernel writes may be larger
PROCESS_LIMIT = 512  # processes and threads of one kernel's user
RUN_SEED_VARIABLE = "COURSE_GRADING_RUN_SEED"
# The names course_lib.checks.evidence reads (not imported here: that would import torch into
# a launcher that is replaced by the kernel a moment later).
EVIDENCE_VARIABLE = "COURSE_GRADING_EVIDENCE"
SEED_VARIABLE = "COURSE_GRADING_SEED"
MEMORY_VARIABLE = "COURSE_GRADING_MEMORY"
EVIDENCE_FOLDER = ".evidence"
_SKIPPED_IN_REPOSITORY = {
    ".git",
    "__pycache__",
    ".ruff_cache",
    ".pytest_cache",
    ".ipynb_checkpoints",
}


# --- who runs the kernels ------------------------------------------------------------------------


def _readable_by_others(path: Path) -> bool:
    """True when a user with no special rights can read ``path`` (all folders above passable)."""
    path = path.resolve()
    for folder in [path, *path.parents]:
        try:
            mode = folder.stat().st_mode
        except OSError:
            return False
        if stat.S_ISDIR(mode) and not mode & stat.S_IXOTH:
            return False
    return bool(path.stat().st_mode & stat.S_IROTH)


def environment_paths() -> list[Path]:
    """What a kernel must read: the interpreter, the standard library, site-packages, course_lib."""
    import course_lib

    paths = {Path(sys.executable).resolve(), Path(sysconfig.get_paths()["stdlib"]).resolve()}
    paths |= {Path(p).resolve() for p in site_packages()}
    paths.add(Path(course_lib.__file__).resolve().parent)
    return sorted(path for path in paths if path.exists())


CAP_DAC_READ_SEARCH = 2  # linux/capability.h: read any file, whatever its mode


def _has_capability(number: int) -> bool:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapBnd:"):
                return bool(int(line.split()[1], 16) >> number & 1)
    except (OSError, ValueError):
        pass
    return False


def separate_users_possible() -> tuple[bool, str]:
    """Whether kernels can run as users of their own, and how (the line the table ends with)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return False, (
            "the grader is not root, so kernels run as the grader's own user: only the "
            "before-and-after check protects the environment"
        )
    unreadable = [str(path) for path in environment_paths() if not _readable_by_others(path)]
    if not unreadable:
        return True, "each kernel ran as a user of its own"
    if _has_capability(CAP_DAC_READ_SEARCH):
        return True, (
            f"each kernel ran as a user of its own that may read every file, because other "
            f"users cannot read {unreadable[0]}"
        )
    return False, f"other users cannot read {unreadable[0]}, so kernels run as root"


def _keep_read_capability() -> None:
    """After setuid, keep only CAP_DAC_READ_SEARCH, also across execve (an ambient capability)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    bit = 1 << CAP_DAC_READ_SEARCH
    data = (ctypes.c_uint32 * 6)(bit, bit, bit, 0, 0, 0)  # effective, permitted, inheritable
    if libc.capset(header, data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")
    if libc.prctl(47, 2, CAP_DAC_READ_SEARCH, 0, 0) != 0:  # PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE
        raise OSError(ctypes.get_errno(), "prctl(PR_CAP_AMBIENT_RAISE) failed")


def free_uid(index: int) -> int:
    """A user id for submission ``index`` that no account on this machine has."""
    uid = FIRST_UID + index
    while True:
        try:
            pwd.getpwuid(uid)
        except KeyError:
            return uid
        uid += 100_000


# --- the batch folder and one sandbox per submission ----------------------------------------------


def make_batch_folder() -> Path:
    """The batch's temporary folder, with the kernel spec the sandboxed kernels start from."""
    batch = Path(tempfile.mkdtemp(prefix="course-grading-"))
    batch.chmod(0o711)
    kernels = batch / "jupyter" / "kernels" / KERNEL_NAME
    kernels.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "course_lib.instructor.sandbox", "{connection_file}"],
        "display_name": "Python 3 (course grading sandbox)",
        "language": "python",
        "interrupt_mode": "signal",
    }
    (kernels / "kernel.json").write_text(json.dumps(spec, indent=1), encoding="utf-8")
    (batch / "runtime").mkdir(mode=0o700)
    (batch / "pytest.ini").write_text("[pytest]\nxfail_strict = true\n", encoding="utf-8")
    return batch


def make_sandbox(batch: Path, index: int, name: str, text: str, uid: int | None) -> Path:
    """Folder ``s<index>`` with the notebook ``name``; owned by ``uid`` when one is given."""
    folder = batch / f"s{index}"
    folder.mkdir(mode=0o700)
    for sub in (EVIDENCE_FOLDER, ".home", ".tmp"):
        (folder / sub).mkdir(mode=0o700)
    (folder / name).write_text(text, encoding="utf-8")
    if uid is not None:
        for path in [folder, *folder.iterdir()]:
            os.chown(path, uid, uid)
    return folder


def remove_batch_folder(batch: Path) -> None:
    shutil.rmtree(batch, ignore_errors=True)  # rmtree does not follow a kernel's symlinks


# --- the kernel launcher -------------------------------------------------------------------------


def launch(connection_file: str) -> None:
    """Become the kernel of the sandbox in the current folder: limits, user, then ipykernel.

    jupyter_client starts this (the kernel spec's argv) in the sandbox folder, as the grader's
    user. It copies the connection file into the sandbox (the original is readable by the grader
    only), sets the limits, drops to the sandbox's owner when that is not the grader, and
    replaces itself with ``python -m ipykernel_launcher``, so the kernel keeps this process id.
    """
    folder = Path.cwd()
    owner = folder.stat().st_uid
    private = folder / ".home" / "kernel-connection.json"
    private.write_bytes(Path(connection_file).read_bytes())
    private.chmod(0o600)
    env = dict(os.environ)
    run_seed = env.pop(RUN_SEED_VARIABLE, "0")
    env.update(
        {
            EVIDENCE_VARIABLE: str(folder / EVIDENCE_FOLDER),
            SEED_VARIABLE: str(notebook_seed(int(run_seed), folder.name)),
            "HOME": str(folder / ".home"),
            "TMPDIR": str(folder / ".tmp"),
            "IPYTHONDIR": str(folder / ".home" / ".ipython"),
            "MPLCONFIGDIR": str(folder / ".home" / ".matplotlib"),
            "XDG_CACHE_HOME": str(folder / ".home" / ".cache"),
            "JUPYTER_RUNTIME_DIR": str(folder / ".home" / "runtime"),
            "PYTHONDONTWRITEBYTECODE": "1",
            "COURSE_DEVICE": "cpu",
        }
    )
    env.setdefault("OMP_NUM_THREADS", "1")
    env.pop("JUPYTER_PATH", None)
    memory = int(env.get(MEMORY_VARIABLE, DEFAULT_MEMORY))
    for limit, value in (
        (resource.RLIMIT_AS, memory),
        (resource.RLIMIT_FSIZE, FILE_SIZE_LIMIT),
        (resource.RLIMIT_CORE, 0),
    ):
        resource.setrlimit(limit, (value, value))
    if owner != os.geteuid():
        import ctypes

        needs_read = not all(_readable_by_others(path) for path in environment_paths())
        os.chown(private, owner, owner)
        resource.setrlimit(resource.RLIMIT_NPROC, (PROCESS_LIMIT, PROCESS_LIMIT))
        if needs_read:
            ctypes.CDLL(None).prctl(8, 1, 0, 0, 0)  # PR_SET_KEEPCAPS: keep them across setuid
        os.setgroups([])
        os.setgid(owner)
        os.setuid(owner)
        if needs_read:
            _keep_read_capability()
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", str(private)]
    os.execve(sys.executable, argv, env)


def notebook_seed(run_seed: int, sandbox_name: str) -> int:
    """The seed of one notebook in a grading run: the run's secret seed and its sandbox."""
    digest = hashlib.sha256(f"{run_seed}:{sandbox_name}".encode()).digest()
    return int.from_bytes(digest[:6], "big")


# --- proof that nothing outside the sandboxes changed ---------------------------------------------


def site_packages() -> list[str]:
    paths = set(site.getsitepackages()) | {sysconfig.get_paths()["purelib"]}
    paths.add(site.getusersitepackages())  # absent is recorded too: a kernel must not create it
    return sorted(paths)


def default_guards(extra: Sequence[Path] = ()) -> list[tuple[Path, bool]]:
    """(path, hash contents?) for everything a grading run must leave as it was."""
    import course_lib

    package = Path(course_lib.__file__).resolve().parent
    guards = [(package, True)]
    guards += [(Path(p), False) for p in site_packages()]
    repository = package.parent
    if (repository / "pyproject.toml").exists():
        guards.append((repository, False))
    guards += [(Path(p).resolve(), True) for p in extra]
    return guards


def fingerprint(guards: list[tuple[Path, bool]], exclude: Sequence[Path] = ()) -> dict[str, tuple]:
    """What every file under the guarded paths looks like now (see the module docstring)."""
    excluded = {str(Path(p).resolve()) for p in exclude}
    prints: dict[str, tuple] = {}
    for root, contents in guards:
        root = Path(root)
        if not root.exists():
            prints[str(root)] = ("absent",)
            continue
        in_repository = (root / "pyproject.toml").exists() and not contents
        for folder, dirs, files in os.walk(root):
            if in_repository:
                dirs[:] = [d for d in dirs if d not in _SKIPPED_IN_REPOSITORY]
            for name in [*files, *dirs]:
                path = os.path.join(folder, name)
                if path in excluded or path in prints:
                    continue
                try:
                    info = os.lstat(path)
                except OSError:
                    continue
                entry: tuple = (
                    info.st_size,
                    info.st_mtime_ns,
                    info.st_ctime_ns,
                    info.st_mode,
                    info.st_uid,
                )
                if contents and stat.S_ISREG(info.st_mode):
                    with open(path, "rb") as handle:
                        entry += (hashlib.sha256(handle.read()).hexdigest(),)
                prints[path] = entry
            dirs[:] = [d for d in dirs if os.path.join(folder, d) not in excluded]
    return prints


def changes(before: dict[str, tuple], after: dict[str, tuple]) -> list[str]:
    """What differs between two fingerprints: 'added X', 'removed X', 'changed X'."""
    found = [f"added {path}" for path in sorted(set(after) - set(before))]
    found += [f"removed {path}" for path in sorted(set(before) - set(after))]
    found += [
        f"changed {path}"
        for path in sorted(set(before) & set(after))
        if before[path] != after[path]
    ]
    return found


if __name__ == "__main__":
    launch(sys.argv[1])
