"""The label and train steps on moto: the labeling job request, the manifest split and the training job."""

import importlib.util
import json
from types import SimpleNamespace
from unittest import mock

import boto3
import pytest
from airflow.sdk.definitions.retry_policy import RetryAction
from botocore.stub import Stubber

from ground_truth_pipeline.aws_clients import AwsClients
from ground_truth_pipeline.experiment import ExperimentRun
from ground_truth_pipeline.manifests import input_manifest
from ground_truth_pipeline.object_store import S3ObjectStore
from ground_truth_pipeline.steps import claims, label_step, train_step
from tests.conftest import REGION, ROOT
from tests.fixtures.recorded_trees import HUMAN_JOB, RecordedTree

pytestmark = pytest.mark.integration

BUCKET = "experiments"
ROLE = "arn:aws:iam::123456789012:role/GroundTruthExecution"
PRIVATE_TEAM = "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/birders"
# The accounts of AWS's built-in resources in us-east-1 (include/ground_truth_arns.json).
US_EAST_1_PRE_LAMBDA = "arn:aws:lambda:us-east-1:432418664414:function:PRE-BoundingBox"
US_EAST_1_ACS_LAMBDA = "arn:aws:lambda:us-east-1:432418664414:function:ACS-BoundingBox"
US_EAST_1_PUBLIC_CROWD = "arn:aws:sagemaker:us-east-1:394669845002:workteam/public-crowd/default"
US_EAST_1_AUTO_LABELING = (
    "arn:aws:sagemaker:us-east-1:027400017018:labeling-job-algorithm-specification/object-detection"
)
US_EAST_1_OBJECT_DETECTION_IMAGE = "811284229777.dkr.ecr.us-east-1.amazonaws.com/object-detection:1"
HYPERPARAMETERS = {
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
}
# The recorded job's 14 images (Bird and Eagle): one fails labeling, 13 labeled lines, 10 for training and 3
# for validation.
TRAIN_LINES, VALIDATION_LINES = 10, 3
LABELED_IMAGES = 100  # the reference's quick demo: $26 at worst with 5 workers at $0.036
AUTO_LABELING_MIN_VARIABLE = "AIRFLOW__GROUND_TRUTH_OBJECT_DETECTION__AUTO_LABELING_MIN_IMAGES"


def context(**params):
    defaults = {
        "role_arn": ROLE,
        "workteam_arn": "",
        "task_price_usd": 0.036,
        "workers_per_image": 5,
        "max_concurrent_tasks": 200,
        "task_time_limit_s": 300,
        "auto_labeling": False,
        "training_hyperparameters": HYPERPARAMETERS,
        "training_instance_type": "ml.p3.2xlarge",
        "split_seed": 0,
    }
    return {
        "params": defaults | params,
        "dag": SimpleNamespace(dag_id="ground_truth_object_detection"),
        "run_id": "manual__1",
    }


@pytest.fixture
def run():
    return ExperimentRun("ground_truth_object_detection", "manual__1", BUCKET, "demo", "Bird", "/m/015p6")


def labeling_request(run, **params):
    return label_step.labeling_job_request(run.as_dict(), context(**params), clients=AwsClients(conn_id=None))


def load_dag_module():
    spec = importlib.util.spec_from_file_location(
        "dag_under_test", ROOT / "dags" / "ground_truth_object_detection.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_input_manifest(s3_client, run, images):
    """The input manifest and the selection summary of ``images`` images, as the prepare group writes them."""
    ids = [f"{i:016x}" for i in range(images)]
    refs = [run.layout.uri_of_key(run.layout.image_key(image_id)) for image_id in ids]
    s3_client.put_object(Bucket=BUCKET, Key=run.layout.input_manifest_key, Body=input_manifest(refs))
    sources = {image_id: f"s3://open-images-dataset/test/{image_id}.jpg" for image_id in ids}
    summary = {"labeled_image_ids": ids, "source_uris": sources}
    s3_client.put_object(Bucket=BUCKET, Key=run.layout.selection_summary_key, Body=json.dumps(summary))
    return list(sources.values())


# Label.


@pytest.fixture
def inputs(s3_client, run, monkeypatch):
    """The bucket and an input manifest of LABELED_IMAGES images, as the prepare group leaves them; AWS's
    minimum for automated labeling, whatever the environment says."""
    monkeypatch.delenv(AUTO_LABELING_MIN_VARIABLE, raising=False)
    s3_client.create_bucket(Bucket=BUCKET)
    write_input_manifest(s3_client, run, LABELED_IMAGES)
    return s3_client


def test_labeling_job_request_is_one_boto3_accepts(inputs, run):
    request = labeling_request(run)
    client = boto3.client("sagemaker", region_name=REGION)
    arn = f"arn:aws:sagemaker:{REGION}:123456789012:labeling-job/{request['LabelingJobName']}"
    with Stubber(client) as stubber:
        # The stubbed client still validates the parameters against botocore's service model.
        stubber.add_response("create_labeling_job", {"LabelingJobArn": arn}, expected_params=request)
        assert client.create_labeling_job(**request)["LabelingJobArn"] == arn
        stubber.assert_no_pending_responses()


def test_labeling_job_request_points_at_the_experiment(inputs, run):
    request = labeling_request(run, workers_per_image=3, task_time_limit_s=600, max_concurrent_tasks=50)
    root = f"s3://{BUCKET}/{run.layout.root_key}"
    assert request["LabelingJobName"] == run.resource_name("label")
    assert request["LabelingJobName"].endswith("-label") and len(request["LabelingJobName"]) <= 63
    assert request["LabelAttributeName"] == "category"
    assert request["InputConfig"]["DataSource"]["S3DataSource"]["ManifestS3Uri"] == f"{root}/input.manifest"
    assert request["LabelCategoryConfigS3Uri"] == f"{root}/class_labels.json"
    assert request["OutputConfig"]["S3OutputPath"] == f"{root}/labeling/"
    assert request["RoleArn"] == ROLE
    task = request["HumanTaskConfig"]
    assert task["UiConfig"]["UiTemplateS3Uri"] == f"{root}/instructions.template"
    assert task["PreHumanTaskLambdaArn"] == US_EAST_1_PRE_LAMBDA
    assert task["AnnotationConsolidationConfig"]["AnnotationConsolidationLambdaArn"] == US_EAST_1_ACS_LAMBDA
    assert task["NumberOfHumanWorkersPerDataObject"] == 3
    assert task["TaskTimeLimitInSeconds"] == 600
    assert task["MaxConcurrentTaskCount"] == 50
    assert "Bird" in task["TaskTitle"]


def test_labeling_job_request_is_deterministic_per_run(inputs, s3_client, run):
    other_run = ExperimentRun(
        "ground_truth_object_detection", "manual__2", BUCKET, "demo", "Bird", "/m/015p6"
    )
    write_input_manifest(s3_client, other_run, LABELED_IMAGES)
    first, again = labeling_request(run), labeling_request(run)
    assert first == again
    assert labeling_request(other_run)["LabelingJobName"] != first["LabelingJobName"]


def test_labeling_job_request_uses_the_lambdas_of_the_clients_region(inputs, monkeypatch, run):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    task = labeling_request(run)["HumanTaskConfig"]
    assert task["PreHumanTaskLambdaArn"] == "arn:aws:lambda:eu-west-1:568282634449:function:PRE-BoundingBox"
    assert task["AnnotationConsolidationConfig"]["AnnotationConsolidationLambdaArn"] == (
        "arn:aws:lambda:eu-west-1:568282634449:function:ACS-BoundingBox"
    )
    assert task["WorkteamArn"] == "arn:aws:sagemaker:eu-west-1:394669845002:workteam/public-crowd/default"


@pytest.mark.parametrize("workteam_arn", ["", "   "])
def test_an_empty_workteam_means_the_paid_public_crowd(inputs, run, workteam_arn):
    task = labeling_request(run, workteam_arn=workteam_arn, task_price_usd=0.048)["HumanTaskConfig"]
    assert task["WorkteamArn"] == US_EAST_1_PUBLIC_CROWD
    assert task["PublicWorkforceTaskPrice"] == {
        "AmountInUsd": {"Dollars": 0, "Cents": 4, "TenthFractionsOfACent": 8}
    }


def test_a_private_workteam_gets_no_price(inputs, run):
    task = labeling_request(run, workteam_arn=PRIVATE_TEAM)["HumanTaskConfig"]
    assert task["WorkteamArn"] == PRIVATE_TEAM
    assert "PublicWorkforceTaskPrice" not in task


def test_a_public_crowd_price_aws_does_not_offer_is_refused(inputs, run):
    with pytest.raises(ValueError, match=r"0\.05 USD is not one AWS allows"):
        labeling_request(run, task_price_usd=0.05)


def test_auto_labeling_adds_the_built_in_algorithm(inputs, monkeypatch, run):
    monkeypatch.setenv(AUTO_LABELING_MIN_VARIABLE, str(LABELED_IMAGES))
    assert "LabelingJobAlgorithmsConfig" not in labeling_request(run, auto_labeling=False)
    request = labeling_request(run, auto_labeling=True)
    assert request["LabelingJobAlgorithmsConfig"] == {
        "LabelingJobAlgorithmSpecificationArn": US_EAST_1_AUTO_LABELING
    }


def test_a_run_over_the_cost_cap_fails_at_once_before_any_request_is_built(inputs, monkeypatch, run):
    build = mock.Mock(side_effect=AssertionError("the request was built"))
    monkeypatch.setattr(label_step, "build_labeling_job_request", build)
    sources = json.loads(S3ObjectStore(inputs, BUCKET).read_bytes(run.layout.selection_summary_key))
    ledger = claims.labeled_images_of(AwsClients(conn_id=None), run)
    assert all(ledger.claim(uri) for uri in sources["source_uris"].values())

    with pytest.raises(ValueError) as raised:
        labeling_request(run, workers_per_image=9, task_price_usd=1.2)

    assert str(raised.value) == (
        "The labeling job could cost up to $1,088.00, over the cap of $300.00: "
        "100 images x ($0.080 per-label fee + 9 workers x $1.200 per task) "
        "if humans label every image. Raise the param max_labeling_cost_usd, or label fewer images "
        "(n_images) with fewer workers (workers_per_image)"
    )
    build.assert_not_called()
    assert not any(ledger.is_recorded(uri) for uri in sources["source_uris"].values())
    decision = load_dag_module().RETRY_POLICY.evaluate(raised.value, try_number=1, max_tries=3)
    assert decision.action == RetryAction.FAIL


def test_the_cap_is_the_param_and_defaults_to_300_dollars_for_runs_without_it(inputs, s3_client, run):
    assert "LabelingJobName" in labeling_request(run, max_labeling_cost_usd=26.0)  # 100 x $0.26
    with pytest.raises(ValueError, match=r"up to \$26\.00, over the cap of \$25\.99"):
        labeling_request(run, max_labeling_cost_usd=25.99)

    write_input_manifest(s3_client, run, 1153)  # $299.78
    assert "max_labeling_cost_usd" not in context()["params"]
    assert "LabelingJobName" in labeling_request(run)
    write_input_manifest(s3_client, run, 1154)  # $300.04
    with pytest.raises(ValueError, match=r"up to \$300\.04, over the cap of \$300\.00: 1,154 images"):
        labeling_request(run)


def test_blank_lines_of_the_input_manifest_are_not_images(inputs, s3_client, run):
    key = run.layout.input_manifest_key
    manifest = s3_client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    s3_client.put_object(Bucket=BUCKET, Key=key, Body=manifest + b"\n  \n\n")
    assert "LabelingJobName" in labeling_request(run, max_labeling_cost_usd=26.0)


def test_a_private_workteam_counts_only_the_per_label_fee(inputs, run):
    # 100 x $0.08: the team is not paid per task, whatever task_price_usd and workers_per_image say.
    private = labeling_request(
        run, workteam_arn=PRIVATE_TEAM, workers_per_image=9, task_price_usd=1.2, max_labeling_cost_usd=8.0
    )
    assert private["HumanTaskConfig"]["WorkteamArn"] == PRIVATE_TEAM
    with pytest.raises(
        ValueError, match=r"100 images x \(\$0\.080 per-label fee \+ 9 workers x \$0\.000 per task\)"
    ):
        labeling_request(run, workteam_arn=PRIVATE_TEAM, workers_per_image=9, max_labeling_cost_usd=7.99)


def test_auto_labeling_below_aws_minimum_fails_at_once(inputs, monkeypatch, run):
    build = mock.Mock(side_effect=AssertionError("the request was built"))
    monkeypatch.setattr(label_step, "build_labeling_job_request", build)

    with pytest.raises(ValueError) as raised:
        labeling_request(run, auto_labeling=True)

    assert str(raised.value) == (
        "Automated labeling (param auto_labeling) needs at least 1,250 images and this run has 100 (AWS "
        "requires 1,250 for automated data labeling). Select more images (n_images) or turn auto_labeling off"
    )
    build.assert_not_called()


def test_the_auto_labeling_minimum_comes_from_the_airflow_configuration(inputs, monkeypatch, run):
    assert label_step.auto_labeling_min_images() == 1250
    monkeypatch.setenv(AUTO_LABELING_MIN_VARIABLE, "101")
    assert label_step.auto_labeling_min_images() == 101
    with pytest.raises(ValueError, match="needs at least 101 images and this run has 100"):
        labeling_request(run, auto_labeling=True)
    monkeypatch.setenv(AUTO_LABELING_MIN_VARIABLE, "100")
    assert "LabelingJobAlgorithmsConfig" in labeling_request(run, auto_labeling=True)


def test_the_role_falls_back_to_the_airflow_variable(inputs, monkeypatch, run):
    variable_role = "arn:aws:iam::123456789012:role/FromVariable"
    monkeypatch.setenv("AIRFLOW_VAR_GROUND_TRUTH_ROLE_ARN", variable_role)
    assert labeling_request(run, role_arn="")["RoleArn"] == variable_role
    assert labeling_request(run, role_arn=ROLE)["RoleArn"] == ROLE


def test_a_missing_role_names_the_param_and_the_variable(inputs, monkeypatch, run):
    monkeypatch.delenv("AIRFLOW_VAR_GROUND_TRUTH_ROLE_ARN", raising=False)
    with pytest.raises(ValueError, match="No SageMaker execution role") as error:
        labeling_request(run, role_arn="")
    assert "'role_arn'" in str(error.value)
    assert "'ground_truth_role_arn'" in str(error.value)


# Train.


@pytest.fixture
def labeled(s3_client, run):
    """The labeling job's output tree (two classes, one failed image) and the label categories."""
    s3_client.create_bucket(Bucket=BUCKET)
    layout = run.layout
    store = S3ObjectStore(s3_client, BUCKET)
    job_name = run.resource_name("label")
    recorded = RecordedTree.load(HUMAN_JOB)
    images = layout.uri("images") + "/"
    recorded.copy_to(store, layout.labeling_job_key(job_name) + "/", source_prefix=images)
    tree = SimpleNamespace(
        source_refs=recorded.source_refs_under(images), failed_object_ids=recorded.failed_object_ids
    )
    categories = {"labels": [{"label": "Bird"}, {"label": "Eagle"}]}
    store.write_bytes(layout.label_categories_key, json.dumps(categories).encode())
    return {"LabelingJobName": job_name}, tree


def split(run, labeling_job, **params):
    return train_step.split_output_manifest(
        run.as_dict(), labeling_job, context(**params), clients=AwsClients(conn_id=None)
    )


def read_text(s3_client, key):
    return s3_client.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()


def source_refs(text):
    return [json.loads(line)["source-ref"] for line in text.splitlines() if line.strip()]


def test_split_writes_80_20_of_the_labeled_lines(labeled, s3_client, run):
    labeling_job, tree = labeled
    layout = run.layout
    result = split(run, labeling_job)

    root = f"s3://{BUCKET}/{layout.root_key}"
    assert result["train_manifest_uri"] == f"{root}/training/train.manifest"
    assert result["validation_manifest_uri"] == f"{root}/training/validation.manifest"
    train_text = read_text(s3_client, layout.train_manifest_key)
    validation_text = read_text(s3_client, layout.validation_manifest_key)
    train, validation = source_refs(train_text), source_refs(validation_text)
    assert (len(train), len(validation)) == (TRAIN_LINES, VALIDATION_LINES)
    written = [line for line in train_text.split("\n") if line]
    assert result["num_training_samples"] == TRAIN_LINES == len(written)
    assert result["num_validation_samples"] == VALIDATION_LINES
    assert train_text.endswith("}\n") and validation_text.endswith("}\n")
    assert result["excluded_failed"] == 1
    assert result["num_classes"] == 2
    assert result["attribute_names"] == ["source-ref", "category"]

    failed = {tree.source_refs[i] for i in tree.failed_object_ids}
    labeled_refs = set(tree.source_refs) - failed
    assert not set(train) & set(validation)
    assert set(train) | set(validation) == labeled_refs
    output_lines = read_text(s3_client, layout.output_manifest_key(labeling_job["LabelingJobName"]))
    assert set(train_text.splitlines()) <= set(output_lines.splitlines())


def test_split_ignores_blank_lines_of_the_output_manifest(labeled, s3_client, run):
    labeling_job, _ = labeled
    key = run.layout.output_manifest_key(labeling_job["LabelingJobName"])
    lines = read_text(s3_client, key).splitlines()
    padded = "\n".join([*lines[:3], "", "  ", *lines[3:]]) + "\r\n\n\n"
    s3_client.put_object(Bucket=BUCKET, Key=key, Body=padded.encode())

    result = split(run, labeling_job)
    train_text = read_text(s3_client, run.layout.train_manifest_key)
    assert result["excluded_failed"] == 1
    counts = (result["num_training_samples"], result["num_validation_samples"])
    assert counts == (TRAIN_LINES, VALIDATION_LINES)
    assert train_text.count("\n") == TRAIN_LINES and "\r" not in train_text


def test_split_is_seeded(labeled, s3_client, run):
    labeling_job, _ = labeled

    def train_set(seed):
        split(run, labeling_job, split_seed=seed)
        return read_text(s3_client, run.layout.train_manifest_key)

    first = train_set(7)
    assert train_set(7) == first
    assert set(source_refs(train_set(8))) != set(source_refs(first))


def test_training_job_request_trains_on_the_split_in_pipe_mode(labeled, run):
    labeling_job, _ = labeled
    params = {
        "training_hyperparameters": HYPERPARAMETERS | {"epochs": 5},
        "training_instance_type": "ml.g4dn.xlarge",
    }
    result = split(run, labeling_job)
    request = train_step.training_job_request(
        run.as_dict(), result, context(**params), clients=AwsClients(conn_id=None)
    )

    assert request["TrainingJobName"] == run.resource_name("train")
    assert request["RoleArn"] == ROLE
    assert request["AlgorithmSpecification"] == {
        "TrainingImage": US_EAST_1_OBJECT_DETECTION_IMAGE,
        "TrainingInputMode": "Pipe",
    }
    channels = {channel["ChannelName"]: channel for channel in request["InputDataConfig"]}
    assert set(channels) == {"train", "validation"}
    for name, uri in (
        ("train", result["train_manifest_uri"]),
        ("validation", result["validation_manifest_uri"]),
    ):
        source = channels[name]["DataSource"]["S3DataSource"]
        assert source["S3DataType"] == "AugmentedManifestFile"
        assert source["S3Uri"] == uri
        assert source["AttributeNames"] == ["source-ref", "category"]
        assert channels[name]["RecordWrapperType"] == "RecordIO"
        assert channels[name]["ContentType"] == "application/x-recordio"
    hyperparameters = request["HyperParameters"]
    assert hyperparameters["num_training_samples"] == str(TRAIN_LINES)
    assert hyperparameters["num_classes"] == "2"
    assert hyperparameters["epochs"] == "5"
    assert hyperparameters["mini_batch_size"] == "1"
    assert hyperparameters["optimizer"] == "sgd"
    assert all(isinstance(value, str) for value in hyperparameters.values())
    assert (
        request["OutputDataConfig"]["S3OutputPath"] == f"s3://{BUCKET}/{run.layout.root_key}/training/output/"
    )
    assert request["ResourceConfig"]["InstanceType"] == "ml.g4dn.xlarge"

    sagemaker = boto3.client("sagemaker", region_name=REGION)
    sagemaker.create_training_job(**request)
    described = sagemaker.describe_training_job(TrainingJobName=request["TrainingJobName"])
    assert described["HyperParameters"] == hyperparameters
    assert described["InputDataConfig"] == request["InputDataConfig"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"optimizer": "nope"}, "hyperparameter optimizer='nope' is invalid"),
        ({"epochs": 0}, "hyperparameter epochs='0' is invalid"),
        ({"num_classes": 3}, "num_classes='3' contradicts num_classes=2"),
        ({"epoch": 3}, "unknown object-detection hyperparameters epoch"),
    ],
)
def test_a_bad_hyperparameter_is_a_clear_error(labeled, run, override, message):
    labeling_job, _ = labeled
    result = split(run, labeling_job)
    params = {"training_hyperparameters": HYPERPARAMETERS | override}
    with pytest.raises(ValueError, match=message):
        train_step.training_job_request(
            run.as_dict(), result, context(**params), clients=AwsClients(conn_id=None)
        )


def record_other_run_of_the_class(
    s3_client, run_id: str, categories: tuple[str, ...] = ("Bird", "Eagle")
) -> list[str]:
    """Another run of Bird whose labels were recorded (the recorded job again, in that run's folders); the
    source-refs of its labeled images."""
    other = ExperimentRun("ground_truth_object_detection", run_id, BUCKET, "demo", "Bird", "/m/015p6")
    store = S3ObjectStore(s3_client, BUCKET)
    job_name = other.resource_name("label")
    tree = RecordedTree.load(HUMAN_JOB)
    images = other.layout.uri("images") + "/"
    tree.copy_to(store, other.layout.labeling_job_key(job_name) + "/", source_prefix=images)
    manifest_uri = other.layout.uri_of_key(other.layout.output_manifest_key(job_name))
    record = {
        "run_id": run_id,
        "labeling_job": job_name,
        "output_manifest_uri": manifest_uri,
        "label_categories": list(categories),
    }
    store.write_bytes(other.layout.labeled_run_key, json.dumps(record).encode())
    failed = set(tree.failed_object_ids)
    return [ref for i, ref in enumerate(tree.source_refs_under(images)) if i not in failed]


def test_training_uses_every_recorded_run_of_the_class_unless_told_not_to(labeled, s3_client, run):
    labeling_job, tree = labeled
    earlier = record_other_run_of_the_class(s3_client, "scheduled__2026-12-01T00:00:00+00:00")
    record_other_run_of_the_class(s3_client, "scheduled__2026-12-02T00:00:00+00:00", ("Bird", "Swan"))
    other_class = ExperimentRun(
        "ground_truth_object_detection", "manual__9", BUCKET, "demo", "Swan", "/m/0dftk"
    )
    S3ObjectStore(s3_client, BUCKET).write_bytes(
        other_class.layout.labeled_run_key,
        json.dumps({"output_manifest_uri": f"s3://{BUCKET}/demo/swan/never-read.manifest"}).encode(),
    )

    everything = split(run, labeling_job)
    refs = source_refs(read_text(s3_client, run.layout.train_manifest_key))
    refs += source_refs(read_text(s3_client, run.layout.validation_manifest_key))
    own = set(tree.source_refs) - {tree.source_refs[i] for i in tree.failed_object_ids}
    assert set(refs) == own | set(earlier)
    assert everything["labeled_runs"] == 2
    trained_on = everything["num_training_samples"] + everything["num_validation_samples"]
    assert trained_on == len(own) + len(earlier)

    only_own = split(run, labeling_job, train_on_all_class_labels=False)
    assert only_own["labeled_runs"] == 1
    assert only_own["num_training_samples"] + only_own["num_validation_samples"] == len(own)


def test_recording_marks_the_labeled_images_and_frees_the_failed_one(labeled, s3_client, run):
    from ground_truth_pipeline.labeled_images import record_key
    from ground_truth_pipeline.steps import record_step

    labeling_job, tree = labeled
    ids = [ref.rsplit("/", 1)[1].rsplit(".", 1)[0] for ref in tree.source_refs]
    sources = {image_id: f"s3://incoming/dt=2026-12-05/{image_id}.jpg" for image_id in ids}
    summary = {"labeled_image_ids": ids, "source_uris": sources}
    store = S3ObjectStore(s3_client, BUCKET)
    store.write_bytes(run.layout.selection_summary_key, json.dumps(summary).encode())
    ledger = claims.labeled_images_of(AwsClients(conn_id=None), run)
    assert all(ledger.claim(uri) for uri in sources.values())

    result = record_step.record_labeled_images(
        run.as_dict(), labeling_job, context(), clients=AwsClients(conn_id=None)
    )

    failed = {ids[i] for i in tree.failed_object_ids}
    assert result == {"labeled": len(ids) - len(failed), "released": len(failed)}
    for image_id, uri in sources.items():
        key = record_key(run.layout.class_root_key, uri)
        if image_id in failed:
            assert not store.exists(key)
        else:
            assert json.loads(store.read_bytes(key))["state"] == "labeled"
    run_record = json.loads(store.read_bytes(run.layout.labeled_run_key))
    assert run_record["output_manifest_uri"] == run.layout.uri_of_key(
        run.layout.output_manifest_key(labeling_job["LabelingJobName"])
    )
