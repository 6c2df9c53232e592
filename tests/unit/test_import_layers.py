"""The layering, checked from the source: the library (`proftask/`) imports no service, and a
service imports only the library and itself, never a sibling service. Parsed with ast, so every
import counts, at module level or inside a function."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# The composition root builds every service: the one module of the library allowed to import them.
COMPOSITION_ROOT = "proftask/runtime.py"

def _is_module(name: str, root: Path = ROOT) -> bool:
    path = root.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _imports(path: Path, root: Path = ROOT) -> set[str]:
    """The modules `path` imports: `from a import b` imports a.b when b is a module, else a."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                names.add(full if _is_module(full, root) else node.module)
    return names


def _service_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "services" and len(parts) > 1 else None


def _edges(root: Path = ROOT) -> list[tuple[str, str]]:
    """(file, imported module) for each import that crosses a layer: library → service, or
    service → another service."""
    found = []
    for path in sorted((root / "proftask").rglob("*.py")) + sorted((root / "services").rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        own = rel.split("/")[1] if rel.startswith("services/") else None
        if rel == COMPOSITION_ROOT:
            continue
        for module in sorted(_imports(path, root)):
            target = _service_of(module)
            if target is not None and target != own:
                found.append((rel, module))
    return found


def test_library_imports_no_service_and_no_service_imports_a_sibling():
    """No exceptions: what two services share, or the library needs, lives in the library."""
    crossing = _edges()
    assert not crossing, "imports across layers (library → service, or service → sibling service):\n" + \
        "\n".join(f"  {f} imports {m}" for f, m in crossing)


def test_the_check_finds_each_kind_of_crossing(tmp_path):
    """The imports this tree once had are each caught again: library → service (at module level
    and inside a function) and service → sibling service; the composition root and a service
    importing itself pass."""
    files = {
        "proftask/__init__.py": "",
        "proftask/cpu_pool.py": "def warm():\n    import services.processor.profile_rows  # noqa: F401\n",
        "proftask/cli.py": "from services.processor.replay import replay\n",
        "proftask/runtime.py": "from services.query_svc.service import QueryService\n",
        "services/__init__.py": "",
        "services/processor/__init__.py": "",
        "services/processor/profile_rows.py": "",
        "services/processor/replay.py": "from services.processor import profile_rows\n",
        "services/query_svc/__init__.py": "",
        "services/query_svc/selection.py": "",
        "services/query_svc/service.py": "from services.query_svc import selection\n",
        "services/graphql_svc/__init__.py": "",
        "services/graphql_svc/resolvers.py": "from services.query_svc import selection\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    assert _edges(tmp_path) == [
        ("proftask/cli.py", "services.processor.replay"),
        ("proftask/cpu_pool.py", "services.processor.profile_rows"),
        ("services/graphql_svc/resolvers.py", "services.query_svc.selection"),
    ]


def test_the_check_sees_a_crossing(tmp_path):
    """The parser finds imports at module level and inside functions."""
    source = tmp_path / "m.py"
    source.write_text("import services.a.b\ndef f():\n    from services.task_svc import routes\n"
                      "    from services.query_svc.views import analysis_body\n")
    assert _imports(source) == {"services.a.b", "services.task_svc.routes", "services.query_svc.views"}


def test_a_process_without_chdb_does_not_map_the_engine():
    """task_svc and ingest_svc use no ClickHouse: importing every service and the composition
    root must not load chDB (~200 MB of resident engine in each of those processes)."""
    import subprocess
    import sys

    code = ("import sys, proftask.runtime, proftask.cli\n"
            "import services.task_svc.service, services.ingest_svc.service, services.query_svc.service\n"
            "import services.processor.service, services.agent_grpc.service, services.graphql_svc.service\n"
            "print(sorted(m for m in sys.modules if m == 'chdb' or m.startswith('chdb.')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
