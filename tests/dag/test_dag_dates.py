"""The DAG's dates against today's clock, with and without a configured schedule.

The DAG has started, catches up on nothing, a manual run covers a past interval, and with a schedule the
first run is the interval that has just ended (a backfill then covers earlier ones).
"""

from datetime import UTC, datetime, timedelta

import pytest
from airflow.serialization.serialized_objects import coerce_to_core_timetable
from airflow.timetables.base import TimeRestriction

from tests.conftest import ROOT

pytestmark = pytest.mark.calendar
DAG_ID = "ground_truth_object_detection"
SCHEDULE_VARIABLE = "AIRFLOW__GROUND_TRUTH_OBJECT_DETECTION__SCHEDULE"


def load_dag_bag(monkeypatch, schedule: str | None):
    from airflow.dag_processing.dagbag import DagBag

    if schedule is None:
        monkeypatch.delenv(SCHEDULE_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(SCHEDULE_VARIABLE, schedule)
    return DagBag(dag_folder=str(ROOT / "dags"))


@pytest.fixture(params=[None, "@daily", "30 6 * * *"], ids=["default", "daily", "cron"])
def dag(request, monkeypatch):
    bag = load_dag_bag(monkeypatch, request.param)
    assert bag.import_errors == {}
    return bag.dags[DAG_ID]


def test_the_dag_has_started_and_catches_up_on_nothing(dag):
    now = datetime.now(UTC)
    assert dag.start_date <= now
    assert dag.catchup is False
    restriction = TimeRestriction(earliest=dag.start_date, latest=None, catchup=dag.catchup)
    first = coerce_to_core_timetable(dag.timetable).next_dagrun_info(
        last_automated_data_interval=None, restriction=restriction
    )
    if first is not None:
        assert now - timedelta(days=1) <= first.data_interval.end <= now
        assert first.data_interval.end - first.data_interval.start == timedelta(days=1)


def test_a_manual_run_now_covers_a_past_interval(dag):
    now = datetime.now(UTC)
    interval = coerce_to_core_timetable(dag.timetable).infer_manual_data_interval(run_after=now)
    assert dag.start_date <= interval.start <= interval.end <= now + timedelta(seconds=1)


def test_the_default_is_unscheduled_and_a_schedule_makes_the_dag_backfillable(monkeypatch):
    unscheduled = load_dag_bag(monkeypatch, None).dags[DAG_ID]
    daily = load_dag_bag(monkeypatch, "@daily").dags[DAG_ID]
    assert not coerce_to_core_timetable(unscheduled.timetable).periodic
    assert coerce_to_core_timetable(daily.timetable).periodic


def test_an_unknown_schedule_is_an_import_error_that_names_the_option(monkeypatch):
    bag = load_dag_bag(monkeypatch, "every other tuesday")
    assert DAG_ID not in bag.dags
    (error,) = bag.import_errors.values()
    assert "[ground_truth_object_detection] schedule = 'every other tuesday'" in error
