"""primitives.process with real processes: spawn, identity, stop escalation, sampling."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import psutil
import pytest
from ctlkit import PYTHON, WEB_APP, Runner

from shipyard.errors import BadInput
from shipyard.primitives import process
from shipyard.primitives.clock import SystemClock


def _env(**extra: str) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], **extra}


def _wait_for_file(path: Path, timeout: float = 30.0) -> str:
    # The app writes the file once; nothing to await but the file itself.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.02)
    raise AssertionError(f"{path} never written")


def _wait_listening(log: Path, timeout: float = 30.0) -> None:
    # The app logs once it has set its signal handlers and bound its port.
    deadline = time.monotonic() + timeout
    while "listening on" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, "app never started"
        time.sleep(0.02)


def test_spawn_runs_in_own_session_with_output_in_log(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "a.log"
    log.parent.mkdir()
    log.write_text("earlier line\n")
    h = process.spawn("echo out; echo err >&2; read x || echo stdin-closed", cwd=tmp_path, env=_env(),
                      log_path=log)
    deadline = time.monotonic() + 30
    while process.reap(h.pid) is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process.reap(h.pid) == 0
    # Appended, not overwritten; stderr and stdout both land there; stdin is /dev/null.
    assert log.read_text().splitlines() == ["earlier line", "out", "err", "stdin-closed"]


def test_spawn_list_cmd_and_own_session(tmp_path: Path) -> None:
    h = process.spawn([PYTHON, "-c", "import time; time.sleep(60)"], cwd=tmp_path, env=_env(),
                      log_path=tmp_path / "b.log")
    assert process.is_alive(h.pid, h.create_time)
    assert os.getsid(h.pid) == h.pid
    assert os.getpgid(h.pid) == h.pid
    assert os.getsid(h.pid) != os.getsid(0)


def test_spawn_in_missing_dir_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="not found"):
        process.spawn("true", cwd=tmp_path / "nope", env=_env(), log_path=tmp_path / "c.log")


def test_pid_reuse_guard(tmp_path: Path, run: Runner) -> None:
    h = process.spawn([PYTHON, "-c", "import time; time.sleep(60)"], cwd=tmp_path, env=_env(),
                      log_path=tmp_path / "d.log")
    assert process.is_alive(h.pid, h.create_time)
    assert not process.is_alive(h.pid, h.create_time + 5)
    assert not process.is_alive(h.pid, h.create_time - 5)
    # A stop aimed at the "old" process with that pid must not touch the new one.
    how = run(process.stop_process_group(h.pid, h.create_time + 5, grace=1))
    assert how == "not running"
    assert process.is_alive(h.pid, h.create_time)


def test_zombie_counts_as_dead_and_reap_reports_exit(tmp_path: Path) -> None:
    h = process.spawn("exit 7", cwd=tmp_path, env=_env(), log_path=tmp_path / "e.log")
    deadline = time.monotonic() + 30
    # Not reaped yet: a zombie (or gone); never "alive".
    while time.monotonic() < deadline:
        try:
            if psutil.Process(h.pid).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.01)
    assert not process.is_alive(h.pid, h.create_time)
    assert process.reap(h.pid) == 7
    assert process.describe_exit(7) == "exited with code 7"
    assert process.describe_exit(-9) == "killed by SIGKILL"
    assert process.exit_details(-15) == {"exit_code": None, "signal": "SIGTERM"}


def test_wait_exit_is_event_driven(tmp_path: Path, run: Runner) -> None:
    h = process.spawn([PYTHON, "-c", "import time; time.sleep(0.3)"], cwd=tmp_path, env=_env(),
                      log_path=tmp_path / "f.log")
    run(process.wait_exit(h.pid, h.create_time), timeout=30)
    assert not process.is_alive(h.pid, h.create_time)


def test_stop_polite_process(tmp_path: Path, run: Runner, port: int) -> None:
    h = process.spawn(f"exec {PYTHON} {WEB_APP}", cwd=tmp_path, env=_env(PORT=str(port)),
                      log_path=tmp_path / "g.log")
    how = run(process.stop_process_group(h.pid, h.create_time, grace=20))
    assert how == "stopped by SIGTERM: killed by SIGTERM"
    assert not process.is_alive(h.pid, h.create_time)
    with pytest.raises(ChildProcessError):
        os.waitpid(h.pid, os.WNOHANG)  # already reaped: no zombie left behind


def test_stop_escalates_to_sigkill_for_the_whole_group(tmp_path: Path, run: Runner, port: int) -> None:
    child_file = tmp_path / "child.pid"
    h = process.spawn(f"exec {PYTHON} {WEB_APP}", cwd=tmp_path, log_path=tmp_path / "h.log",
                      env=_env(PORT=str(port), IGNORE_TERM="1", SPAWN_CHILD="1", CHILD_PID_FILE=str(child_file)))
    child_pid = int(_wait_for_file(child_file))
    child = psutil.Process(child_pid)
    child_ct = child.create_time()
    assert os.getpgid(child_pid) == h.pid

    started = time.monotonic()
    how = run(process.stop_process_group(h.pid, h.create_time, sig="SIGTERM", grace=0.5, clock=SystemClock()))
    assert how == "stopped by SIGKILL after 0.5s grace: killed by SIGKILL"
    assert time.monotonic() - started >= 0.5
    assert not process.is_alive(h.pid, h.create_time)
    assert not process.is_alive(child_pid, child_ct)
    assert process.group_members(h.pid) == []
    with pytest.raises(ChildProcessError):
        os.waitpid(h.pid, os.WNOHANG)


def test_stop_waits_for_the_whole_group_not_just_the_leader(tmp_path: Path, run: Runner) -> None:
    # The leader exits on SIGTERM but a helper in its group ignores it: the grace period runs for
    # the group, then the group is killed.
    child_file = tmp_path / "child.pid"
    helper = (f"import os, signal, time; from pathlib import Path; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
              f"Path({str(child_file)!r}).write_text(str(os.getpid())); time.sleep(600)")
    script = f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {helper!r}]); time.sleep(600)"
    h = process.spawn([PYTHON, "-c", script], cwd=tmp_path, env=_env(), log_path=tmp_path / "i.log")
    child_pid = int(_wait_for_file(child_file))
    child_ct = psutil.Process(child_pid).create_time()
    how = run(process.stop_process_group(h.pid, h.create_time, grace=0.5))
    assert how == "stopped by SIGKILL after 0.5s grace: killed by SIGTERM"
    assert not process.is_alive(child_pid, child_ct)


def test_parse_signal() -> None:
    assert process.parse_signal("SIGINT") == signal.SIGINT
    assert process.parse_signal("term") == signal.SIGTERM
    assert process.parse_signal(9) == signal.SIGKILL
    with pytest.raises(BadInput, match="unknown signal"):
        process.parse_signal("SIGNOPE")


def test_sample_reports_cpu_and_rss(tmp_path: Path, run: Runner) -> None:
    h = process.spawn([PYTHON, "-c", "x = bytearray(30_000_000)\nwhile True: pass"], cwd=tmp_path, env=_env(),
                      log_path=tmp_path / "j.log")

    async def twice() -> tuple[float, int]:
        process.sample(h.pid)
        await asyncio.sleep(0.5)
        return process.sample(h.pid)

    cpu, rss = run(twice())
    assert rss > 30_000_000
    assert cpu > 0.0
    run(process.stop_process_group(h.pid, h.create_time, grace=5))
    assert process.sample(h.pid) == (0.0, 0)


@pytest.mark.parametrize(("cmd", "expected"), [
    ("python3 app.py", "exec python3 app.py"),
    ("gunicorn -w 2 -b 127.0.0.1:$PORT app:app", "exec gunicorn -w 2 -b 127.0.0.1:$PORT app:app"),
    ("python3 -c 'print(1)'", "exec python3 -c 'print(1)'"),
    ("cd sub && python3 app.py", "cd sub && python3 app.py"),
    ("FOO=1 python3 app.py", "FOO=1 python3 app.py"),
    ("python3 app.py > out.log", "python3 app.py > out.log"),
    ("exec python3 app.py", "exec python3 app.py"),
    ("echo 'unbalanced", "echo 'unbalanced"),
    ("exit 7", "exit 7"),
    ("no-such-program-xyz --flag", "no-such-program-xyz --flag"),
    ("./server --port 1", "exec ./server --port 1"),
])
def test_exec_form(cmd: str, expected: str) -> None:
    assert process.exec_form(cmd, f"{Path(PYTHON).parent}:{os.environ['PATH']}") == expected


def test_shell_command_is_the_group_leader_and_gets_its_grace(tmp_path: Path, run: Runner, port: int) -> None:
    # Through a compound command the shell stays the leader; the app behind it ignoring SIGTERM
    # must still be waited for (the whole group) and then killed.
    h = process.spawn(f"true && {PYTHON} {WEB_APP}", cwd=tmp_path, log_path=tmp_path / "k.log",
                      env=_env(PORT=str(port), IGNORE_TERM="1"))
    _wait_listening(tmp_path / "k.log")
    assert len(process.group_members(h.pid)) == 2
    started = time.monotonic()
    how = run(process.stop_process_group(h.pid, h.create_time, grace=0.5))
    assert "SIGKILL after 0.5s grace" in how
    assert time.monotonic() - started >= 0.5
    assert process.group_members(h.pid) == []


def _zombie_children() -> list[int]:
    return [c.pid for c in psutil.Process().children() if c.status() == psutil.STATUS_ZOMBIE]


def test_no_zombie_after_100_start_stop_cycles(tmp_path: Path, run: Runner) -> None:
    # Every way an instance process ends: stopped while running, exited before its stop, exited and
    # only watched (wait_exit), and one whose stop was never asked for (a later spawn sweeps it).
    async def cycles() -> None:
        for i in range(100):
            kind = i % 4
            cmd = "exec sleep 60" if kind == 0 else "exit 3"
            h = process.spawn(cmd, cwd=tmp_path, env=_env(), log_path=tmp_path / "z.log")
            if kind == 0:
                assert (await process.stop_process_group(h.pid, h.create_time, grace=5)).startswith("stopped by")
            elif kind == 1:
                await process.wait_exit(h.pid, h.create_time)
                await process.stop_process_group(h.pid, h.create_time, grace=5)
            elif kind == 2:
                await process.wait_exit(h.pid, h.create_time)
                assert process.reap(h.pid) == 3
                process.forget(h.pid)
            else:
                await process.wait_exit(h.pid, h.create_time)  # nobody reaps it on purpose

    started = time.monotonic()
    run(cycles(), timeout=60)
    assert _zombie_children() == []
    assert time.monotonic() - started < 30


def test_a_stopped_process_gets_its_stop_signal_at_once(tmp_path: Path, run: Runner, port: int) -> None:
    # SIGSTOPped (frozen), it would act on SIGTERM only after the grace, when SIGKILL comes: SIGCONT goes
    # with the stop signal, so it stops politely now.
    log = tmp_path / "frozen.log"
    h = process.spawn(f"exec {PYTHON} {WEB_APP}", cwd=tmp_path, env=_env(PORT=str(port)), log_path=log)
    _wait_listening(log)
    os.kill(h.pid, signal.SIGSTOP)
    deadline = time.monotonic() + 10
    while psutil.Process(h.pid).status() != psutil.STATUS_STOPPED:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    started = time.monotonic()
    how = run(process.stop_process_group(h.pid, h.create_time, grace=20))
    assert how == "stopped by SIGTERM: killed by SIGTERM"
    assert time.monotonic() - started < 3
    assert _zombie_children() == []
