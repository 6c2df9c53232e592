"""Build hook: generate the Python modules (and gRPC stubs) of schemas/*.proto before packaging.

The event schemas are written once, in schemas/; the *_pb2.py modules are build output
(git-ignored) so they can never drift from the .proto files by a hand edit.
"""
import pathlib

from setuptools import setup

ROOT = pathlib.Path(__file__).resolve().parent
SCHEMAS = ROOT / "schemas"


def generate_protobuf_modules() -> None:
    from grpc_tools import protoc  # build requirement (pyproject.toml)
    import grpc_tools

    include = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    protos = sorted(str(p.relative_to(SCHEMAS)) for p in SCHEMAS.rglob("*.proto"))
    args = ["protoc", f"-I{SCHEMAS}", f"-I{include}", f"--python_out={ROOT}", f"--pyi_out={ROOT}", *protos]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed on " + " ".join(protos))
    services = [p for p in protos if "\nservice " in (SCHEMAS / p).read_text()]
    if services and protoc.main(["protoc", f"-I{SCHEMAS}", f"-I{include}", f"--grpc_python_out={ROOT}",
                                 *services]) != 0:
        raise SystemExit("protoc (gRPC) failed on " + " ".join(services))
    # protoc writes modules, not packages: mark each generated directory as a package.
    for proto in protos:
        package_dir = (ROOT / proto).parent
        for d in [package_dir, *package_dir.parents]:
            if d == ROOT or not str(d).startswith(str(ROOT / "proftask")):
                break
            (d / "__init__.py").touch(exist_ok=True)


generate_protobuf_modules()
setup()
