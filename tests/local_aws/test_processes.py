"""Process management of the local stack, with small Python programs standing in for the services."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from local_aws.processes import (
    PortInUseError,
    PortUse,
    ProcessRecord,
    ServiceSpec,
    ServiceStartError,
    is_running,
    python_command,
    read_record,
    start_services,
    statuses,
    stop_services,
)
from tests.local_aws.conftest import free_port, process_alive

HOST = "127.0.0.1"
# Marks itself ready (a file) and runs until stopped; every start is counted in a file.
SERVER = """
import pathlib, sys, time
state = pathlib.Path(sys.argv[1])
with (state / "starts").open("a") as starts:
    starts.write("started\\n")
print("booting", flush=True)
(state / "ready").touch()
time.sleep(120)
"""


def wait_for(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


class Services:
    """Builds fake services whose logs, pid files and state live under one tmp folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.lines: list[str] = []

    def state(self, name: str) -> Path:
        folder = self.root / "state" / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def spec(
        self,
        name: str,
        script: str = SERVER,
        probe: Callable[[], bool] | None = None,
        ports: tuple[PortUse, ...] = (),
    ) -> ServiceSpec:
        state = self.state(name)
        return ServiceSpec(
            name=name,
            description=f"Fake {name}",
            prepare=lambda: python_command("-c", script, str(state)),
            endpoint=f"fake://{name}",
            ports=ports,
            probe=probe or (lambda: (state / "ready").exists()),
            log_path=self.root / "logs" / f"{name}.log",
            pid_path=self.root / "pids" / f"{name}.pid",
        )

    def report(self, line: str) -> None:
        self.lines.append(line)


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    made = Services(tmp_path)
    yield made
    for pid_path in (tmp_path / "pids").glob("*.pid"):
        record = read_record(pid_path)
        if record is not None and is_running(record):
            os.killpg(record.pid, signal.SIGKILL)


@pytest.fixture
def bystander() -> Iterator[subprocess.Popen[bytes]]:
    """A process nobody's pid file names, which must survive every stop."""
    process = subprocess.Popen(["sleep", "60"])
    yield process
    process.kill()
    process.wait()


def test_a_started_service_is_recorded_and_stopped_by_its_pid_file(
    services: Services, bystander: subprocess.Popen[bytes]
) -> None:
    spec = services.spec("alpha")
    start_services(HOST, [spec], timeout=10, report=services.report)

    record = read_record(spec.pid_path)
    assert record is not None and process_alive(record.pid) and is_running(record)
    saved = json.loads(spec.pid_path.read_text())
    assert saved["command"][:2] == [sys.executable, "-u"] and saved["process_start"] and saved["started_at"]
    assert services.lines == [f"Fake alpha: started (pid {record.pid}) at fake://alpha"]
    assert "booting" in spec.log_path.read_text()

    stop_services([spec], timeout=10, report=services.report)

    assert services.lines[-1] == f"Fake alpha: stopped (pid {record.pid})"
    assert not process_alive(record.pid) and not spec.pid_path.exists()
    assert bystander.poll() is None


def test_starting_twice_starts_one_process(services: Services) -> None:
    spec = services.spec("alpha")
    start_services(HOST, [spec], timeout=10, report=services.report)
    first = read_record(spec.pid_path)
    start_services(HOST, [spec], timeout=10, report=services.report)

    assert first is not None and read_record(spec.pid_path) == first
    assert services.lines[-1] == f"Fake alpha: already running (pid {first.pid}) at fake://alpha"
    assert (services.state("alpha") / "starts").read_text() == "started\n"
    assert [state.running and state.answering for state in statuses([spec])] == [True]


def test_a_process_that_dies_at_start_shows_this_start_log_tail(services: Services) -> None:
    script = (
        "for i in range(30): print(f'line {i}')\nprint('fatal: cannot open data dir')\nraise SystemExit(3)"
    )
    spec = services.spec("broken", script=script, probe=lambda: False)
    spec.log_path.parent.mkdir(parents=True)
    spec.log_path.write_text("output of an earlier run\n")

    with pytest.raises(ServiceStartError) as raised:
        start_services(HOST, [spec], timeout=10, report=services.report)

    message = str(raised.value)
    assert "Fake broken exited during start with exit code 3" in message
    assert str(spec.log_path) in message
    assert "fatal: cannot open data dir" in message and "line 29" in message
    assert "line 5\n" not in message and "earlier run" not in message
    assert not spec.pid_path.exists()


def test_a_service_that_never_answers_times_out_and_is_stopped(services: Services) -> None:
    spec = services.spec("silent", probe=lambda: False)

    with pytest.raises(
        ServiceStartError, match=r"Fake silent \(pid \d+\) did not answer at fake://silent within 1 s"
    ):
        start_services(HOST, [spec], timeout=1, report=services.report)

    assert not spec.pid_path.exists()
    assert "booting" in spec.log_path.read_text()


def test_a_failed_start_stops_the_services_this_call_started(services: Services) -> None:
    healthy = services.spec("healthy")
    broken = services.spec("broken", script="raise SystemExit('no luck')", probe=lambda: False)

    with pytest.raises(ServiceStartError, match="no luck"):
        start_services(HOST, [healthy, broken], timeout=10, report=services.report)

    assert not healthy.pid_path.exists() and not broken.pid_path.exists()
    assert [state.running for state in statuses([healthy, broken])] == [False, False]


def test_a_taken_port_names_the_service_and_its_setting_and_starts_nothing(services: Services) -> None:
    port = free_port()
    spec = services.spec("alpha", ports=(PortUse(port, "API", "LOCAL_AWS_ALPHA_PORT"),))
    with socket.socket() as listener:
        listener.bind((HOST, port))
        listener.listen()
        with pytest.raises(PortInUseError) as raised:
            start_services(HOST, [spec], timeout=10, report=services.report)

    assert str(raised.value) == (
        f"Port {port} on {HOST} is already in use; Fake alpha needs it for its API. "
        "Stop what listens there, or choose a free port with LOCAL_AWS_ALPHA_PORT."
    )
    assert not spec.pid_path.exists() and not (services.state("alpha") / "starts").exists()


def test_one_port_for_two_purposes_is_refused(services: Services) -> None:
    port = free_port()
    alpha = services.spec("alpha", ports=(PortUse(port, "API", "LOCAL_AWS_ALPHA_PORT"),))
    beta = services.spec("beta", ports=(PortUse(port, "admin", "LOCAL_AWS_BETA_PORT"),))

    with pytest.raises(PortInUseError, match=f"Fake beta: admin port {port} is also the API port"):
        start_services(HOST, [alpha, beta], timeout=10, report=services.report)


def test_a_stale_pid_file_of_a_dead_process_is_removed(services: Services) -> None:
    spec = services.spec("alpha")
    dead = subprocess.Popen(["true"])
    dead.wait()
    spec.pid_path.parent.mkdir(parents=True)
    spec.pid_path.write_text(_record(dead.pid, process_start="12345").to_json())

    stop_services([spec], timeout=5, report=services.report)

    assert services.lines == [f"Fake alpha: not running (removed the stale pid file of pid {dead.pid})"]
    assert not spec.pid_path.exists()


def test_a_reused_pid_is_never_signalled(services: Services, bystander: subprocess.Popen[bytes]) -> None:
    spec = services.spec("alpha")
    spec.pid_path.parent.mkdir(parents=True)
    # The pid file names the bystander's pid, but a process that started at another time.
    spec.pid_path.write_text(_record(bystander.pid, process_start="1").to_json())

    assert [state.running for state in statuses([spec])] == [False]
    stop_services([spec], timeout=5, report=services.report)

    assert bystander.poll() is None
    assert not spec.pid_path.exists()


def test_an_unreadable_pid_file_counts_as_not_running(services: Services) -> None:
    spec = services.spec("alpha")
    spec.pid_path.parent.mkdir(parents=True)
    spec.pid_path.write_text("not json")

    assert read_record(spec.pid_path) is None
    assert not spec.pid_path.exists()


def test_a_process_ignoring_sigterm_is_killed_after_the_timeout(services: Services) -> None:
    stubborn = "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n" + SERVER
    spec = services.spec("stubborn", script=stubborn)
    start_services(HOST, [spec], timeout=10, report=services.report)
    record = read_record(spec.pid_path)
    assert record is not None

    began = time.monotonic()
    stop_services([spec], timeout=1, report=services.report)

    assert 1 <= time.monotonic() - began < 5
    assert (
        services.lines[-1]
        == f"Fake stubborn: killed: it did not stop within 1 s of SIGTERM (pid {record.pid})"
    )
    assert not process_alive(record.pid)


def test_children_left_behind_by_a_stopped_service_are_stopped_too(services: Services) -> None:
    parent = (
        "import pathlib, subprocess, sys\n"
        "child = subprocess.Popen(['sleep', '60'])\n"
        "(pathlib.Path(sys.argv[1]) / 'child').write_text(str(child.pid))\n" + SERVER
    )
    spec = services.spec("parent", script=parent)
    start_services(HOST, [spec], timeout=10, report=services.report)
    child_pid = int((services.state("parent") / "child").read_text())
    assert process_alive(child_pid)

    stop_services([spec], timeout=10, report=services.report)

    wait_for(lambda: not process_alive(child_pid))


def _record(pid: int, process_start: str) -> ProcessRecord:
    return ProcessRecord(
        service="alpha",
        pid=pid,
        command=("fake",),
        started_at="2026-01-01T00:00:00+00:00",
        process_start=process_start,
        log_path="/nonexistent/alpha.log",
        log_offset=0,
    )
