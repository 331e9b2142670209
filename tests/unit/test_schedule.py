import pytest
from airflow.sdk.definitions.timetables.interval import CronDataIntervalTimetable

from ground_truth_pipeline.schedule import schedule_from_config


@pytest.mark.parametrize("value", ["none", "None", "  none ", ""])
def test_none_means_no_schedule(value):
    assert schedule_from_config(value) is None


@pytest.mark.parametrize(
    ("value", "expression"),
    [("@daily", "0 0 * * *"), ("@hourly", "0 * * * *"), (" 15 3 * * 1-5 ", "15 3 * * 1-5")],
)
def test_presets_and_cron_expressions_are_utc_data_intervals(value, expression):
    timetable = schedule_from_config(value)
    assert isinstance(timetable, CronDataIntervalTimetable)
    assert (timetable.expression, str(timetable.timezone)) == (expression, "UTC")


@pytest.mark.parametrize(
    ("value", "reason"),
    [("@fortnightly", "not one of Airflow's cron presets"), ("every day", "columns"), ("61 * * * *", "61")],
)
def test_a_bad_schedule_names_the_option_and_the_value(value, reason):
    with pytest.raises(ValueError, match=r"\[ground_truth_object_detection\] schedule") as raised:
        schedule_from_config(value)
    assert repr(value) in str(raised.value)
    assert "AIRFLOW__GROUND_TRUTH_OBJECT_DETECTION__SCHEDULE" in str(raised.value)
    assert reason in str(raised.value)
