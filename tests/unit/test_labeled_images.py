"""The labeled-image record of a class on moto's S3: claims, takeovers, and what a finished job leaves."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from ground_truth_pipeline.labeled_images import STALE_CLAIM_AGE, LabeledImages, record_key

BUCKET = "experiments"
CLASS_ROOT = "demo/bird"
IMAGE = "s3://incoming/dt=2026-12-01/a.jpg"
OTHER = "s3://incoming/dt=2026-12-01/b.jpg"


@pytest.fixture
def s3(s3_client):
    s3_client.create_bucket(Bucket=BUCKET)
    return s3_client


def record(s3, source_uri=IMAGE):
    body = s3.get_object(Bucket=BUCKET, Key=record_key(CLASS_ROOT, source_uri))["Body"].read()
    return json.loads(body)


def ledger(s3, run_id, statuses=None):
    statuses = statuses or {}
    return LabeledImages(s3, BUCKET, CLASS_ROOT, run_id, f"job-{run_id}", statuses.get)


def test_the_first_claim_wins_and_the_same_run_claims_again(s3):
    assert ledger(s3, "run-1").claim(IMAGE)
    assert ledger(s3, "run-1").claim(IMAGE)
    assert not ledger(s3, "run-2", {"job-run-1": "InProgress"}).claim(IMAGE)
    assert record(s3) | {"updated_at": None} == {
        "source_uri": IMAGE,
        "run_id": "run-1",
        "labeling_job": "job-run-1",
        "state": "claimed",
        "updated_at": None,
    }
    assert ledger(s3, "run-2").claim(OTHER)


@pytest.mark.parametrize("status", ["Failed", "Stopped"])
def test_a_claim_of_a_job_that_ended_without_labels_is_taken_over(s3, status):
    assert ledger(s3, "run-1").claim(IMAGE)
    assert ledger(s3, "run-2", {"job-run-1": status}).claim(IMAGE)
    assert record(s3)["run_id"] == "run-2"
    assert not ledger(s3, "run-1", {"job-run-2": "InProgress"}).claim(IMAGE)


@pytest.mark.parametrize("status", ["InProgress", "Initializing", "Completed", "Stopping"])
def test_a_claim_of_a_job_that_may_label_the_image_is_respected(s3, status):
    assert ledger(s3, "run-1").claim(IMAGE)
    assert not ledger(s3, "run-2", {"job-run-1": status}).claim(IMAGE)


def test_a_claim_whose_job_never_appeared_is_taken_over_only_when_stale(s3, time_machine):
    time_machine.move_to(datetime.now(UTC), tick=True)
    assert ledger(s3, "run-1").claim(IMAGE)
    assert not ledger(s3, "run-2").claim(IMAGE)
    time_machine.shift(STALE_CLAIM_AGE + timedelta(minutes=1))
    assert ledger(s3, "run-2").claim(IMAGE)
    assert record(s3)["run_id"] == "run-2"


def test_a_labeled_image_is_never_claimed_by_another_run_but_stays_its_runs(s3):
    first = ledger(s3, "run-1")
    assert first.claim(IMAGE) and first.claim(OTHER)
    assert first.finish(labeled=[IMAGE], not_labeled=[OTHER]) == (1, 1)
    assert record(s3)["state"] == "labeled"
    assert first.claim(IMAGE)  # a cleared run selects its images again, and finds its own job
    assert record(s3)["state"] == "labeled"
    assert not ledger(s3, "run-2", {"job-run-1": "Failed"}).claim(IMAGE)
    assert not first.is_recorded(OTHER)
    assert ledger(s3, "run-2").claim(OTHER)


def test_finishing_never_releases_another_runs_claim(s3):
    assert ledger(s3, "run-1").claim(IMAGE)
    assert ledger(s3, "run-2").finish(labeled=[], not_labeled=[IMAGE]) == (0, 0)
    assert record(s3)["run_id"] == "run-1"


def test_a_record_this_pipeline_did_not_write_is_a_clear_error(s3):
    s3.put_object(Bucket=BUCKET, Key=record_key(CLASS_ROOT, IMAGE), Body=b"{}")
    with pytest.raises(ValueError, match=r"labeled-image record .* is not one this pipeline wrote"):
        ledger(s3, "run-1").claim(IMAGE)


def test_the_record_keeps_the_time_of_the_claim(s3):
    before = datetime.now(UTC)
    ledger(s3, "run-1").claim(IMAGE)
    assert before <= datetime.fromisoformat(record(s3)["updated_at"]) <= datetime.now(UTC)
