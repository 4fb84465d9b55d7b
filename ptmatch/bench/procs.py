"""Child processes of a benchmark run (the scheduler, gunicorn) and the environment they get.

Children get their settings only through PTMATCH_* variables and a private instance folder
under the run directory, so a developer's instance/settings.py never leaks into a run.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from ptmatch.clock import pause

REPO_ROOT = Path(__file__).resolve().parents[2]
BENCH_SECRET = "bench-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_env(run_dir: Path, database_url: str, **settings) -> dict:
    """Environment for a ptmatch child process: this database, a private instance folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PTMATCH_")}
    instance = run_dir / "instance"
    instance.mkdir(parents=True, exist_ok=True)
    env.update(
        {
            "PTMATCH_INSTANCE_PATH": str(instance),
            "PTMATCH_DATABASE_URL": database_url,
            "PTMATCH_SECRET_KEY": BENCH_SECRET,
            "PTMATCH_MAIL_DIR": str(run_dir / "mail"),
            "PTMATCH_SCHEDULER_LOCK_FILE": str(run_dir / "scheduler.lock"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update({f"PTMATCH_{k}": str(v) for k, v in settings.items()})
    return env


class Child:
    """A child process with its output in a log file; stopped (SIGTERM, then SIGKILL) on exit."""

    def __init__(self, name: str, argv: list[str], env: dict, run_dir: Path, cwd: Path = REPO_ROOT):
        self.name = name
        self.log_path = run_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            argv,
            env=env,
            cwd=str(cwd),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def wait_for_log(self, needle: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log_text():
                return True
            if self.proc.poll() is not None:
                return False
            pause(0.1)
        return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(
                    self.proc.pid, signal.SIGTERM
                )  # our own session: the child and its workers
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self._log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def scheduler(run_dir: Path, database_url: str, **settings) -> Child:
    env = child_env(run_dir, database_url, **settings)
    return Child("scheduler", [sys.executable, "-m", "ptmatch.cli", "scheduler"], env, run_dir)


# The worker class chosen on measurement (BENCHMARKS.md, docs/deploying.md).
WORKER_CLASS = "gthread"
THREADS = 4


def gunicorn(
    run_dir: Path,
    database_url: str,
    port: int,
    workers: int = 4,
    worker_class: str = WORKER_CLASS,
    threads: int = THREADS,
    **settings,
) -> Child:
    env = child_env(run_dir, database_url, **settings)
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "-w",
        str(workers),
        "-k",
        worker_class,
        *(["--threads", str(threads)] if worker_class == "gthread" else []),
        "-b",
        f"127.0.0.1:{port}",
        "--backlog",
        "2048",
        "--timeout",
        "60",
        "wsgi:app",
    ]
    return Child("gunicorn", argv, env, run_dir)


def children_of(pid: int) -> list[int]:
    """Direct children (gunicorn workers of the master)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            found.append(int(entry.name))
    return sorted(found)


def memory_kb(pid: int) -> dict[str, int]:
    """VmHWM (peak RSS) and VmRSS of a process, in kB."""
    values = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                values[key] = int(rest.split()[0])
    except OSError:
        pass
    return values
