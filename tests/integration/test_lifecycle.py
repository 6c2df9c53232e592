"""What a crash leaves behind: a proftask killed with SIGKILL takes its CPU workers with it, and
the next start removes the upload spool files of dead processes (and only theirs)."""
import os
import pathlib
import signal
import subprocess

import pytest

from tests.conformance.oracle import require_conformance
from tests.integration.harness import ROOT, HttpClient, free_port, new_topic_prefix, wait_until
from tests.integration.profiles import create_task, upload

pytestmark = pytest.mark.integration


def _alive(pid: int) -> bool:
    """Running: a zombie has exited (it only waits for its new parent to reap it)."""
    try:
        return pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _children(pid: int) -> list[int]:
    kids = []
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            kids.append(int(stat.parent.name))
    return kids


def _cmdline(pid: int) -> str:
    try:
        return pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_cpu_workers_exit_when_the_server_is_killed(spawn):
    p = spawn("all")
    task_id = create_task(p, ["pod-1"])
    # the upload is validated in a CPU worker: the pool now has its workers
    assert upload(p, task_id, "pod-1", require_conformance() / "go" / "parca-alloc_objects.pb.gz").status == 202
    workers = wait_until(lambda: [c for c in _children(p.proc.pid) if "multiprocessing.spawn" in _cmdline(c)],
                         message="CPU workers running")
    p.kill()
    wait_until(lambda: not any(_alive(w) for w in workers), timeout=5,
               message=f"CPU workers {workers} gone after SIGKILL of the server")


def test_stale_upload_spool_files_are_removed_at_start(spawn, stack, tmp_path):
    spool = tmp_path / "data" / "spool"
    spool.mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = spool / f"proftask-upload-{dead.pid}-x1.pprof"
    held = spool / f"proftask-upload-{stack.proc.pid}-x2.pprof"  # a live proftask's upload
    foreign = spool / "notes.txt"
    for f in (stale, held, foreign):
        f.write_bytes(b"partial upload")
    spawn("all", data_dir=tmp_path / "data")
    assert not stale.exists()
    assert held.exists() and foreign.exists()



def _standalone(env: dict, command: str, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([str(ROOT / "deploy/standalone.sh"), command], env=env, capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


def test_standalone_up_right_after_a_kill_starts_a_new_proftask(broker, tmp_path):
    """deploy/standalone.sh up, kill -9, up: the second up starts a new proftask (the killed one may
    still be exiting, or a zombie, when up looks at its pid file)."""
    data, port = tmp_path / "data", free_port()
    env = dict(os.environ, DATA=str(data), HTTP_PORT=str(port), KAFKA_PORT=str(broker.port),
               PROFTASK_KAFKA_TOPIC_PREFIX=new_topic_prefix(), PROFTASK_GRPC_PORT=str(free_port()),
               PROFTASK_KAFKA_PARTITIONS="4")
    api = HttpClient(f"http://127.0.0.1:{port}")
    pidfile = data / "proftask.pid"
    try:
        first = _standalone(env, "up")
        assert first.returncode == 0, first.stdout + first.stderr
        killed = int(pidfile.read_text())
        os.kill(killed, signal.SIGKILL)
        again = _standalone(env, "up")
        assert again.returncode == 0, again.stdout + again.stderr
        assert "proftask is up" in again.stdout
        restarted = int(pidfile.read_text())
        assert restarted != killed and _alive(restarted) and not _alive(killed)
        assert api.get("/readyz").status == 200

        # a pid file naming a pid now used by another program: not ours to stop
        os.kill(restarted, signal.SIGKILL)
        wait_until(lambda: not _alive(restarted), timeout=10, message="killed proftask gone")
        stranger = subprocess.Popen(["sleep", "60"])
        try:
            pidfile.write_text(f"{stranger.pid}\n")
            status = _standalone(env, "status")
            assert status.returncode == 1 and "not running" in status.stdout
            assert _standalone(env, "down").returncode == 0
            assert stranger.poll() is None
        finally:
            stranger.kill()
            stranger.wait()
    finally:
        _standalone(env, "down")
