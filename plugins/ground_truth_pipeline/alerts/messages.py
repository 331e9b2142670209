"""What an alert says: one short subject line and a plain-text message, read from what Airflow passes.

The same subject and message go to SNS and to e-mail. SNS takes a subject of at most 100 characters on one
line, so every subject is cut to that.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

SUBJECT_MAX_LENGTH = 100
# SNS accepts 256 KiB per message; an exception text longer than this is cut, the alert still goes out.
ERROR_TEXT_MAX_LENGTH = 10_000
UNKNOWN = "unknown"


class Alert(Protocol):
    """What sending needs of an alert."""

    @property
    def subject(self) -> str: ...

    @property
    def message(self) -> str: ...


def one_line_subject(text: str) -> str:
    """``text`` on one line of at most 100 characters, the SNS limit."""
    subject = " ".join(text.split())
    if len(subject) <= SUBJECT_MAX_LENGTH:
        return subject
    return subject[: SUBJECT_MAX_LENGTH - 3] + "..."


def _text(value: Any) -> str | None:
    """A date from a context object (datetime) or from JSON (already a string), as text."""
    if value is None:
        return None
    return value.isoformat() if isinstance(value, datetime) else str(value)


@dataclass(frozen=True)
class FailedTask:
    """What a task-failure alert says, read from a task's failure-callback context."""

    dag_id: str
    run_id: str
    task_id: str
    try_number: str
    error: str
    log_url: str

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> FailedTask:
        """A context without a task instance (a DAG-level callback) gives fields that read ``unknown``."""
        ti = context.get("ti")
        exception = context.get("exception")
        error = (
            f"{type(exception).__name__}: {exception}"
            if exception is not None
            else str(context.get("reason", "not given"))
        )
        if len(error) > ERROR_TEXT_MAX_LENGTH:
            error = error[:ERROR_TEXT_MAX_LENGTH] + " [cut]"
        return cls(
            dag_id=getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", UNKNOWN),
            run_id=context.get("run_id") or getattr(ti, "run_id", UNKNOWN),
            task_id=getattr(ti, "task_id", UNKNOWN),
            try_number=str(getattr(ti, "try_number", UNKNOWN)),
            error=error,
            log_url=getattr(ti, "log_url", UNKNOWN),
        )

    @property
    def subject(self) -> str:
        failed = self.dag_id if self.task_id == UNKNOWN else f"{self.dag_id}.{self.task_id}"
        return one_line_subject(f"Airflow task failed: {failed}")

    @property
    def message(self) -> str:
        return "\n".join(
            [
                "An Airflow task failed.",
                f"DAG: {self.dag_id}",
                f"Run: {self.run_id}",
                f"Task: {self.task_id}",
                f"Try: {self.try_number}",
                f"Error: {self.error}",
                f"Log: {self.log_url}",
            ]
        )


@dataclass(frozen=True)
class RunInfo:
    """The run an alert is about. Failure callbacks pass it as an object, deadline callbacks as JSON."""

    dag_id: str
    run_id: str
    logical_date: str | None = None
    data_interval: tuple[str, str] | None = None

    @classmethod
    def from_callback_context(cls, context: Mapping[str, Any]) -> RunInfo:
        """A DAG failure callback's context has the run's dates only when Airflow passed a failed task."""
        dag_run = context.get("dag_run")
        start = _text(getattr(dag_run, "data_interval_start", None))
        end = _text(getattr(dag_run, "data_interval_end", None))
        return cls(
            dag_id=getattr(context.get("dag"), "dag_id", None) or getattr(dag_run, "dag_id", UNKNOWN),
            run_id=context.get("run_id") or getattr(dag_run, "run_id", UNKNOWN),
            logical_date=_text(getattr(dag_run, "logical_date", None)),
            data_interval=(start, end) if start and end else None,
        )

    @classmethod
    def from_dag_run_json(cls, dag_run: Mapping[str, Any]) -> RunInfo:
        """The run as a deadline callback gets it: the REST API's DAG run response, as JSON."""
        start = _text(dag_run.get("data_interval_start"))
        end = _text(dag_run.get("data_interval_end"))
        return cls(
            dag_id=dag_run.get("dag_id") or UNKNOWN,
            run_id=dag_run.get("dag_run_id") or UNKNOWN,
            logical_date=_text(dag_run.get("logical_date")),
            data_interval=(start, end) if start and end else None,
        )

    def lines(self) -> list[str]:
        lines = [f"DAG: {self.dag_id}", f"Run: {self.run_id}"]
        if self.logical_date:
            lines.append(f"Logical date: {self.logical_date}")
        if self.data_interval:
            lines.append(f"Data interval: {self.data_interval[0]} to {self.data_interval[1]}")
        return lines


@dataclass(frozen=True)
class FailedTaskInstance:
    """A failed task of a run; its try number is known for the task Airflow passed to the callback."""

    task_id: str
    try_number: int | None = None

    def line(self) -> str:
        return f"- {self.task_id}" if self.try_number is None else f"- {self.task_id}, try {self.try_number}"


@dataclass(frozen=True)
class FailedRun:
    """What the run-failure alert says: the run, why Airflow failed it, and which of its tasks failed."""

    run: RunInfo
    reason: str
    failed_tasks: tuple[FailedTaskInstance, ...]
    all_tasks_listed: bool
    log_url: str | None = None

    @classmethod
    def from_context(cls, context: Mapping[str, Any], failed_task_ids: Iterable[str] | None) -> FailedRun:
        """``failed_task_ids`` is None when the run's tasks could not be read: the alert then names the
        failed task that Airflow passed in the context (the last one to fail), if any."""
        ti = context.get("ti")
        last = FailedTaskInstance(ti.task_id, ti.try_number) if ti is not None else None
        if failed_task_ids is None:
            failed_tasks = (last,) if last else ()
        else:
            failed_tasks = tuple(
                last if last and task_id == last.task_id else FailedTaskInstance(task_id)
                for task_id in sorted(failed_task_ids)
            )
        return cls(
            run=RunInfo.from_callback_context(context),
            reason=str(context.get("reason") or "not given"),
            failed_tasks=failed_tasks,
            all_tasks_listed=failed_task_ids is not None,
            log_url=getattr(ti, "log_url", None),
        )

    @property
    def subject(self) -> str:
        return one_line_subject(f"Airflow run failed: {self.run.dag_id} {self.run.run_id}")

    @property
    def message(self) -> str:
        heading = (
            f"Failed tasks ({len(self.failed_tasks)}):"
            if self.all_tasks_listed
            else "Failed tasks (the run's tasks could not be read; this is the last to fail):"
        )
        tasks = [task.line() for task in self.failed_tasks] or ["- none recorded"]
        lines = ["An Airflow DAG run failed.", *self.run.lines(), f"Reason: {self.reason}", heading, *tasks]
        if self.log_url:
            lines.append(f"Log of the last failed task: {self.log_url}")
        return "\n".join(lines)


@dataclass(frozen=True)
class OverdueRun:
    """What the deadline alert says: the run, its state, and the deadline it missed."""

    run: RunInfo
    state: str
    queued_at: str
    deadline: str
    deadline_hours: float

    @classmethod
    def from_deadline_context(cls, context: Mapping[str, Any], deadline_hours: float) -> OverdueRun:
        """The context Airflow's scheduler gives a deadline callback: ``dag_run`` and ``deadline``."""
        dag_run = context.get("dag_run") or {}
        deadline = context.get("deadline") or {}
        return cls(
            run=RunInfo.from_dag_run_json(dag_run),
            state=str(dag_run.get("state") or UNKNOWN),
            queued_at=_text(dag_run.get("queued_at")) or UNKNOWN,
            deadline=_text(deadline.get("deadline_time")) or UNKNOWN,
            deadline_hours=deadline_hours,
        )

    @property
    def subject(self) -> str:
        return one_line_subject(f"Airflow run past its deadline: {self.run.dag_id} {self.run.run_id}")

    @property
    def message(self) -> str:
        return "\n".join(
            [
                "An Airflow DAG run has not finished by its deadline.",
                *self.run.lines(),
                f"State: {self.state}",
                f"Queued at: {self.queued_at}",
                f"Deadline: {self.deadline} ({self.deadline_hours:g} hours after it was queued)",
            ]
        )
