"""The DAG parses in a fresh process, with the expected tasks, wiring, params and setup/teardown pairing."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAG_ID = "ground_truth_object_detection"

DESCRIBE_DAG = textwrap.dedent(
    """
    import json, sys, time
    started = time.perf_counter()
    from airflow.dag_processing.dagbag import DagBag
    from airflow.serialization.serialized_objects import DagSerialization
    bag = DagBag(dag_folder=sys.argv[1])
    dag = bag.dags.get(sys.argv[2])
    print(json.dumps({
        "import_errors": {k: str(v) for k, v in bag.import_errors.items()},
        "heavy_modules": sorted(m for m in ("matplotlib", "pandas", "scipy", "faster_coco_eval", "PIL")
                                if m in sys.modules),
        "tasks": None if dag is None else {
            t.task_id: {
                "upstream": sorted(t.upstream_task_ids),
                "is_setup": t.is_setup,
                "is_teardown": t.is_teardown,
                "type": type(t).__name__,
                "retries": t.retries,
                "has_failure_callback": bool(t.on_failure_callback),
            }
            for t in dag.tasks
        },
        "params": None if dag is None else {k: dag.params.get_param(k).description for k in dag.params},
        "timetable": None if dag is None else type(dag.timetable).__name__,
        "doc_md": None if dag is None else bool(dag.doc_md),
        "group_docs": None if dag is None else {
            g: bool(dag.task_group_dict[g].doc_md) for g in dag.task_group_dict
        },
        "dag_failure_callback": None if dag is None else type(dag.on_failure_callback).__name__,
        "deadlines": None if dag is None else DagSerialization.to_dict(dag)["dag"].get("deadline"),
    }))
    """
)
RUN_DEADLINE_SETTING = "AIRFLOW__GROUND_TRUTH_OBJECT_DETECTION__RUN_DEADLINE_HOURS"


def describe_dag(run_deadline_hours: str | None = None) -> dict:
    """The DAG as a fresh process parses it; ``run_deadline_hours`` None leaves that setting unset."""
    env = {name: value for name, value in os.environ.items() if name != RUN_DEADLINE_SETTING}
    if run_deadline_hours is not None:
        env[RUN_DEADLINE_SETTING] = run_deadline_hours
    result = subprocess.run(
        [sys.executable, "-c", DESCRIBE_DAG, str(ROOT / "dags"), DAG_ID],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env=env,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def dag_description() -> dict:
    return describe_dag()


def test_dag_imports_without_errors_or_heavy_libraries(dag_description):
    assert dag_description["import_errors"] == {}
    assert dag_description["tasks"], f"{DAG_ID} not found in dags/"
    assert dag_description["heavy_modules"] == []


def test_groups_and_tasks_in_the_reference_order(dag_description):
    tasks = dag_description["tasks"]
    expected = {
        "prepare.select_images",
        "prepare.copy_images",
        "prepare.write_labeling_inputs",
        "label.build_labeling_job_request",
        "label.start_labeling_job",
        "label.wait_for_labeling_job",
        "label.record_labeled_images",
        "analyse.analyse_labels",
        "train.split_output_manifest",
        "train.build_training_job_request",
        "train.train_model",
        "deploy.build_model_request",
        "deploy.create_model",
        "deploy.build_transform_job_request",
        "deploy.batch_transform",
        "deploy.plot_batch_predictions",
        "deploy.build_endpoint_request",
        "deploy.create_endpoint",
        "deploy.invoke_endpoint",
        "deploy.delete_endpoint",
        # The report is completed at the end, from what training, the transform and the endpoint left.
        "report.complete_report",
    }
    assert set(tasks) == expected
    up = {task_id: set(spec["upstream"]) for task_id, spec in tasks.items()}
    assert "prepare.copy_images" in up["prepare.write_labeling_inputs"]
    assert (
        "prepare.write_labeling_inputs"
        in up["label.start_labeling_job"] | up["label.build_labeling_job_request"]
    )
    assert "label.start_labeling_job" in up["label.wait_for_labeling_job"]
    assert "label.wait_for_labeling_job" in up["label.record_labeled_images"]
    assert "label.record_labeled_images" in up["analyse.analyse_labels"]
    assert "analyse.analyse_labels" in up["train.split_output_manifest"]
    assert "train.build_training_job_request" in up["train.train_model"]
    assert "train.train_model" in up["deploy.build_model_request"]
    assert "deploy.create_model" in up["deploy.batch_transform"] | up["deploy.build_transform_job_request"]
    assert "deploy.create_endpoint" in up["deploy.invoke_endpoint"]
    assert "deploy.invoke_endpoint" in up["deploy.delete_endpoint"]
    assert {"train.train_model", "deploy.batch_transform", "deploy.invoke_endpoint"} <= up[
        "report.complete_report"
    ]


def test_the_report_waits_for_the_endpoint_answer_and_never_holds_up_its_deletion(dag_description):
    """A report that fails must not leave the endpoint running: the teardown does not wait for the report,
    and the report does not wait for the teardown either (a failed deletion still leaves a whole report)."""
    tasks = dag_description["tasks"]
    downstream_of_report = {t for t, spec in tasks.items() if "report.complete_report" in spec["upstream"]}
    assert downstream_of_report == set()
    assert "report.complete_report" not in tasks["deploy.delete_endpoint"]["upstream"]
    assert "deploy.delete_endpoint" not in tasks["report.complete_report"]["upstream"]
    assert not tasks["report.complete_report"]["is_setup"]
    assert not tasks["report.complete_report"]["is_teardown"]


def test_stock_provider_operators_drive_training_and_deployment(dag_description):
    types = {task_id: spec["type"] for task_id, spec in dag_description["tasks"].items()}
    assert types["label.start_labeling_job"] == "SageMakerCreateLabelingJobOperator"
    assert types["label.wait_for_labeling_job"] == "SageMakerLabelingJobSensor"
    assert types["train.train_model"] == "ResumableTrainingOperator"
    assert types["deploy.create_model"] == "ResumableModelOperator"
    assert types["deploy.batch_transform"] == "ResumableTransformOperator"
    assert types["deploy.create_endpoint"] == "ResumableEndpointOperator"


def test_endpoint_is_a_setup_and_its_deletion_the_teardown(dag_description):
    tasks = dag_description["tasks"]
    assert tasks["deploy.create_endpoint"]["is_setup"]
    assert tasks["deploy.build_endpoint_request"]["is_setup"]
    assert tasks["deploy.delete_endpoint"]["is_teardown"]
    assert {"deploy.create_endpoint", "deploy.build_endpoint_request"} <= set(
        tasks["deploy.delete_endpoint"]["upstream"]
    )
    plain = [t for t, spec in tasks.items() if spec["is_setup"] or spec["is_teardown"]]
    assert sorted(plain) == [
        "deploy.build_endpoint_request",
        "deploy.create_endpoint",
        "deploy.delete_endpoint",
    ]


def test_every_param_is_described_and_the_dag_is_documented(dag_description):
    params = dag_description["params"]
    assert {"class_name", "n_images", "bucket", "prefix", "workteam_arn", "workers_per_image"} <= set(params)
    assert {"task_price_usd", "auto_labeling", "training_hyperparameters", "prediction_threshold"} <= set(
        params
    )
    assert {"alert_topic_arn", "training_instance_type", "open_images_bbox_csv"} <= set(params)
    assert all(description for description in params.values()), params
    assert dag_description["doc_md"]
    groups = ("prepare", "label", "analyse", "train", "deploy", "report")
    assert all(dag_description["group_docs"][g] for g in groups)
    assert dag_description["timetable"] == "NullTimetable"


def test_tasks_retry_and_alert_on_failure(dag_description):
    for task_id, spec in dag_description["tasks"].items():
        assert spec["retries"] >= 1, task_id
        assert spec["has_failure_callback"], task_id


def test_a_failed_run_alerts_and_the_run_deadline_is_off_by_default(dag_description):
    assert dag_description["dag_failure_callback"] == "RunFailureNotifier"
    assert dag_description["deadlines"] is None


def test_a_run_deadline_set_in_the_configuration_alerts_from_the_triggerer():
    description = describe_dag(run_deadline_hours="72")

    [deadline] = description["deadlines"]
    assert deadline["reference"] == {"reference_type": "DagRunQueuedAtDeadline"}
    assert deadline["interval"]["__data__"] == 72 * 3600
    assert deadline["callback"]["__classname__"] == "airflow.sdk.definitions.callback.AsyncCallback"
    assert deadline["callback"]["__data__"] == {
        "path": "ground_truth_pipeline.alerts.deadline.alert_missed_deadline",
        "kwargs": {"deadline_hours": 72.0},
    }


@pytest.mark.parametrize(("setting", "hours"), [("1.5", 1.5), ("0", None), ("none", None)])
def test_the_run_deadline_comes_from_the_configuration(setting, hours):
    description = describe_dag(run_deadline_hours=setting)

    assert description["import_errors"] == {}
    intervals = [deadline["interval"]["__data__"] for deadline in description["deadlines"] or []]
    assert intervals == ([] if hours is None else [hours * 3600])


def test_a_bad_run_deadline_is_an_import_error_naming_the_option():
    description = describe_dag(run_deadline_hours="three days")

    [error] = description["import_errors"].values()
    assert "[ground_truth_object_detection] run_deadline_hours must be a positive number of hours" in error
