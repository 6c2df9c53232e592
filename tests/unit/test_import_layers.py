"""The layering, checked from the source: the library (`proftask/`) imports no service, and a
service imports only the library and itself, never a sibling service. Parsed with ast, so every
import counts, at module level or inside a function."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# The composition root builds every service: the one module of the library allowed to import them.
COMPOSITION_ROOT = "proftask/runtime.py"

# Known exceptions, each with why it is still there. Remove a line when its import is gone;
# the test fails on a line that no longer matches an import, so the list cannot go stale.
KNOWN = {
    ("proftask/cpu_pool.py", "services.processor.profile_rows"):
        "the CPU workers preload the processor's row building; profile_rows is to move into the "
        "library with the processor's rewrite (issue 15 item 1)",
    ("proftask/cli.py", "services.processor.replay"):
        "`proftask replay` runs the processor's replay; replay is to move into the library with "
        "the processor's rewrite (issue 15 item 1)",
    ("services/graphql_svc/resolvers.py", "services.query_svc.analysis_queries"):
        "GraphQL answers from query_svc's queries; they are to move into the library with "
        "query_svc's rewrite (issue 15 item 1)",
    ("services/graphql_svc/resolvers.py", "services.query_svc.progress_queries"):
        "as above",
    ("services/graphql_svc/resolvers.py", "services.query_svc.selection"):
        "as above",
}


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _imports(path: Path) -> set[str]:
    """The modules `path` imports: `from a import b` imports a.b when b is a module, else a."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                names.add(full if _is_module(full) else node.module)
    return names


def _service_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "services" and len(parts) > 1 else None


def _edges() -> list[tuple[str, str]]:
    """(file, imported module) for each import that crosses a layer: library → service, or
    service → another service."""
    found = []
    for path in sorted((ROOT / "proftask").rglob("*.py")) + sorted((ROOT / "services").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        own = rel.split("/")[1] if rel.startswith("services/") else None
        if rel == COMPOSITION_ROOT:
            continue
        for module in sorted(_imports(path)):
            target = _service_of(module)
            if target is not None and target != own:
                found.append((rel, module))
    return found


def test_library_imports_no_service_and_no_service_imports_a_sibling():
    crossing = [edge for edge in _edges() if edge not in KNOWN]
    assert not crossing, "imports across layers (library → service, or service → sibling service):\n" + \
        "\n".join(f"  {f} imports {m}" for f, m in crossing)


def test_every_known_exception_still_exists():
    stale = set(KNOWN) - set(_edges())
    assert not stale, f"listed as known but no longer imported, remove from KNOWN: {sorted(stale)}"


def test_the_check_sees_a_crossing(tmp_path):
    """The parser finds imports at module level and inside functions."""
    source = tmp_path / "m.py"
    source.write_text("import services.a.b\ndef f():\n    from services.task_svc import routes\n"
                      "    from services.query_svc.selection import select\n")
    assert _imports(source) == {"services.a.b", "services.task_svc.routes", "services.query_svc.selection"}
