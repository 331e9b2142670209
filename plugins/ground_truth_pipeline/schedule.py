"""The DAG's schedule, set in Airflow's configuration rather than in code.

``[ground_truth_object_detection] schedule`` (or ``AIRFLOW__GROUND_TRUTH_OBJECT_DETECTION__SCHEDULE``) is a
cron expression, one of Airflow's cron presets (``@hourly``, ``@daily``, ``@weekly``, ``@monthly``,
``@quarterly``, ``@yearly``) or ``none``. The default is ``none``: every run costs money on AWS, so nothing
runs until someone asks for it.

A schedule becomes a ``CronDataIntervalTimetable`` in UTC: each run covers the interval that has just ended
(the run after midnight of 6 December labels the partition of 5 December: ``{{ ds }}`` is 2026-12-05), which
is what date-partitioned arrivals need, and what makes the DAG backfillable.
"""

from __future__ import annotations

from airflow.sdk.definitions.timetables.interval import CronDataIntervalTimetable
from airflow.sdk.exceptions import AirflowTimetableInvalid

from ground_truth_pipeline.configuration import CONFIG_SECTION, env_variable

SCHEDULE_OPTION = "schedule"
DEFAULT_SCHEDULE = "none"
SCHEDULE_TIMEZONE = "UTC"


def schedule_from_config(value: str) -> CronDataIntervalTimetable | None:
    """The timetable that ``value`` names; ``None`` for ``none``. A clear error names the option otherwise."""
    text = value.strip()
    if text.lower() in ("", "none"):
        return None
    timetable = CronDataIntervalTimetable(text, timezone=SCHEDULE_TIMEZONE)
    if timetable.expression.startswith("@"):
        raise ValueError(_invalid(value, f"{text} is not one of Airflow's cron presets"))
    try:
        timetable.validate()
    except AirflowTimetableInvalid as err:
        raise ValueError(_invalid(value, str(err))) from err
    return timetable


def _invalid(value: str, reason: str) -> str:
    return (
        f"[{CONFIG_SECTION}] {SCHEDULE_OPTION} = {value!r} ({env_variable(SCHEDULE_OPTION)}) "
        f"is not a cron expression, a cron preset or 'none': {reason}"
    )
