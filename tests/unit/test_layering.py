"""Import direction rules: the emulator shares nothing with the client; errors.py is stdlib-only."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import syncagent

PACKAGE = Path(syncagent.__file__).parent
# urllib3 is requests' own transport: a streamed body's errors come from it directly
HTTP_LIBRARIES = {"requests", "requests_toolbelt", "urllib3"}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_emulator_never_imports_the_client_package() -> None:
    modules = sorted((PACKAGE / "emulator").glob("*.py"))
    assert len(modules) > 5
    for module in modules:
        bad = {name for name in _imports(module) if name.startswith("syncagent.pan123")}
        assert not bad, f"{module.name} imports {bad}"


def test_emulator_imports_only_stdlib_and_itself() -> None:
    # cryptography: the emulator's --tls makes its own CA and certificate (emulator/tls.py);
    # the stdlib's ssl serves TLS but cannot make certificates.
    allowed_third_party = {"platformdirs", "cryptography"}
    for module in (PACKAGE / "emulator").glob("*.py"):
        for name in _imports(module):
            top = name.split(".")[0]
            if top == "syncagent":
                assert name.startswith(
                    ("syncagent.emulator", "syncagent.errors", "syncagent.cli")
                ), (module.name, name)
            else:
                assert top in sys.stdlib_module_names or top in allowed_third_party, (
                    module.name,
                    name,
                )


def test_errors_module_is_stdlib_only() -> None:
    for name in _imports(PACKAGE / "errors.py"):
        assert name.split(".")[0] in sys.stdlib_module_names | {"__future__"}, name


def test_client_package_imports_only_errors_and_itself() -> None:
    modules = sorted((PACKAGE / "pan123").glob("*.py"))
    assert len(modules) > 5
    for module in modules:
        for name in _imports(module):
            top = name.split(".")[0]
            if top == "syncagent":
                assert name == "syncagent.errors" or name.startswith("syncagent.pan123"), (
                    module.name,
                    name,
                )
            else:
                assert top in sys.stdlib_module_names or top in HTTP_LIBRARIES, (
                    module.name,
                    name,
                )


def test_only_the_http_layer_imports_requests() -> None:
    importers = sorted(
        p.relative_to(PACKAGE).as_posix()
        for p in PACKAGE.rglob("*.py")
        if any(n.split(".")[0] in HTTP_LIBRARIES for n in _imports(p))
    )
    assert importers == ["pan123/http.py"]


def test_walk_module_is_stdlib_only() -> None:
    """Scan helpers run ``python -m syncagent.walk``: it must start without third parties."""
    for name in _imports(PACKAGE / "walk.py"):
        assert name.split(".")[0] in sys.stdlib_module_names | {"__future__"}, name
