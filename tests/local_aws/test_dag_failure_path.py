"""When a task fails on the local stack: the task's and the run's alerts reach SNS and an SMTP server
started here, no endpoint is left, and the run re-run with the parameter fixed completes without a second
labeling job.

The run is started with an invalid training hyperparameter: the training request fails fast (no retries for
a ValueError), the failure callbacks alert through the run's SNS topic on the stack and by e-mail, and
nothing after it runs. Airflow keeps a run's conf, so the fix is a re-run of the same run (same logical
date and run id, hence the same resource names) with the corrected conf, as ``dag.test`` does it: every task
runs again, and the labeling job of the first attempt is found and used instead of a new one.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from local_aws.environment import stack_variables
from local_aws.moto_server import published_messages
from local_aws.synthetic_open_images import dataset_uris
from tests.conftest import ROOT
from tests.local_aws.test_dag_on_local_stack import ROLE_ARN, TINY_TRAINING
from tests.smtp_inbox import SmtpInbox, smtp_inbox

pytestmark = pytest.mark.integration

DAG_ID = "ground_truth_object_detection"
BUCKET = "failure-path"
CLASS_NAME = "Swan"
ALERT_EMAIL = "ml-team@example.com"


@pytest.fixture
def inbox(monkeypatch):
    with smtp_inbox() as server:
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", server.connection_json())
        monkeypatch.setenv("AIRFLOW__GROUND_TRUTH_OBJECT_DETECTION__ALERT_EMAILS", ALERT_EMAIL)
        yield server


@pytest.fixture
def stack_env(local_stack, monkeypatch):
    for name, value in stack_variables(local_stack.config).items():
        monkeypatch.setenv(name, value)
    seeded = local_stack.cli("seed", "--images", "60")
    assert seeded.returncode == 0, seeded.stderr
    s3 = local_stack.config.boto3_client("s3")
    if BUCKET not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=BUCKET)
    return local_stack


def test_a_failed_task_alerts_leaves_no_endpoint_and_the_fixed_rerun_reuses_the_labeling_job(
    stack_env, airflow_db, inbox: SmtpInbox
):
    from airflow.dag_processing.dagbag import DagBag

    config = stack_env.config
    topic_arn = config.boto3_client("sns").create_topic(Name="gtod-failure-alerts")["TopicArn"]
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    dag = bag.dags[DAG_ID]
    logical_date = datetime(2026, 11, 1, 12, tzinfo=UTC)
    conf = {
        "class_name": CLASS_NAME,
        "n_images": 6,
        "n_test_images": 2,
        "workers_per_image": 3,
        "bucket": BUCKET,
        "prefix": "runs",
        "role_arn": ROLE_ARN,
        "alert_topic_arn": topic_arn,
        **dataset_uris().as_dag_params(),
    }

    failed = dag.test(
        run_after=logical_date,
        logical_date=logical_date,
        run_conf={**conf, "training_hyperparameters": {**TINY_TRAINING, "optimizer": "lbfgs"}},
    )

    assert failed.state == "failed"
    states = {ti.task_id: ti.state for ti in failed.get_task_instances()}
    assert states["train.build_training_job_request"] == "failed"
    assert states["label.wait_for_labeling_job"] == "success"
    alerts = {message.subject.split(":")[0]: message for message in published_messages(config, topic_arn)}
    assert set(alerts) == {"Airflow task failed", "Airflow run failed"}
    task_alert, run_alert = alerts["Airflow task failed"], alerts["Airflow run failed"]
    assert "train.build_training_job_request" in f"{task_alert.subject} {task_alert.message}"
    assert "optimizer='lbfgs' is invalid" in task_alert.message
    assert failed.run_id in run_alert.subject and "train.build_training_job_request" in run_alert.message
    mails = {mail.subject: mail for mail in inbox.received}
    assert set(mails) == {task_alert.subject, run_alert.subject}
    assert all(mail.recipients == [ALERT_EMAIL] for mail in mails.values())
    # SnsHook publishes {"default": text} with MessageStructure json: subscribers get the text.
    assert mails[run_alert.subject].text == json.loads(run_alert.message)["default"]
    sagemaker = config.boto3_client("sagemaker")
    assert sagemaker.list_endpoints(NameContains="gtod-swan")["Endpoints"] == []
    assert sagemaker.list_training_jobs(NameContains="gtod-swan")["TrainingJobSummaries"] == []
    [labeling_job] = sagemaker.list_labeling_jobs(NameContains="gtod-swan")["LabelingJobSummaryList"]

    fixed = dag.test(
        run_after=logical_date,
        logical_date=logical_date,
        run_conf={**conf, "training_hyperparameters": TINY_TRAINING},
    )

    assert fixed.state == "success"
    assert fixed.run_id == failed.run_id
    jobs = sagemaker.list_labeling_jobs(NameContains="gtod-swan")["LabelingJobSummaryList"]
    assert [job["LabelingJobArn"] for job in jobs] == [labeling_job["LabelingJobArn"]]
    [training] = sagemaker.list_training_jobs(NameContains="gtod-swan")["TrainingJobSummaries"]
    assert training["TrainingJobStatus"] == "Completed"
    assert sagemaker.list_endpoints(NameContains="gtod-swan")["Endpoints"] == []
    assert len(published_messages(config, topic_arn)) == 2
    assert len(inbox.received) == 2
    s3 = config.boto3_client("s3")
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix="runs/swan/")["Contents"]]
    [response_key] = [key for key in keys if key.endswith("/predictions/realtime-response.json")]
    assert "prediction" in json.loads(s3.get_object(Bucket=BUCKET, Key=response_key)["Body"].read())
