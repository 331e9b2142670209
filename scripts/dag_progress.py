"""Runs the DAG with ``airflow dags test`` and shows its progress in a few lines instead of its logs.

Airflow's own output (several hundred lines of task logs) goes to a log file. Meanwhile this process reads
the run's task instances from Airflow's metadata database and prints one line per task as it ends, with
its state and duration, and the labeling job's counters whenever they change. A task that fails is named
with the log file to read.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

POLL_S = 2.0
ENDED = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})
FAILED = frozenset({"failed", "upstream_failed"})
_MARKS = {
    "success": "ok",
    "skipped": "skipped",
    "failed": "FAILED",
    "upstream_failed": "not run (upstream failed)",
}


@dataclass
class _Progress:
    """What has been printed so far."""

    started: datetime
    run_id: str | None = None
    shown_tasks: set[str] = field(default_factory=set)
    deferred: set[str] = field(default_factory=set)
    counters: dict[str, str] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)


def run_dag_with_progress(dag_id: str, conf: dict, log_path: Path, sagemaker: Any) -> str:
    """Run the DAG to its end with its output in ``log_path``; the run's final state."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    progress = _Progress(datetime.now(UTC))
    command = [sys.executable, "-m", "airflow", "dags", "test", dag_id, "--conf", json.dumps(conf)]
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        while process.poll() is None:
            _show(dag_id, progress, sagemaker)
            time.sleep(POLL_S)
    _show(dag_id, progress, sagemaker)
    state = _run_state(dag_id, progress) or "failed"
    if process.returncode != 0 or state != "success":
        failed = ", ".join(progress.failed) or "the run"
        print(f"{failed} failed; Airflow's full log is in {log_path}", flush=True)
    return state


def _show(dag_id: str, progress: _Progress, sagemaker: Any) -> None:
    for task_id, state, seconds in _task_states(dag_id, progress):
        if state == "deferred" and task_id not in progress.deferred:
            progress.deferred.add(task_id)
            print(f"  {task_id:<40} waiting (deferred) for the AWS job", flush=True)
        if state in ENDED and task_id not in progress.shown_tasks:
            progress.shown_tasks.add(task_id)
            if state in FAILED:
                progress.failed.append(task_id)
            took = "" if seconds is None else f"{seconds:7.1f} s"
            print(f"  {task_id:<40} {_MARKS.get(state, state):<10} {took}", flush=True)
    _show_labeling(progress, sagemaker)


def _show_labeling(progress: _Progress, sagemaker: Any) -> None:
    """The counters of the run's labeling jobs in progress, when they change."""
    jobs = sagemaker.list_labeling_jobs(CreationTimeAfter=progress.started)["LabelingJobSummaryList"]
    for job in jobs:
        counters = job["LabelCounters"]
        line = (
            f"{counters['TotalLabeled']} labeled ({counters['HumanLabeled']} by humans, "
            f"{counters['MachineLabeled']} by machine), {counters['FailedNonRetryableError']} failed, "
            f"{counters['Unlabeled']} to go"
        )
        name = job["LabelingJobName"]
        if progress.counters.get(name) != line:
            progress.counters[name] = line
            print(f"    labeling job {name} {job['LabelingJobStatus']}: {line}", flush=True)


def _session_rows(query: Any) -> list[Any]:
    """Rows of a query on Airflow's metadata database; none while the running DAG holds its lock."""
    from airflow.utils.session import create_session
    from sqlalchemy.exc import OperationalError

    try:
        with create_session() as session:
            return list(session.execute(query))
    except OperationalError:
        return []


def _run_id(dag_id: str, progress: _Progress) -> str | None:
    if progress.run_id is None:
        from airflow.models import DagRun
        from sqlalchemy import select

        rows = _session_rows(
            select(DagRun.run_id)
            .where(DagRun.dag_id == dag_id, DagRun.start_date >= progress.started)
            .order_by(DagRun.start_date.desc())
            .limit(1)
        )
        progress.run_id = rows[0][0] if rows else None
    return progress.run_id


def _task_states(dag_id: str, progress: _Progress) -> list[tuple[str, str, float | None]]:
    from airflow.models import TaskInstance
    from sqlalchemy import select

    run_id = _run_id(dag_id, progress)
    if run_id is None:
        return []
    rows = _session_rows(
        select(TaskInstance.task_id, TaskInstance.state, TaskInstance.duration, TaskInstance.end_date)
        .where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
        .order_by(TaskInstance.end_date)
    )
    return [
        (task_id, str(getattr(state, "value", state) or ""), duration) for task_id, state, duration, _ in rows
    ]


def _run_state(dag_id: str, progress: _Progress) -> str | None:
    from airflow.models import DagRun
    from sqlalchemy import select

    run_id = _run_id(dag_id, progress)
    if run_id is None:
        return None
    rows = _session_rows(select(DagRun.state).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
    return _text(rows[0][0]) if rows else None


def _text(state: Any) -> str:
    """A state as its name: Airflow's states are string enums, or None before they are set."""
    return str(getattr(state, "value", state) or "")
