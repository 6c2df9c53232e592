"""What a crash leaves behind: a proftask killed with SIGKILL takes its CPU workers with it, and
the next start removes the upload spool files of dead processes (and only theirs)."""
import os
import pathlib
import signal
import subprocess


from tests.conformance.oracle import require_conformance
from tests.integration.harness import PROFTASK, ROOT, HttpClient, free_port, new_topic_prefix, wait_until
from tests.integration.profiles import analysis, create_task, progress, upload, wait_finished



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


def _readme_replay_commands() -> list[str]:
    """The commands of the README's "Rebuilding ClickHouse from Kafka" code block, comments dropped."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Rebuilding ClickHouse from Kafka", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.split("#", 1)[0].strip()]


def _as_in_a_temp_dir(command: str, data: pathlib.Path, make_vars: str) -> str:
    """The README's command against DATA=data and free ports (DEMO=0: no demo service)."""
    if command.startswith("make "):
        return f"{command} {make_vars}"
    if command.startswith("rm -rf .data/"):
        return command.replace(".data/", f"{data}/", 1)
    raise AssertionError(f"the README's replay procedure has a command this test cannot map: {command!r}")


def test_the_readme_replay_procedure_rebuilds_every_table(tmp_path):
    commands = _readme_replay_commands()
    assert any(c.startswith("make replay") for c in commands), commands
    data, http_port = tmp_path / "data", free_port()
    make_vars = (f"DATA={data} HTTP_PORT={http_port} KAFKA_PORT={free_port()} "
                 f"KAFKA_CONTROLLER_PORT={free_port()} DEMO=0")
    env = dict(os.environ, PROFTASK_GRPC_PORT=str(free_port()), PROFTASK_KAFKA_PARTITIONS="4")
    env.pop("MAKEFLAGS", None)
    env.pop("MAKELEVEL", None)

    def sh(command: str) -> None:
        r = subprocess.run(command, shell=True, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"{command}: {r.stdout[-2000:]}{r.stderr[-3000:]}"

    api = HttpClient(f"http://127.0.0.1:{http_port}")
    profile = require_conformance() / "go" / "parca-alloc_objects.pb.gz"
    try:
        sh(f"make up {make_vars}")
        task_id = create_task(api, ["pod-1", "pod-2"])
        for instance in ("pod-1", "pod-2"):
            wait_until(lambda: upload(api, task_id, instance, profile).status == 202, timeout=30,  # noqa: B023 - awaited within the iteration
                       message="upload accepted")
        wait_finished(api, task_id, ["pod-1", "pod-2"])

        def answers():
            return (api.get(f"/api/v1/pprof/tasks/{task_id}").json(), progress(api, task_id),
                    analysis(api, task_id), analysis(api, task_id, granularity="line", instanceIds="pod-2"),
                    analysis(api, task_id, maxNodes=100, instanceStats="true"),
                    api.get("/api/v1/pprof/tasks").json())

        before = answers()
        for command in commands:
            sh(_as_in_a_temp_dir(command, data, make_vars))
            if command.startswith("make replay"):  # it started the broker `make down` stopped, and stops it
                assert subprocess.run([str(ROOT / "deploy/kafka/kafka.sh"), "status", str(data / "kafka")]).returncode == 1
        assert answers() == before
    finally:
        subprocess.run(f"make down {make_vars}", shell=True, cwd=ROOT, env=env, capture_output=True, timeout=120)


def test_replay_without_a_broker_says_so_in_one_line(tmp_path):
    r = subprocess.run([PROFTASK, "replay", "--kafka", f"127.0.0.1:{free_port()}", "--data-dir", str(tmp_path),
                        "--kafka-timeout", "1"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0 and "no Kafka broker at 127.0.0.1:" in r.stderr, r.stderr
    assert not (tmp_path / "clickhouse").exists()  # nothing dropped
