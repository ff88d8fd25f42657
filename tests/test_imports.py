"""The layout's rules, read from the source with ``ast`` (nothing is imported): no import circles, nothing imported
from a room above, no private name imported across modules, and ``rladder_stream.envs`` a leaf.

A room is a folder (docs/design.md#the-layout): a module's room is the subpackage it sits in (``rladder_stream.model``,
``rladder_stream.streaming``, ...; the repository's ``envs/`` and ``export/``, installed as ``rladder_stream.envs`` and
``rladder_stream.export``); the modules directly in ``rladder_stream/`` are the base, a room of their own, apart
from the package's ``__init__`` and ``__main__``, the front door. Rooms, bottom to top: envs; base; model;
streaming; training; export and reproduce (beside each other, neither imports the other); apps; the front door.
Every import counts, at the top of a module or inside a function, including those only for type checkers.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "rladder_stream"
#: installed package name -> its folder in the repository (pyproject.toml's package-dir; test_packaging checks it)
FOLDERS = {PACKAGE: ROOT / "rladder_stream", f"{PACKAGE}.envs": ROOT / "envs", f"{PACKAGE}.export": ROOT / "export"}
BASE, FRONT = "base", "front door"
#: room (a subpackage's name, or the base, or the front door) -> its level; rooms at one level import neither other
LEVEL = {"envs": 0, BASE: 1, "model": 2, "streaming": 3, "training": 4, "export": 5, "reproduce": 5, "apps": 6,
         FRONT: 7}
#: what envs may import besides the standard library and itself: at the top of a module, and inside a function
#: (optional readers: the MATLAB form of the music data, downloads)
ENVS_TOP_LEVEL = {"numpy", "gymnasium", "PIL", "mido"}
ENVS_LAZY = ENVS_TOP_LEVEL | {"scipy", "pooch"}


def project_modules() -> dict[str, Path]:
    """Every module of the installed package, by its installed name."""
    found = {}
    for package, folder in FOLDERS.items():
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            if any(not (folder.joinpath(*parts[:i]) / "__init__.py").is_file() for i in range(len(parts))):
                continue  # scripts in data folders (envs/embedded) are not modules of the package
            if package == PACKAGE and parts[0] in ("envs", "export"):
                continue  # not installed under these names: pyproject's package-dir gives them the root folders
            name = ".".join((package, *parts))
            found[name.removesuffix(".__init__")] = path
    return found


MODULES = project_modules()


def room_of(module: str) -> str:
    """The room of a module: the first subpackage below ``rladder_stream`` that holds it; a module directly in
    the package is the base, its ``__init__`` and ``__main__`` the front door."""
    parts = module.split(".")
    if module in (PACKAGE, f"{PACKAGE}.__main__"):
        return FRONT
    if len(parts) == 2 and MODULES[module].name != "__init__.py":
        return BASE
    return parts[1]


def imports_of(module: str, path: Path) -> list[tuple[str, str, int, bool]]:
    """``(imported module, imported name or "", line, at top level)`` for every import in a module; relative
    imports resolved, ``from package import submodule`` counted as the submodule."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    top_level = {id(node) for node in tree.body}
    top_level |= {id(n) for node in tree.body if isinstance(node, (ast.If, ast.Try)) for n in ast.walk(node)}
    found = []
    for node in ast.walk(tree):
        top = id(node) in top_level
        if isinstance(node, ast.Import):
            found += [(alias.name, "", node.lineno, top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append((sub, "", node.lineno, top) if sub in MODULES else (base, alias.name, node.lineno, top))
    return found


def project_graph() -> dict[str, set[str]]:
    graph = {}
    for module, path in MODULES.items():
        graph[module] = {target for target, _, _, _ in imports_of(module, path) if target in MODULES and target != module}
    return graph


def test_every_room_is_a_folder_with_a_level():
    """Every subpackage of ``rladder_stream`` (and envs, export) is a room with a level: a new folder needs a place
    in :data:`LEVEL` (and in the README's and docs/design.md's layouts), and every room there is a folder."""
    rooms = {room_of(module) for module in MODULES}
    assert rooms == set(LEVEL), f"rooms without a level: {sorted(rooms - set(LEVEL))}; levels without a room: {sorted(set(LEVEL) - rooms)}"
    folders = {module.split(".")[1] for module, path in MODULES.items() if path.name == "__init__.py" and module.count(".") == 1}
    assert folders == set(LEVEL) - {BASE, FRONT}


def test_rooms_of_some_modules():
    """The rule read on known modules (the rule, not a list, decides every other)."""
    assert room_of("rladder_stream.model.config") == "model"
    assert room_of("rladder_stream.streaming.predictor") == "streaming"
    assert room_of("rladder_stream.training.train") == "training"
    assert room_of("rladder_stream.envs.data.music") == "envs"
    assert room_of("rladder_stream.errors") == BASE
    assert room_of("rladder_stream.training") == "training"
    assert room_of("rladder_stream") == room_of("rladder_stream.__main__") == FRONT


def test_no_import_circles():
    graph, state, cycles = project_graph(), {}, []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(trail[trail.index(nxt):] + [node, nxt]) if nxt in trail else f"{node} -> {nxt}")
            elif nxt not in state:
                visit(nxt, trail + [node])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [])
    assert not cycles, "import circles:\n" + "\n".join(cycles)


def test_nothing_is_imported_from_a_room_above():
    upward = []
    for module, targets in project_graph().items():
        here = room_of(module)
        for target in targets:
            there = room_of(target)
            if LEVEL[there] > LEVEL[here] or (LEVEL[there] == LEVEL[here] and there != here):
                upward.append(f"{module} ({here}) imports {target} ({there})")
    assert not upward, "\n".join(sorted(upward))


def test_only_the_apps_import_export():
    importers = {module for module, targets in project_graph().items()
                 if any(room_of(t) == "export" for t in targets) and room_of(module) not in ("export", "apps", FRONT)}
    assert not importers


def test_no_private_name_is_imported_across_modules():
    private = []
    for module, path in MODULES.items():
        for target, name, line, _ in imports_of(module, path):
            if not target.startswith(PACKAGE):
                continue
            parts = target.split(".") + ([name] if name else [])
            if any(p.startswith("_") and not p.startswith("__") for p in parts):
                private.append(f"{path.relative_to(ROOT)}:{line} imports {'.'.join(parts)}")
    assert not private, "\n".join(private)


def test_envs_is_a_leaf():
    """The environments import numpy, Gymnasium, Pillow, mido, the standard library and each other only."""
    wrong = []
    for module, path in MODULES.items():
        if room_of(module) != "envs":
            continue
        for target, _, line, top in imports_of(module, path):
            first = target.split(".")[0]
            allowed = ENVS_TOP_LEVEL if top else ENVS_LAZY
            inside = target.startswith(f"{PACKAGE}.envs")
            if not (inside or first in sys.stdlib_module_names or first in allowed):
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {target}{'' if top else ' (in a function)'}")
    assert not wrong, "\n".join(wrong)


def test_the_layouts_name_every_room_and_every_module_and_only_those():
    """README's "Layout" names every room's folder; docs/design.md's "The layout" names every room's folder and
    every module of the package (``__init__``/``__main__`` aside), and every file it names exists."""
    readme = (ROOT / "README.md").read_text().split("## Layout", 1)[1].split("```")[1]
    block = (ROOT / "docs" / "design.md").read_text().split("## The layout", 1)[1].split("```")[1]
    named = set(re.findall(r"\b([a-z_0-9]+\.py)\b", block))
    files = {path.name for path in MODULES.values()}
    missing = sorted(files - named - {"__init__.py", "__main__.py"})
    rooms = {module.split(".")[1] for module, path in MODULES.items() if path.name == "__init__.py" and module.count(".") == 1}
    unnamed = sorted(room for room in rooms if f"{room}/" not in block or f"{room}/" not in readme)
    assert not unnamed, f"room folders the README's or docs/design.md's layout does not name: {unnamed}"
    absent = sorted(named - files - {"build_support.py"})
    assert not missing, f"modules docs/design.md's layout does not name: {missing}"
    assert not absent and (ROOT / "build_support.py").is_file(), f"files docs/design.md's layout names that do not exist: {absent}"


@pytest.mark.parametrize("module", ["rladder_stream", "rladder_stream.envs", "rladder_stream.model.config"])
def test_light_imports_stay_light(module):
    """``import rladder_stream`` (which every start-up runs in an installed environment, to register the
    environments with Gymnasium), ``import rladder_stream.envs`` and the configurations (plain data) load
    neither torch nor onnx."""
    import subprocess

    code = f"import sys, {module}; print(sorted(m for m in ('torch', 'onnx', 'onnxruntime') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
