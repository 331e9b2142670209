"""Unlabeled images (Open Images, or a team's own) to a deployed object detector, through Ground Truth.

Wiring only: every task calls a function in ``plugins/ground_truth_pipeline``. Heavy libraries (numpy,
matplotlib, the steps themselves) are imported inside the tasks so that parsing this file stays fast.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Param, TaskGroup, chain, task
from airflow.sdk.configuration import conf
from airflow.sdk.definitions.retry_policy import ExceptionRetryPolicy, RetryAction, RetryRule

from ground_truth_pipeline.alerts.deadline import (
    DEFAULT_RUN_DEADLINE_HOURS,
    RUN_DEADLINE_OPTION,
    run_deadline_alert,
)
from ground_truth_pipeline.alerts.notifiers import notify_run_failure, notify_task_failure
from ground_truth_pipeline.aws.labeling_job_operator import SageMakerCreateLabelingJobOperator
from ground_truth_pipeline.aws.labeling_job_sensor import SageMakerLabelingJobSensor
from ground_truth_pipeline.aws.resumable_operators import (
    ResumableEndpointOperator,
    ResumableModelOperator,
    ResumableTrainingOperator,
    ResumableTransformOperator,
)
from ground_truth_pipeline.configuration import CONFIG_SECTION
from ground_truth_pipeline.labeling_cost import DEFAULT_MAX_LABELING_COST_USD
from ground_truth_pipeline.sagemaker_requests import BOUNDING_BOX_TASK_PRICES_USD
from ground_truth_pipeline.schedule import DEFAULT_SCHEDULE, SCHEDULE_OPTION, schedule_from_config

AWS_CONN_ID = "aws_default"
# AWS throttling and transient errors are retried by botocore (adaptive mode) and then by Airflow with
# exponential backoff; bad input (ValueError and its subclasses in this project) fails at once.
BOTOCORE_CONFIG = {"retries": {"mode": "adaptive", "max_attempts": 10}}
# How often the sensor and the deferred operators ask SageMaker about their job: a minute suits AWS, whose
# jobs take minutes to hours; a service whose jobs take seconds can set 5 s
# (AIRFLOW__GROUND_TRUTH_OBJECT_DETECTION__STATUS_CHECK_INTERVAL_S).
STATUS_CHECK_INTERVAL_S = conf.getint(CONFIG_SECTION, "status_check_interval_s", fallback=60)
# A cron expression, a preset or none (the default: on AWS every run costs money). See schedule.py.
SCHEDULE = schedule_from_config(conf.get(CONFIG_SECTION, SCHEDULE_OPTION, fallback=DEFAULT_SCHEDULE))
MAX_TRAINING_WAIT = timedelta(days=2)
MAX_TRANSFORM_WAIT = timedelta(days=1)
RETRY_POLICY = ExceptionRetryPolicy(
    rules=[
        RetryRule(exception=ValueError, action=RetryAction.FAIL, reason="Bad input: a retry cannot fix it")
    ]
)

DOC = """
### Ground Truth object detection

Selects Open Images of one class (and its subclasses), or takes your own images from the date partition
of an S3 prefix that the run's data interval selects (`images_prefix`, e.g.
`s3://my-bucket/incoming/dt={{ ds }}/`); labels them with a SageMaker Ground Truth bounding-box job;
analyses the labels (against the Open Images boxes where there are any); trains the built-in
object-detection algorithm on every label of the class so far; runs a batch transform, serves a real-time
endpoint, invokes it and deletes it again. Every file of a run lives under
`s3://<bucket>/<prefix>/<class>/<run>/`; the class's record of labeled images under
`s3://<bucket>/<prefix>/<class>/labeled-images/` makes sure no run pays twice for one image of one class.

Trigger it with the params form, or set `[ground_truth_object_detection] schedule` (e.g. `@daily`; default
`none`) to label each day's partition, and backfill past days for a new class (Trigger → Backfill).
The same DAG runs against AWS or any service that answers AWS's APIs; only configuration differs (the
connection `aws_default`, the role, the dataset URIs, the hyperparameters, and the options of
`[ground_truth_object_detection]` such as `extra_base_networks`). **On AWS this costs money** (about $26 for
100 images with 5 workers); a run whose labels could cost more than `max_labeling_cost_usd` stops before
its labeling job.
"""

PREPARE_DOC = """Resolve the class, select images from Open Images, copy them to the experiment's prefix and
write the input manifest, the label categories and the worker instructions template."""
LABEL_DOC = """Create the Ground Truth bounding-box labeling job (attaching to this run's job if it exists),
wait for it without holding a worker slot, and record the images it labeled for the class."""
ANALYSE_DOC = """Read the job's output tree and compare the labels with the Open Images reference boxes:
costs, counts, training curves, mIoU and confidence, detection metrics, plots, PDFs, HTML and metrics JSON."""
TRAIN_DOC = (
    """Split the output (augmented) manifest 80/20 and train the built-in object-detection algorithm."""
)
DEPLOY_DOC = """Create the model, run a batch transform on held-out images, serve a real-time endpoint,
invoke it, and delete the endpoint and its config again, even when a task in between fails."""
REPORT_DOC = """Complete the analysis's report.html with the trained model's validation mAP per epoch, the
batch transform's predictions and the endpoint's answer. Runs once the endpoint has answered, beside the
endpoint's deletion."""

# Params that may stay empty must allow null: the UI's trigger form takes an empty field whose type does
# not allow null as missing and will not submit.
OPTIONAL_STRING = ["null", "string"]

PARAMS = {
    "class_name": Param(
        conf.get(CONFIG_SECTION, "class_name", fallback="Bird"),
        type="string",
        minLength=1,
        description=(
            "The class to label: an Open Images class (display name or MID) when images_prefix is empty, "
            "else the label category of your own images. Scheduled runs use the configured default."
        ),
        section="Images",
    ),
    "images_prefix": Param(
        conf.get(CONFIG_SECTION, "images_prefix", fallback=""),
        type=OPTIONAL_STRING,
        description=(
            "Your own images instead of Open Images: the S3 prefix of a run's partition, a template rendered "
            "with the run's data interval, e.g. s3://my-bucket/incoming/dt={{ ds }}/ (.jpg, .jpeg and .png "
            "at any depth, in key order). Empty: Open Images of class_name."
        ),
        section="Images",
    ),
    "extra_label_categories": Param(
        [],
        type="array",
        items={"type": "string", "minLength": 1},
        description=(
            "Your own images only: more label categories besides class_name (workers box the objects of "
            "each). The run's results stay under class_name's prefix."
        ),
        section="Images",
    ),
    "n_images": Param(
        100,
        type="integer",
        minimum=2,
        maximum=100000,
        description="Number of images to label (the reference's full demo uses 1,000 with auto-labeling).",
        section="Images",
    ),
    "n_test_images": Param(
        2,
        type="integer",
        minimum=1,
        maximum=100,
        description="Held-out images of the class for the batch transform and the endpoint.",
        section="Images",
    ),
    "bucket": Param(
        conf.get(CONFIG_SECTION, "bucket", fallback="ground-truth-od"),
        type="string",
        pattern=r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$",
        description="S3 bucket in the job's region for everything the run writes.",
        section="Images",
    ),
    "prefix": Param(
        conf.get(CONFIG_SECTION, "prefix", fallback="ground-truth-od"),
        type="string",
        pattern=r"^[A-Za-z0-9!_.*'()\-/]*$",
        description="Key prefix; each run writes under <prefix>/<class>/<run>/.",
        section="Images",
    ),
    "open_images_bbox_csv": Param(
        "https://storage.googleapis.com/openimages/2018_04/test/test-annotations-bbox.csv",
        type="string",
        description="Open Images bounding-box CSV (s3://, https:// or a local path). Read as a stream.",
        section="Images",
    ),
    "open_images_hierarchy": Param(
        "https://storage.googleapis.com/openimages/2018_04/bbox_labels_600_hierarchy.json",
        type="string",
        description="Open Images class hierarchy JSON (s3://, https:// or a local path).",
        section="Images",
    ),
    "open_images_class_descriptions": Param(
        "https://storage.googleapis.com/openimages/2018_04/class-descriptions-boxable.csv",
        type="string",
        description="Open Images class descriptions CSV: MID to display name (s3://, https://, local path).",
        section="Images",
    ),
    "open_images_images": Param(
        "s3://open-images-dataset/test/",
        type="string",
        pattern=r"^s3://",
        description="S3 prefix holding the images as <ImageID>.jpg.",
        section="Images",
    ),
    "role_arn": Param(
        "",
        type=OPTIONAL_STRING,
        description=(
            "IAM role SageMaker assumes (S3 read/write on the bucket). "
            "Empty: the Airflow Variable ground_truth_role_arn."
        ),
        section="Labeling",
    ),
    "workteam_arn": Param(
        "",
        type=OPTIONAL_STRING,
        description="Private workteam ARN. Empty: the public crowd (Mechanical Turk), paid per task.",
        section="Labeling",
    ),
    "task_price_usd": Param(
        0.036,
        type="number",
        enum=[float(price) for price in BOUNDING_BOX_TASK_PRICES_USD],
        description="Price per worker per image for the public crowd, in dollars (one of AWS's prices).",
        section="Labeling",
    ),
    "workers_per_image": Param(
        5,
        type="integer",
        minimum=1,
        maximum=9,
        description="Workers who label each image (1 to 9).",
        section="Labeling",
    ),
    "max_concurrent_tasks": Param(
        200,
        type="integer",
        minimum=1,
        maximum=1000,
        description="Images sent to workers at a time.",
        section="Labeling",
    ),
    "task_time_limit_s": Param(
        300,
        type="integer",
        minimum=30,
        maximum=28800,
        description="Time a worker has for one image.",
        section="Labeling",
    ),
    "auto_labeling": Param(
        False,
        type="boolean",
        description="Automated labeling (active learning); AWS needs at least 1,250 images for it.",
        section="Labeling",
    ),
    "max_labeling_cost_usd": Param(
        DEFAULT_MAX_LABELING_COST_USD,
        type="number",
        minimum=0,
        description=(
            "Cost cap in dollars: the run fails before creating the labeling job when labeling every image "
            "by humans could cost more (images x ($0.08 + workers x task price)). The default covers the "
            "reference's full demo: 1,000 images x 5 workers = $260."
        ),
        section="Labeling",
    ),
    "training_hyperparameters": Param(
        {
            "base_network": "resnet-50",
            "use_pretrained_model": 1,
            "mini_batch_size": 1,
            "epochs": 30,
            "learning_rate": 0.001,
            "lr_scheduler_factor": 0.1,
            "optimizer": "sgd",
            "momentum": 0.9,
            "weight_decay": 0.0005,
            "overlap_threshold": 0.5,
            "nms_threshold": 0.45,
            "image_shape": 300,
            "label_width": 350,
        },
        type="object",
        description=(
            "Hyperparameters of the built-in object-detection algorithm; num_classes and "
            "num_training_samples are derived from the labels."
        ),
        section="Training",
    ),
    "train_on_all_class_labels": Param(
        True,
        type="boolean",
        description=(
            "Train on every label of the class so far (the output manifests of all its labeled runs), "
            "not only this run's."
        ),
        section="Training",
    ),
    "training_instance_type": Param(
        "ml.p3.2xlarge",
        type="string",
        pattern=r"^ml\.",
        description="Training instance type.",
        section="Training",
    ),
    "transform_instance_type": Param(
        "ml.p2.xlarge",
        type="string",
        pattern=r"^ml\.",
        description="Batch transform instance type.",
        section="Deployment",
    ),
    "endpoint_instance_type": Param(
        "ml.m4.xlarge",
        type="string",
        pattern=r"^ml\.",
        description="Real-time endpoint instance type.",
        section="Deployment",
    ),
    "prediction_threshold": Param(
        0.2,
        type="number",
        minimum=0,
        maximum=1,
        description="Predictions scoring below this are not drawn.",
        section="Deployment",
    ),
    "split_seed": Param(
        0, type="integer", description="Seed of the 80/20 train/validation split.", section="Training"
    ),
    "alert_topic_arn": Param(
        "",
        type=OPTIONAL_STRING,
        description=(
            "SNS topic for task, run and deadline alerts. Empty: the Variable ground_truth_alert_topic_arn. "
            "E-mail alerts: [ground_truth_object_detection] alert_emails."
        ),
        section="Alerts",
    ),
}

with DAG(
    dag_id="ground_truth_object_detection",
    description="Unlabeled images to a deployed object detector with SageMaker Ground Truth",
    doc_md=DOC,
    schedule=SCHEDULE,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=4,
    params=PARAMS,
    tags=["sagemaker", "ground-truth", "object-detection"],
    default_args={
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=15),
        "retry_policy": RETRY_POLICY,
        "on_failure_callback": notify_task_failure,
    },
    on_failure_callback=notify_run_failure,
    # One alert when a run has not finished this long after it was queued; 0 or none: no deadline.
    deadline=run_deadline_alert(
        conf.get(CONFIG_SECTION, RUN_DEADLINE_OPTION, fallback=DEFAULT_RUN_DEADLINE_HOURS)
    ),
) as dag:
    with TaskGroup("prepare", doc_md=PREPARE_DOC) as prepare:

        @task
        def select_images(**context) -> dict:
            """Resolve the class and pick the images to label and the held-out ones."""
            from ground_truth_pipeline.steps import prepare_step

            return prepare_step.select_images(context)

        @task
        def copy_images(experiment: dict, **context) -> dict:
            """Copy the selected images into the experiment's prefix."""
            from ground_truth_pipeline.steps import prepare_step

            return prepare_step.copy_images(experiment, context)

        @task
        def write_labeling_inputs(experiment: dict, **context) -> dict:
            """Write the input manifest, the label categories and the worker instructions template."""
            from ground_truth_pipeline.steps import prepare_step

            return prepare_step.write_labeling_inputs(experiment, context)

        experiment = select_images()
        copied = copy_images(experiment)
        labeling_inputs = write_labeling_inputs(experiment)
        copied >> labeling_inputs

    with TaskGroup("label", doc_md=LABEL_DOC) as label:

        @task
        def build_labeling_job_request(experiment: dict, **context) -> dict:
            from ground_truth_pipeline.steps import label_step

            return label_step.labeling_job_request(experiment, context)

        start_labeling_job = SageMakerCreateLabelingJobOperator(
            task_id="start_labeling_job",
            config=build_labeling_job_request(experiment),
            aws_conn_id=AWS_CONN_ID,
            botocore_config=BOTOCORE_CONFIG,
            wait_for_completion=False,
        )
        wait_for_labeling_job = SageMakerLabelingJobSensor(
            task_id="wait_for_labeling_job",
            job_name="{{ ti.xcom_pull(task_ids='label.start_labeling_job')['LabelingJobName'] }}",
            aws_conn_id=AWS_CONN_ID,
            botocore_config=BOTOCORE_CONFIG,
            deferrable=True,
            poke_interval=STATUS_CHECK_INTERVAL_S,
            timeout=timedelta(days=10).total_seconds(),
        )

        @task
        def record_labeled_images(experiment: dict, labeling_job: dict, **context) -> dict:
            """Mark the labeled images in the class's record, so no later run pays for them again."""
            from ground_truth_pipeline.steps import record_step

            return record_step.record_labeled_images(experiment, labeling_job, context)

        recorded = record_labeled_images(experiment, start_labeling_job.output)
        labeling_inputs >> start_labeling_job >> wait_for_labeling_job >> recorded

    with TaskGroup("analyse", doc_md=ANALYSE_DOC) as analyse:

        @task
        def analyse_labels(experiment: dict, labeling_job: dict, **context) -> dict:
            """Metrics JSON, plots, PDFs and the HTML report of the labeling job."""
            from ground_truth_pipeline.steps import analyse_step

            return analyse_step.analyse_labels(experiment, labeling_job, context)

        analysis = analyse_labels(experiment, start_labeling_job.output)
        recorded >> analysis

    with TaskGroup("train", doc_md=TRAIN_DOC) as train:

        @task
        def split_output_manifest(experiment: dict, labeling_job: dict, **context) -> dict:
            """80/20 train/validation augmented manifests."""
            from ground_truth_pipeline.steps import train_step

            return train_step.split_output_manifest(experiment, labeling_job, context)

        @task
        def build_training_job_request(experiment: dict, split: dict, **context) -> dict:
            from ground_truth_pipeline.steps import train_step

            return train_step.training_job_request(experiment, split, context)

        split = split_output_manifest(experiment, start_labeling_job.output)
        train_model = ResumableTrainingOperator(
            task_id="train_model",
            config=build_training_job_request(experiment, split),
            aws_conn_id=AWS_CONN_ID,
            botocore_config=BOTOCORE_CONFIG,
            deferrable=True,
            check_interval=STATUS_CHECK_INTERVAL_S,
            max_attempts=int(MAX_TRAINING_WAIT.total_seconds() // STATUS_CHECK_INTERVAL_S),
        )
        wait_for_labeling_job >> split
        analysis >> split

    with TaskGroup("deploy", doc_md=DEPLOY_DOC) as deploy:

        @task
        def build_model_request(experiment: dict, training: dict, **context) -> dict:
            from ground_truth_pipeline.steps import deploy_step

            return deploy_step.model_request(experiment, training, context)

        create_model = ResumableModelOperator(
            task_id="create_model",
            config=build_model_request(experiment, train_model.output),
            aws_conn_id=AWS_CONN_ID,
            botocore_config=BOTOCORE_CONFIG,
        )

        @task
        def build_transform_job_request(experiment: dict, model: dict, **context) -> dict:
            from ground_truth_pipeline.steps import deploy_step

            return deploy_step.transform_job_request(experiment, model, context)

        batch_transform = ResumableTransformOperator(
            task_id="batch_transform",
            config=build_transform_job_request(experiment, create_model.output),
            aws_conn_id=AWS_CONN_ID,
            botocore_config=BOTOCORE_CONFIG,
            deferrable=True,
            check_interval=STATUS_CHECK_INTERVAL_S,
            max_attempts=int(MAX_TRANSFORM_WAIT.total_seconds() // STATUS_CHECK_INTERVAL_S),
        )

        @task
        def plot_batch_predictions(experiment: dict, transform: dict, **context) -> dict:
            from ground_truth_pipeline.steps import deploy_step

            return deploy_step.plot_batch_predictions(experiment, transform, context)

        @task
        def build_endpoint_request(experiment: dict, model: dict, **context) -> dict:
            """Endpoint and endpoint config names and configs; also the teardown's setup anchor."""
            from ground_truth_pipeline.steps import deploy_step

            return deploy_step.endpoint_request(experiment, model, context)

        endpoint_request = build_endpoint_request(experiment, create_model.output)
        create_endpoint = ResumableEndpointOperator(
            task_id="create_endpoint",
            config=endpoint_request,
            operation="create",
            aws_conn_id=AWS_CONN_ID,
            botocore_config=BOTOCORE_CONFIG,
            deferrable=True,
            check_interval=STATUS_CHECK_INTERVAL_S,
        )

        @task
        def invoke_endpoint(experiment: dict, endpoint: dict, **context) -> dict:
            """Send a held-out image to the endpoint and plot its predictions."""
            from ground_truth_pipeline.steps import deploy_step

            return deploy_step.invoke_endpoint(experiment, endpoint, context)

        @task
        def delete_endpoint(endpoint_request: dict) -> dict:
            """Delete the endpoint and its configs; a no-op for what does not exist."""
            from ground_truth_pipeline.steps import deploy_step

            return deploy_step.delete_endpoint(endpoint_request)

        predictions = plot_batch_predictions(experiment, batch_transform.output)
        invoked = invoke_endpoint(experiment, create_endpoint.output)
        teardown = delete_endpoint(endpoint_request).as_teardown(setups=[endpoint_request, create_endpoint])
        chain(create_model, batch_transform, predictions, endpoint_request)
        create_endpoint >> invoked >> teardown

    with TaskGroup("report", doc_md=REPORT_DOC) as report:

        @task
        def complete_report(
            experiment: dict, training: dict, transform: dict, endpoint_call: dict, **context
        ) -> dict:
            """Add the trained model, the batch predictions and the endpoint's answer to the report."""
            from ground_truth_pipeline.steps import report_step

            return report_step.complete_report(experiment, training, transform, endpoint_call, context)

        complete_report(experiment, train_model.output, batch_transform.output, invoked)

    # deploy >> report waits for the endpoint's answer, not for its teardown: a report that fails cannot
    # hold up the endpoint's deletion.
    chain(prepare, label, analyse, train, deploy, report)
