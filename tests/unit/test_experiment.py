import pytest

from ground_truth_pipeline.experiment import (
    MAX_RESOURCE_NAME_LENGTH,
    RETRY_SUFFIX_ROOM,
    SAGEMAKER_NAME_PATTERN,
    ExperimentLayout,
    ExperimentRun,
    resource_name,
    run_slug,
)

DAG_ID = "ground_truth_object_detection"
RUN_ID = "manual__2026-11-26T09:00:00.123456+00:00"


@pytest.mark.parametrize("kind", ["label", "train", "model", "transform", "epc", "endpoint"])
@pytest.mark.parametrize("class_name", ["Bird", "Blue jay", "x" * 200, "Ünïcode ☃ class", "---"])
def test_resource_names_are_valid_sagemaker_names_with_room_for_a_retry_suffix(kind, class_name):
    name = resource_name(DAG_ID, RUN_ID, class_name, kind)
    assert SAGEMAKER_NAME_PATTERN.match(name)
    assert len(name) <= MAX_RESOURCE_NAME_LENGTH - RETRY_SUFFIX_ROOM
    assert SAGEMAKER_NAME_PATTERN.match(f"{name}-99")
    assert name.endswith(f"-{kind}")


def test_resource_names_are_deterministic_and_distinct_per_run_and_class():
    assert resource_name(DAG_ID, RUN_ID, "Bird", "train") == resource_name(DAG_ID, RUN_ID, "Bird", "train")
    names = {
        resource_name(DAG_ID, run_id, class_name, "train")
        for run_id in (RUN_ID, "manual__2026-11-26T09:00:00.123456-00:00", "scheduled__2026-11-27")
        for class_name in ("Bird", "Blue jay", "bird!")
    }
    assert len(names) == 9


def test_unknown_resource_kind_is_rejected():
    with pytest.raises(ValueError, match="Unknown resource kind 'job'"):
        resource_name(DAG_ID, RUN_ID, "Bird", "job")


def test_run_slug_keeps_run_ids_that_sanitise_alike_apart():
    assert run_slug("manual__2026+00:00") != run_slug("manual__2026-00-00")
    assert run_slug(RUN_ID).startswith("manual-2026-11-26t09-00-00-123456-00-00-")


def test_layout_puts_everything_under_one_root_per_class_and_run():
    layout = ExperimentLayout.for_run("bucket", "/exp/demo/", "Blue jay", RUN_ID)
    root = f"exp/demo/blue-jay/{run_slug(RUN_ID)}"
    assert layout.root_key == root
    assert layout.image_key("0a1b") == f"{root}/images/0a1b.jpg"
    assert layout.uri("input.manifest") == f"s3://bucket/{root}/input.manifest"
    assert layout.output_manifest_key("job") == f"{root}/labeling/job/manifests/output/output.manifest"
    assert layout.labeling_output_uri == f"s3://bucket/{root}/labeling/"
    keys = [
        layout.metrics_key,
        layout.train_manifest_key,
        layout.test_image_key("x"),
        layout.reference_boxes_key,
    ]
    assert all(key.startswith(root + "/") for key in keys)


def test_layout_without_prefix_has_no_leading_slash():
    layout = ExperimentLayout.for_run("bucket", "", "Bird", "r")
    assert layout.root_key == f"bird/{run_slug('r')}"


def test_other_class_or_run_never_shares_the_root():
    first = ExperimentLayout.for_run("b", "p", "Bird", RUN_ID).root_key
    assert ExperimentLayout.for_run("b", "p", "Blue jay", RUN_ID).root_key != first
    assert ExperimentLayout.for_run("b", "p", "Bird", RUN_ID + "x").root_key != first


def test_experiment_run_round_trips_through_a_small_dict():
    run = ExperimentRun(DAG_ID, RUN_ID, "bucket", "prefix", "Bird", "/m/015p6")
    assert ExperimentRun.from_dict(run.as_dict()) == run
    assert run.layout == ExperimentLayout.for_run("bucket", "prefix", "Bird", RUN_ID)
    assert run.resource_name("label") == resource_name(DAG_ID, RUN_ID, "Bird", "label")
