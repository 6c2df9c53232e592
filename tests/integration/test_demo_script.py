"""deploy/demo.sh as a user drives it: after `kill -9` of an instance, `up` starts it again."""
import os
import signal
import subprocess

from tests.integration.harness import ROOT, free_port, wait_until

DEMO = str(ROOT / "deploy" / "demo.sh")


def test_an_instance_killed_with_sigkill_is_started_again_by_up(tmp_path):
    env = dict(os.environ, DATA=str(tmp_path), HTTP_PORT=str(free_port()))  # no server there: agents retry
    pidfile = tmp_path / "demo" / "demo-1.pid"
    try:
        subprocess.run([DEMO, "up"], env=env, check=True, capture_output=True, text=True, timeout=300)
        killed = int(pidfile.read_text())
        os.kill(killed, signal.SIGKILL)
        # at once, while the killed process may still be a zombie nobody has reaped
        again = subprocess.run([DEMO, "up"], env=env, check=True, capture_output=True, text=True, timeout=300)
        assert "demo-1 started" in again.stdout, again.stdout
        assert "demo-2 already running" in again.stdout, again.stdout
        restarted = int(pidfile.read_text())
        assert restarted != killed
        wait_until(lambda: _alive(restarted), timeout=10, message="the restarted demo-1 runs")
    finally:
        subprocess.run([DEMO, "down"], env=env, capture_output=True, timeout=60)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
