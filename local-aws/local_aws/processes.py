"""Start, find and stop the local stack's background processes, by pid files naming exactly what was started.

Each service runs detached (its own session) with its output appended to ``<logs_dir>/<name>.log``; its
pid file records the pid, the command line and the process's start time, so a pid file whose pid now
belongs to another process (the pid was reused) is recognised as stale and nothing is signalled. Starting
is all-or-nothing: if one service fails to come up, the ones this call started are stopped again.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

LOG_TAIL_LINES = 20
_POLL_SECONDS = 0.2
# How long children a stopped service left behind get between SIGTERM and SIGKILL.
_GROUP_GRACE_SECONDS = 2.0
# Services started by this process, kept so that their exit is collected (no zombies when the stack is
# driven from a long-lived process such as a test session).
_children: dict[int, subprocess.Popen[bytes]] = {}
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_DEAD_STATES = frozenset({"Z", "X"})


class StackError(Exception):
    """A problem the user can act on; its message says which service, what went wrong and what to do."""


class PortInUseError(StackError):
    """A port a service needs is taken by another process."""


class ServiceStartError(StackError):
    """A service exited during start or did not answer in time."""


@dataclass(frozen=True)
class PortUse:
    """A port a service listens on, and the setting that changes it."""

    port: int
    purpose: str
    setting: str


@dataclass(frozen=True)
class ServiceSpec:
    """How to run one service of the stack and how to tell that it answers."""

    name: str
    description: str
    # Prepares what the service needs (directories, config files) and returns its command line.
    prepare: Callable[[], tuple[str, ...]]
    endpoint: str
    ports: tuple[PortUse, ...]
    probe: Callable[[], bool]
    log_path: Path
    pid_path: Path
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None


@dataclass(frozen=True)
class ProcessRecord:
    """What a pid file holds: enough to recognise the started process later, even after a pid is reused."""

    service: str
    pid: int
    command: tuple[str, ...]
    started_at: str
    process_start: str
    log_path: str
    log_offset: int

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "command": list(self.command)}, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ProcessRecord:
        data = json.loads(text)
        return cls(**{**data, "command": tuple(data["command"])})


@dataclass(frozen=True)
class ServiceStatus:
    """One service as ``status`` reports it."""

    spec: ServiceSpec
    record: ProcessRecord | None
    answering: bool

    @property
    def running(self) -> bool:
        return self.record is not None


def log_tail(path: Path, offset: int = 0, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log written after byte ``offset``, or a note that there are none."""
    try:
        with path.open("rb") as log:
            log.seek(offset)
            text = log.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    kept = text.splitlines()[-lines:]
    if not kept:
        return f"(nothing was written to {path})"
    return "\n".join(f"  | {line}" for line in kept)


def http_answers(url: str, timeout: float = 2.0) -> bool:
    """Whether a GET of ``url`` answers 200 (directly: loopback needs no proxy)."""
    try:
        with _DIRECT.open(url, timeout=timeout) as response:
            return response.status == 200
    except (OSError, http.client.HTTPException):
        return False


def port_in_use(host: str, port: int) -> bool:
    """Whether something listens on ``host:port`` (binding as a server would, so TIME_WAIT does not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def check_ports(host: str, specs: Sequence[ServiceSpec]) -> None:
    """Raise ``PortInUseError`` naming every taken or doubly-assigned port, the service and its setting."""
    problems: list[str] = []
    seen: dict[int, PortUse] = {}
    for spec in specs:
        for use in spec.ports:
            if not 0 < use.port < 65536:
                problems.append(
                    f"{spec.description}: {use.purpose} port {use.port} is not a valid TCP port; "
                    f"change {use.setting}."
                )
            elif use.port in seen:
                problems.append(
                    f"{spec.description}: {use.purpose} port {use.port} is also the "
                    f"{seen[use.port].purpose} port; give {use.setting} another value."
                )
            elif port_in_use(host, use.port):
                problems.append(
                    f"Port {use.port} on {host} is already in use; {spec.description} needs it for its "
                    f"{use.purpose}. Stop what listens there, or choose a free port with {use.setting}."
                )
            seen.setdefault(use.port, use)
    if problems:
        raise PortInUseError("\n".join(problems))


def _proc_stat(pid: int | str) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state, ppid, pgrp, ...), if readable."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _process_start(pid: int) -> str | None:
    """When ``pid`` started (opaque, comparable), or None if no live process (zombies included) has it."""
    if Path("/proc/self/stat").exists():
        fields = _proc_stat(pid)
        if fields is None or fields[0] in _DEAD_STATES:
            return None
        return fields[19]
    ps = subprocess.run(["ps", "-o", "lstart=", "-p", str(pid)], capture_output=True, text=True, check=False)
    return ps.stdout.strip() or None


def _group_alive(pgid: int) -> bool:
    """Whether process group ``pgid`` has a live member (zombies, which nobody may reap, do not count)."""
    if not Path("/proc/self/stat").exists():
        return _signal_group(pgid, 0)
    for entry in Path("/proc").iterdir():
        fields = _proc_stat(entry.name) if entry.name.isdigit() else None
        if fields is not None and fields[2] == str(pgid) and fields[0] not in _DEAD_STATES:
            return True
    return False


def _reap(pid: int) -> int | None:
    """The exit code of ``pid`` if this process started it and it has exited (collecting it), else None."""
    child = _children.get(pid)
    if child is None or child.poll() is None:
        return None
    del _children[pid]
    return child.returncode


def is_running(record: ProcessRecord) -> bool:
    """Whether the process of ``record`` is still alive and is the very process that was started."""
    _reap(record.pid)
    return _process_start(record.pid) == record.process_start


def read_record(pid_path: Path) -> ProcessRecord | None:
    """The record in ``pid_path``, or None when there is none or it is unreadable (then it is removed)."""
    try:
        return ProcessRecord.from_json(pid_path.read_text())
    except FileNotFoundError:
        return None
    except (ValueError, TypeError, KeyError):
        pid_path.unlink(missing_ok=True)
        return None


def running_record(spec: ServiceSpec) -> ProcessRecord | None:
    """The record of ``spec``'s process if it still runs; a stale pid file is removed."""
    record = read_record(spec.pid_path)
    if record is None:
        return None
    if is_running(record):
        return record
    spec.pid_path.unlink(missing_ok=True)
    return None


def launch(spec: ServiceSpec) -> ProcessRecord:
    """Start ``spec`` detached, its output appended to its log, and write its pid file."""
    command = spec.prepare()
    spec.log_path.parent.mkdir(parents=True, exist_ok=True)
    spec.pid_path.parent.mkdir(parents=True, exist_ok=True)
    offset = spec.log_path.stat().st_size if spec.log_path.exists() else 0
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    with spec.log_path.open("ab") as log:
        log.write(f"--- {started_at} local_aws starts {spec.name}: {shlex.join(command)}\n".encode())
        log.flush()
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=spec.cwd,
                env={**os.environ, **spec.env},
                start_new_session=True,
                close_fds=True,
            )
        except OSError as error:
            raise ServiceStartError(
                f"{spec.description} could not be started: {error} (command: {shlex.join(command)})"
            ) from error
    _children[process.pid] = process
    process_start = _process_start(process.pid) or ""
    record = ProcessRecord(
        service=spec.name,
        pid=process.pid,
        command=command,
        started_at=started_at,
        process_start=process_start,
        log_path=str(spec.log_path),
        log_offset=offset,
    )
    spec.pid_path.write_text(record.to_json())
    return record


def wait_until_answering(spec: ServiceSpec, record: ProcessRecord, timeout: float) -> None:
    """Wait until ``spec`` answers; ``ServiceStartError`` with its log's tail if it exits or times out."""
    deadline = time.monotonic() + timeout
    while True:
        exit_code = _reap(record.pid)
        if exit_code is not None or _process_start(record.pid) != record.process_start:
            code = f" with exit code {exit_code}" if exit_code is not None else ""
            raise ServiceStartError(
                f"{spec.description} exited during start{code}. "
                f"Last lines of its log {spec.log_path}:\n{log_tail(spec.log_path, record.log_offset)}"
            )
        if spec.probe():
            return
        if time.monotonic() >= deadline:
            raise ServiceStartError(
                f"{spec.description} (pid {record.pid}) did not answer at {spec.endpoint} within "
                f"{timeout:.0f} s. Last lines of its log {spec.log_path}:\n"
                f"{log_tail(spec.log_path, record.log_offset)}"
            )
        time.sleep(_POLL_SECONDS)


def _signal_group(pgid: int, signum: int) -> bool:
    """Signal every process of group ``pgid``; False when the group has no process left."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    return True


def _wait(condition: Callable[[], bool], seconds: float) -> bool:
    """Poll ``condition`` for up to ``seconds``; whether it came true."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _terminate(record: ProcessRecord) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(record.pid, signal.SIGTERM)


def _await_exit(record: ProcessRecord, deadline: float) -> bool:
    """Wait until the process exits, SIGKILLing its group at ``deadline``; True if it exited by itself.

    The process leads its own session (it was started detached), so children it leaves behind (worker
    processes) are found by its process group and stopped too.
    """
    if not _wait(lambda: not is_running(record), deadline - time.monotonic()):
        _signal_group(record.pid, signal.SIGKILL)
        _wait(lambda: not is_running(record), _GROUP_GRACE_SECONDS)
        return False
    if _group_alive(record.pid):
        _signal_group(record.pid, signal.SIGTERM)
        if not _wait(lambda: not _group_alive(record.pid), _GROUP_GRACE_SECONDS):
            _signal_group(record.pid, signal.SIGKILL)
    return True


def stop(record: ProcessRecord, timeout: float) -> bool:
    """SIGTERM the process, wait up to ``timeout`` seconds, then SIGKILL; True if it exited on SIGTERM."""
    _terminate(record)
    return _await_exit(record, time.monotonic() + timeout)


def start_services(
    host: str, specs: Sequence[ServiceSpec], timeout: float, report: Callable[[str], None]
) -> None:
    """Start every service of ``specs`` that does not already run, in order, each answering before the next
    starts: the SageMaker service resumes jobs and endpoints at its start, and they read S3 at once."""
    pending: list[ServiceSpec] = []
    for spec in specs:
        record = running_record(spec)
        if record is None:
            pending.append(spec)
        elif spec.probe():
            report(f"{spec.description}: already running (pid {record.pid}) at {spec.endpoint}")
        else:
            wait_until_answering(spec, record, timeout)
            report(f"{spec.description}: already running (pid {record.pid}) at {spec.endpoint}")
    check_ports(host, pending)
    started: list[tuple[ServiceSpec, ProcessRecord]] = []
    try:
        for spec in pending:
            record = launch(spec)
            started.append((spec, record))
            wait_until_answering(spec, record, timeout)
            report(f"{spec.description}: started (pid {record.pid}) at {spec.endpoint}")
    except BaseException:
        for spec, record in started:
            if is_running(record):
                stop(record, timeout=5.0)
            spec.pid_path.unlink(missing_ok=True)
        raise


def stop_services(specs: Sequence[ServiceSpec], timeout: float, report: Callable[[str], None]) -> None:
    """Stop the services of ``specs`` that their pid files name, all at once; data stays in place."""
    running: list[tuple[ServiceSpec, ProcessRecord]] = []
    for spec in specs:
        record = read_record(spec.pid_path)
        if record is None:
            report(f"{spec.description}: not running")
        elif not is_running(record):
            spec.pid_path.unlink(missing_ok=True)
            report(f"{spec.description}: not running (removed the stale pid file of pid {record.pid})")
        else:
            running.append((spec, record))
    for _, record in running:
        _terminate(record)
    deadline = time.monotonic() + timeout
    for spec, record in running:
        graceful = _await_exit(record, deadline)
        spec.pid_path.unlink(missing_ok=True)
        how = "stopped" if graceful else f"killed: it did not stop within {timeout:.0f} s of SIGTERM"
        report(f"{spec.description}: {how} (pid {record.pid})")


def statuses(specs: Sequence[ServiceSpec]) -> list[ServiceStatus]:
    """Each service's state: its live process record (if any) and whether it answers."""
    result = []
    for spec in specs:
        record = running_record(spec)
        result.append(ServiceStatus(spec=spec, record=record, answering=record is not None and spec.probe()))
    return result


def python_command(*args: str) -> tuple[str, ...]:
    """A command line running this interpreter, unbuffered so a crash's last words reach the log."""
    return (sys.executable, "-u", *args)
