"""The three descriptions of the course environment agree, and repo2docker can build it.

``pyproject.toml`` gives the ranges course_lib works with, ``constraints.txt`` the exact versions
the course is tested with, and ``environment.yml`` the same packages for conda, Binder and
JupyterHub (repo2docker builds the image from it and then runs ``postBuild``). These tests read
the files only; they install nothing.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]

TORCH_VERSION = "2.13.0"
PYTHON_VERSION = "3.11"

# conda-forge names for packages whose PyPI name differs.
CONDA_TO_PYPI = {
    "pytorch": "torch",
    "matplotlib-base": "matplotlib",
    "playwright-python": "playwright",
    "nbconvert-core": "nbconvert",
}
# In environment.yml only: the interpreter, pip (postBuild uses it) and nbgitpuller (JupyterHub).
ENVIRONMENT_ONLY = {"python", "pip", "nbgitpuller"}

# What repo2docker reads to pick the Python version (repo2docker/buildpacks/conda/__init__.py).
REPO2DOCKER_PYTHON_REGEX = re.compile(r"python\s*=+\s*([\d\.]*)")


def read_pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def by_name(lines: list[str]) -> dict[str, Requirement]:
    """Requirement lines (`name>=1,<2`, `name==1.0`) as {canonical name: Requirement}."""
    requirements = [Requirement(line) for line in lines]
    return {canonicalize_name(r.name): r for r in requirements}


def pyproject_requirements() -> dict[str, Requirement]:
    """Runtime dependencies and the `test` extra, by canonical name."""
    project = read_pyproject()["project"]
    return by_name(project["dependencies"] + project["optional-dependencies"]["test"])


def constraint_lines() -> list[str]:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


def constraints() -> dict[str, Version]:
    """constraints.txt as {canonical name: pinned version}; assumes every line is `name==X`."""
    pins = {}
    for name, requirement in by_name(constraint_lines()).items():
        (specifier,) = requirement.specifier
        pins[name] = Version(specifier.version)
    return pins


def read_environment() -> dict:
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def conda_specs() -> dict[str, str]:
    """The conda dependencies of environment.yml as {conda name: version-and-build spec}."""
    specs = {}
    for dependency in read_environment()["dependencies"]:
        if isinstance(dependency, str):
            name, spec = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*(.*)", dependency).groups()
            specs[name.lower()] = spec.strip()
    return specs


def pypi_name(conda_name: str) -> str:
    """The canonical PyPI name of a conda-forge package."""
    return canonicalize_name(CONDA_TO_PYPI.get(conda_name, conda_name))


def assert_same_packages(names: set[str], where: str, expected: set[str], source: str) -> None:
    """``names`` (read from ``where``) must be exactly ``expected`` (read from ``source``)."""
    assert names == expected, (
        f"in {source} but not in {where}: {sorted(expected - names)}; "
        f"in {where} but not in {source}: {sorted(names - expected)}"
    )


def conda_version_spec(spec: str) -> tuple[SpecifierSet, str | None]:
    """Turn a conda spec such as `=2.13.0=cpu_*`, `>=4` or `>=1,<2` into a PEP 440 set and a build.

    conda's `=X` means "X or any release starting with X", which PEP 440 writes `==X.*`.
    """
    if not spec:
        return SpecifierSet(), None
    if spec.startswith("=") and not spec.startswith("=="):
        version, _, build = spec[1:].partition("=")
        return SpecifierSet(f"=={version}.*"), build or None
    version, _, build = spec.partition(" ")  # conda's "VERSION BUILD" form, e.g. ">=2.3 cpu_*"
    return SpecifierSet(version), build.strip() or None


def test_constraints_are_exact_pins():
    lines = constraint_lines()
    assert lines, "constraints.txt pins nothing"
    for line in lines:
        requirement = Requirement(line)
        specifiers = list(requirement.specifier)
        assert len(specifiers) == 1 and specifiers[0].operator == "==", (
            f"constraints.txt: {line!r} must pin one exact version with =="
        )
        assert "*" not in specifiers[0].version, f"constraints.txt: {line!r} uses a wildcard"
        assert not requirement.extras and requirement.marker is None, (
            f"constraints.txt: {line!r} must be a plain `name==version`"
        )
    names = [canonicalize_name(Requirement(line).name) for line in lines]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    assert not duplicates, f"constraints.txt pins these more than once: {duplicates}"


def test_constraints_pin_torch():
    assert constraints().get("torch") == Version(TORCH_VERSION), (
        f"constraints.txt must pin torch=={TORCH_VERSION}, the version the course is tested with"
    )


def test_constraints_and_pyproject_name_the_same_packages():
    assert_same_packages(
        set(constraints()), "constraints.txt", set(pyproject_requirements()), "pyproject.toml"
    )


def test_pinned_versions_are_inside_the_pyproject_ranges():
    pins = constraints()
    for name, requirement in pyproject_requirements().items():
        if name in pins:
            assert requirement.specifier.contains(pins[name], prereleases=True), (
                f"constraints.txt pins {name}=={pins[name]}, outside pyproject.toml's "
                f"range {requirement}"
            )


def test_pyproject_package_settings():
    pyproject = read_pyproject()
    project = pyproject["project"]
    assert SpecifierSet(project["requires-python"]) == SpecifierSet(">=3.11")
    assert pyproject["tool"]["setuptools"]["packages"]["find"]["include"] == ["course_lib*"]
    plugins = project["entry-points"]["pytest11"]
    assert plugins == {"course_grading": "course_lib.instructor.plugin"}
    pytest_options = pyproject["tool"]["pytest"]["ini_options"]
    assert pytest_options["testpaths"] == ["tests"]
    markers = {marker.split(":")[0] for marker in pytest_options["markers"]}
    assert {"browser", "cuda", "slow"} <= markers
    for folder in ("notebooks", "solutions", "exercises"):
        assert folder not in pytest_options.get("addopts", ""), (
            f"{folder}/ belongs on the command line (the Makefile passes it), not in addopts"
        )


def test_environment_yml_parses_as_repo2docker_needs():
    environment = read_environment()
    assert isinstance(environment, dict), "environment.yml must be a mapping"
    assert environment.get("name"), "environment.yml needs a name for `conda env create`"
    channels = environment.get("channels")
    assert channels and channels[0] == "conda-forge", f"conda-forge must come first: {channels}"
    assert "defaults" not in channels, "mixing `defaults` with conda-forge breaks solves"
    dependencies = environment.get("dependencies")
    assert isinstance(dependencies, list) and dependencies
    for dependency in dependencies:
        if isinstance(dependency, dict):
            assert set(dependency) == {"pip"}, f"unexpected dependency entry: {dependency}"
            assert isinstance(dependency["pip"], list)
        else:
            assert isinstance(dependency, str), f"unexpected dependency entry: {dependency!r}"


def test_environment_yml_python_version():
    found = [
        match.group(1)
        for dependency in read_environment()["dependencies"]
        if isinstance(dependency, str) and (match := REPO2DOCKER_PYTHON_REGEX.match(dependency))
    ]
    assert found == [PYTHON_VERSION], (
        f"environment.yml must ask for python={PYTHON_VERSION} once (repo2docker reads it); "
        f"found {found}"
    )


def test_environment_yml_names_the_same_packages():
    conda_names = set(conda_specs())
    missing_extras = ENVIRONMENT_ONLY - conda_names
    assert not missing_extras, f"environment.yml lacks {sorted(missing_extras)}"
    as_pypi = {pypi_name(name) for name in conda_names - ENVIRONMENT_ONLY}
    assert_same_packages(
        as_pypi, "environment.yml", set(pyproject_requirements()), "pyproject.toml"
    )


def test_environment_yml_versions_admit_the_tested_ones():
    pins = constraints()
    for conda_name, spec in conda_specs().items():
        if conda_name in ENVIRONMENT_ONLY:
            continue
        name = pypi_name(conda_name)
        specifier, _ = conda_version_spec(spec)
        assert specifier.contains(pins[name], prereleases=True), (
            f"environment.yml asks for {conda_name}{spec}, which excludes the tested "
            f"{name}=={pins[name]}"
        )


def test_environment_yml_asks_for_cpu_pytorch_including_the_tested_version():
    # conda-forge publishes PyTorch releases weeks to months after PyPI, so an exact pin would
    # break Binder until it catches up: a range that contains the tested version, CPU build.
    specs = conda_specs()
    assert "pytorch" in specs, "environment.yml must install PyTorch as conda-forge's `pytorch`"
    assert "torch" not in specs, "`torch` is PyPI's name; conda-forge's package is `pytorch`"
    specifier, build = conda_version_spec(specs["pytorch"])
    assert TORCH_VERSION in specifier, (
        f"pytorch's range must include {TORCH_VERSION} (constraints.txt), got {specs['pytorch']!r}"
    )
    assert not specifier.contains("3.0"), f"pytorch needs an upper bound, got {specs['pytorch']!r}"
    assert build is not None and build.startswith("cpu"), (
        f"pytorch must be the CPU build (build string cpu_*), got {specs['pytorch']!r}"
    )


def test_environment_yml_has_no_local_pip_install():
    # A local pip requirement (`-e .`) stops repo2docker from caching the conda environment
    # across changes to the course; postBuild installs course_lib instead.
    for dependency in read_environment()["dependencies"]:
        if isinstance(dependency, dict):
            for line in dependency["pip"]:
                target = re.sub(r"^(-e|--editable)\s+", "", line.strip())
                assert not target.startswith((".", "/")), (
                    f"environment.yml pip entry {line!r}: install course_lib in postBuild"
                )


def test_postbuild_installs_course_lib():
    postbuild = ROOT / "postBuild"
    assert postbuild.is_file(), "repo2docker needs postBuild to install course_lib"
    assert os.access(postbuild, os.X_OK), "postBuild must be executable (chmod +x postBuild)"
    text = postbuild.read_text()
    assert text.startswith("#!"), "postBuild needs a shebang line"
    assert re.search(r"^set -e", text, re.MULTILINE), "postBuild must stop at the first error"
    install = re.search(r"^\s*python -m pip install (.*)$", text, re.MULTILINE)
    assert install, "postBuild must `python -m pip install` course_lib"
    arguments = install.group(1).split()
    assert "." in arguments, "postBuild must install the repository itself (`.`)"
    assert "--no-deps" in arguments, (
        "postBuild must pass --no-deps, so pip leaves conda's packages (pytorch) alone"
    )


def test_ci_script_runs_the_readme_test_command():
    script = ROOT / ".ci" / "run"
    assert os.access(script, os.X_OK), ".ci/run must be executable"
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in text
    assert re.search(r"^make test$", text, re.MULTILINE), ".ci/run must run `make test`"
    assert "make test" in (ROOT / "README.md").read_text(), "the README must name `make test`"


@pytest.mark.parametrize(
    ("spec", "version", "expected"),
    [
        ("=2.13.0=cpu_*", "2.13.0", True),
        ("=2.13.0=cpu_*", "2.14.0", False),
        ("=3.11", "3.11.7", True),
        (">=4", "4.6.6", True),
        (">=4", "3.9", False),
        ("", "1.0", True),
    ],
)
def test_conda_version_spec(spec, version, expected):
    """The helper that reads conda specs, so the checks above can fail for the right reason."""
    specifier, _ = conda_version_spec(spec)
    assert specifier.contains(Version(version)) is expected
