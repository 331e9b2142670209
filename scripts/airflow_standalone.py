"""``airflow standalone`` in its own AIRFLOW_HOME on free ports, pointed at a local stack: for the tests that
drive Airflow as a person would, and for ``make demo-backfill``.

It runs as the README tells a person to run it (scheduler, DAG processor, triggerer and API server with the
LocalExecutor on SQLite), with a simple auth manager user whose password the test knows. It starts in a
session of its own, so that ``stop`` ends every process it started: task runners take process groups of
their own, but never leave the session.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from local_aws.config import LocalAwsConfig
from local_aws.environment import stack_variables

REPO_ROOT = Path(__file__).resolve().parents[1]

READY_TIMEOUT_S = 180
STOP_GRACE_S = 5
HTTP_TIMEOUT_S = 60  # the one API server worker also serves the tasks' execution API on two busy cores
USERNAME = "ui-tester"
COMPONENTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")


@dataclass(frozen=True)
class AirflowStandalone:
    """A started ``airflow standalone``: where it listens, who may log in, where it writes."""

    process: subprocess.Popen[bytes]
    home: Path
    port: int
    password: str
    environment: dict[str, str]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.home / "standalone.log"

    def log_tail(self, chars: int = 6000) -> str:
        return self.log_file.read_text(errors="replace")[-chars:] if self.log_file.exists() else ""

    def task_log_tail(self, dag_id: str, run_id: str, task_id: str, chars: int = 4000) -> str:
        """The end of the newest attempt's log of a task instance, as the task wrote it."""
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        attempts = sorted(folder.glob("attempt=*.log"), key=lambda path: path.stat().st_mtime)
        return attempts[-1].read_text(errors="replace")[-chars:] if attempts else f"(no log in {folder})"

    def wait_until_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Until the API server answers and reports every component healthy; fails early if it exits."""
        deadline = time.monotonic() + timeout_s
        health: dict[str, Any] = {}
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"airflow standalone exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                health = httpx.get(f"{self.base_url}/api/v2/monitor/health", timeout=5).json()
            except httpx.HTTPError:
                health = {}
            if health and all(health.get(name, {}).get("status") == "healthy" for name in COMPONENTS):
                return
            time.sleep(1)
        raise AssertionError(f"Airflow not ready after {timeout_s} s: {health}\n{self.log_tail()}")

    def wait_for_dag(self, dag_id: str, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Until the DAG processor has parsed ``dag_id`` into the database (slower on a busy machine)."""
        deadline = time.monotonic() + timeout_s
        with self.api() as api:
            while True:
                try:
                    api.get(f"/dags/{dag_id}")
                    return
                except httpx.HTTPStatusError as error:
                    if error.response.status_code != httpx.codes.NOT_FOUND or time.monotonic() > deadline:
                        raise
                time.sleep(1)

    def api(self) -> httpx.Client:
        """A client of the REST API (``/api/v2``), logged in as the test's user."""
        token = httpx.post(
            f"{self.base_url}/auth/token",
            json={"username": USERNAME, "password": self.password},
            timeout=HTTP_TIMEOUT_S,
        )
        token.raise_for_status()
        return httpx.Client(
            base_url=f"{self.base_url}/api/v2",
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            timeout=HTTP_TIMEOUT_S,
            event_hooks={"response": [httpx.Response.raise_for_status]},
        )

    def cli(self, *arguments: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``airflow ARGUMENTS`` against this Airflow (its home, database and settings)."""
        return subprocess.run(
            [sys.executable, "-m", "airflow", *arguments],
            cwd=self.home,
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def create_backfill(
        self, dag_id: str, start: str, end: str, conf: dict[str, Any], *options: str, attempts: int = 5
    ) -> None:
        """``airflow backfill create`` from ``start`` to ``end`` (YYYY-MM-DD) with ``conf``.

        The scheduler writes the same SQLite database, and SQLite refuses a writer at once ("database is
        locked") when two transactions both want to upgrade: the command then rolled everything back, so it
        is run again. A retry that finds the backfill (AlreadyRunningBackfill) means the try before had
        committed after all.
        """
        command = ["backfill", "create", "--dag-id", dag_id, "--from-date", start, "--to-date", end]
        command += ["--dag-run-conf", json.dumps(conf), *options]
        for attempt in range(1, attempts + 1):
            result = self.cli(*command)
            output = result.stdout + result.stderr
            if result.returncode == 0 or (attempt > 1 and "AlreadyRunningBackfill" in output):
                return
            if "database is locked" not in output or attempt == attempts:
                raise RuntimeError(f"airflow backfill create failed:\n{output[-4000:]}")
            time.sleep(2 * attempt)

    def stop(self) -> None:
        """SIGTERM to every process of its session, SIGKILL to those left after a grace period."""
        session = self.process.pid
        _signal_all(session_processes(session), signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        while session_processes(session) and time.monotonic() < deadline:
            self.process.poll()  # reaps the leader once it exits
            time.sleep(0.2)
        _signal_all(session_processes(session), signal.SIGKILL)
        self.process.wait(timeout=STOP_GRACE_S)


def ephemeral_port() -> int:
    """A port that is free on 127.0.0.1 now, as the system hands them out."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def airflow_environment(
    config: LocalAwsConfig, home: Path, port: int, free_port: Callable[[], int] = ephemeral_port
) -> dict[str, str]:
    """This environment minus any Airflow or AWS setting, plus the stack's (``local_aws env``) and ours."""
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AIRFLOW", "AWS_", "LOCAL_AWS_"))
    }
    bin_folder = str(Path(sys.executable).parent)  # standalone starts its components as `airflow ...`
    return {
        **inherited,
        **stack_variables(config),
        "PATH": f"{bin_folder}{os.pathsep}{inherited.get('PATH', '')}",
        "PYTHONPATH": f"{REPO_ROOT / 'plugins'}{os.pathsep}{REPO_ROOT}",
        "AIRFLOW_HOME": str(home),
        # The scheduler and a CLI command (`airflow backfill create`) write SQLite at once: a writer waits up
        # to a minute for the other's lock instead of failing with "database is locked".
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}?timeout=60",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USERNAME}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
    }


def start_standalone(
    config: LocalAwsConfig, home: Path, free_port: Callable[[], int] = ephemeral_port, **settings: str
) -> AirflowStandalone:
    """Start ``airflow standalone`` in ``home`` on a free port; its output goes to ``home/standalone.log``.

    ``free_port`` picks the ports; ``settings`` are more environment variables, such as the DAG's
    ``AIRFLOW__GROUND_TRUTH_...`` options.
    """
    home.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(16)
    (home / "passwords.json").write_text(json.dumps({USERNAME: password}))
    port = free_port()
    environment = {**airflow_environment(config, home, port, free_port), **settings}
    with (home / "standalone.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "airflow", "standalone"],
            cwd=home,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return AirflowStandalone(process, home, port, password, environment)


def session_processes(session: int) -> list[int]:
    """The live (not zombie) processes of a session."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if int(fields[3]) == session and fields[0] not in {"Z", "X"}:
            members.append(int(stat.parent.name))
    return members


def _signal_all(pids: list[int], signum: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)
