"""The demo Go service (deploy/demo) with the proftask agent, as real processes for tests."""
from __future__ import annotations

import pathlib
import subprocess

from tests.integration.harness import ROOT, Proftask

DEMO_DIR = ROOT / "deploy" / "demo"


def build_demo(out_dir: pathlib.Path) -> pathlib.Path:
    binary = out_dir / "demo"
    subprocess.run(["go", "build", "-o", str(binary), "."], cwd=DEMO_DIR, check=True)
    return binary


class Demo:
    def __init__(self, binary: pathlib.Path, server: Proftask, service: str, instance: str,
                 work: pathlib.Path, *flags: str):
        self.instance = instance
        self.log_path = work / f"demo-{service}-{instance}.log"
        self.proc = subprocess.Popen(
            [str(binary), "-server", server.base, "-service", service, "-instance", instance,
             "-state-dir", str(work / f"state-{service}-{instance}"), *flags],
            stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
