"""Failure callbacks: one alert per failed task (the tasks' ``on_failure_callback``), and one per failed run
(the DAG's own ``on_failure_callback``).

Both are notifiers without template fields, and send through ``sending`` rather than through the providers'
SnsNotifier and SmtpNotifier callbacks, which render the message as a Jinja template: an exception's text
may contain braces.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier, TaskInstanceState
from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

from ground_truth_pipeline.alerts.messages import FailedRun, FailedTask
from ground_truth_pipeline.alerts.sending import send_alert
from ground_truth_pipeline.alerts.targets import AlertTargets

if TYPE_CHECKING:
    import jinja2
    from airflow.sdk import Context

log = logging.getLogger(__name__)

TaskStates = Callable[[str, str], Mapping[str, str]]


class UntemplatedNotifier(BaseNotifier):
    """
    A notifier with no template fields, which therefore renders nothing.

    Skipping the rendering also keeps a DAG callback working under ``dag.test()`` (and ``airflow dags test``),
    where Airflow 3.3 passes a SerializedDAG, which has no template environment (apache/airflow#64649).
    """

    template_fields = ()

    def render_template_fields(self, context: Context, jinja_env: jinja2.Environment | None = None) -> None:
        """Nothing to render."""


class TaskFailureNotifier(UntemplatedNotifier):
    """
    Alerts with a failed task's DAG id, run id, task id, try number, exception and log URL.

    Never raises: a failing alert is logged, not turned into a second error.
    """

    def notify(self, context: Mapping[str, Any]) -> None:
        try:
            send_alert(FailedTask.from_context(context), AlertTargets.for_run(context.get("params") or {}))
        except Exception:
            log.exception("Could not send the task failure alert for run %s", context.get("run_id"))


def task_states_of_run(dag_id: str, run_id: str) -> Mapping[str, str]:
    """Task id to state for each task of one run, asked of the Task SDK's supervisor (in the DAG processor,
    where Airflow runs DAG callbacks, the processor answers through the execution API)."""
    return RuntimeTaskInstance.get_task_states(dag_id=dag_id, run_ids=[run_id]).get(run_id, {})


class RunFailureNotifier(UntemplatedNotifier):
    """
    Alerts once when a DAG run fails, naming the run and all its failed tasks.

    Airflow passes a DAG's failure callback the context of the last task to fail (or only the DAG and the
    run id), so the other failed tasks are read with ``task_states``. Where they cannot be read
    (``dag.test()`` runs callbacks without a supervisor) the alert names the task in the context and says
    so. Never raises.
    """

    def __init__(self, task_states: TaskStates = task_states_of_run) -> None:
        super().__init__()
        self.task_states = task_states

    def notify(self, context: Mapping[str, Any]) -> None:
        try:
            failed_run = FailedRun.from_context(context, self._failed_task_ids(context))
            send_alert(failed_run, AlertTargets.for_run(context.get("params") or {}))
        except Exception:
            log.exception("Could not send the run failure alert for run %s", context.get("run_id"))

    def _failed_task_ids(self, context: Mapping[str, Any]) -> Iterable[str] | None:
        run_id = context["run_id"]
        try:
            states = self.task_states(context["dag"].dag_id, run_id)
        except Exception as error:
            log.warning(
                "Could not read the task states of run %s (%s: %s); the alert names the last failed task.",
                run_id,
                type(error).__name__,
                error,
            )
            return None
        return [task_id for task_id, state in states.items() if state == TaskInstanceState.FAILED]


notify_task_failure = TaskFailureNotifier()
notify_run_failure = RunFailureNotifier()
