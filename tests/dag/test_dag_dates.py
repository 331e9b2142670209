"""The DAG's dates against today's clock: it has started, catches up on nothing, a run now is a run now."""

from datetime import UTC, datetime, timedelta

import pytest
from airflow.serialization.serialized_objects import coerce_to_core_timetable
from airflow.timetables.base import TimeRestriction

from tests.conftest import ROOT

pytestmark = pytest.mark.calendar
DAG_ID = "ground_truth_object_detection"


@pytest.fixture(scope="module")
def dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    return bag.dags[DAG_ID]


def test_the_dag_has_started_and_catches_up_on_nothing(dag):
    assert dag.start_date <= datetime.now(UTC)
    assert dag.catchup is False
    restriction = TimeRestriction(earliest=dag.start_date, latest=None, catchup=dag.catchup)
    first = coerce_to_core_timetable(dag.timetable).next_dagrun_info(
        last_automated_data_interval=None, restriction=restriction
    )
    if first is not None:
        assert first.run_after >= datetime.now(UTC) - timedelta(days=1)


def test_a_manual_run_now_covers_a_past_interval(dag):
    now = datetime.now(UTC)
    interval = coerce_to_core_timetable(dag.timetable).infer_manual_data_interval(run_after=now)
    assert interval.start <= interval.end <= now + timedelta(seconds=1)
    assert interval.start >= dag.start_date
