"""The run deadline: one alert when a run has not finished some hours after it was queued.

Airflow's deadline alerts do the watching: the scheduler stores each run's deadline and, once it has passed,
hands ``alert_missed_deadline`` to the triggerer as an AsyncCallback. This DAG needs a triggerer anyway for
its deferred tasks, so the deadline works with any executor. Airflow drops a run's deadline when the run
succeeds; a run that failed before its deadline has had its failure alert and gets no second one.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from airflow.sdk import AsyncCallback, DagRunState, DeadlineAlert, DeadlineReference

from ground_truth_pipeline.alerts.messages import OverdueRun
from ground_truth_pipeline.alerts.sending import send_alert
from ground_truth_pipeline.alerts.targets import AlertTargets
from ground_truth_pipeline.configuration import CONFIG_SECTION

log = logging.getLogger(__name__)

RUN_DEADLINE_OPTION = "run_deadline_hours"
# Off by default: in Airflow 3.3.2 a DAG with a deadline makes dag.test() and `airflow dags test` fail once
# a run succeeds (apache/airflow#73428), and this project tests and demonstrates the DAG with them. Where a
# scheduler runs the DAG, 72 suits: twelve times the reference notebook's full demo (about 6 hours), and
# more than a crowd labeling job (6 hours per batch of tasks) and training (24 hours at most) normally take.
DEFAULT_RUN_DEADLINE_HOURS = "none"
TURNED_OFF = ("", "none", "off")


def run_deadline_alert(hours: str) -> DeadlineAlert | None:
    """
    The DAG's deadline, ``hours`` after a run is queued; None (no deadline) for 0, ``none`` or ``off``.

    Measured from when the run was queued rather than from its logical date, which a manual run may set to
    any time. A value that is not a positive number of hours fails the DAG's import, naming the option.
    """
    setting = hours.strip().lower()
    if setting in TURNED_OFF:
        return None
    try:
        value = float(setting)
    except ValueError:
        value = math.nan
    if value == 0:
        return None
    if not 0 < value < math.inf:
        raise ValueError(
            f"[{CONFIG_SECTION}] {RUN_DEADLINE_OPTION} must be a positive number of hours, "
            f"or 0 or none for no deadline; got {hours!r}"
        )
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(hours=value),
        callback=AsyncCallback(alert_missed_deadline, kwargs={"deadline_hours": value}),
    )


async def alert_missed_deadline(context: Mapping[str, Any], deadline_hours: float) -> None:
    """Runs in the triggerer. Sending blocks (boto3, smtplib), so it runs in a thread, leaving the
    triggerer's event loop to the other triggers."""
    await asyncio.to_thread(_alert_missed_deadline, context, deadline_hours)


def _alert_missed_deadline(context: Mapping[str, Any], deadline_hours: float) -> None:
    dag_run = context.get("dag_run") or {}
    try:
        overdue = OverdueRun.from_deadline_context(context, deadline_hours)
        if overdue.state == DagRunState.FAILED:
            log.info("Run %s failed before its deadline: no deadline alert.", overdue.run.run_id)
            return
        send_alert(overdue, AlertTargets.for_run(dag_run.get("conf") or {}))
    except Exception:
        log.exception("Could not send the deadline alert for run %s", dag_run.get("dag_run_id"))
