"""The deploy steps against moto: model, batch transform, endpoint requests, predictions and teardown."""

import io
import json
import re
import time
from html import unescape
from types import SimpleNamespace

import boto3
import pytest
from airflow.providers.amazon.aws.operators.sagemaker import serialize
from botocore.exceptions import ClientError
from botocore.response import StreamingBody
from botocore.stub import Stubber
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sagemaker.models import sagemaker_backends
from PIL import Image

from ground_truth_pipeline.aws.resumable_sagemaker_hook import ResumableSageMakerHook
from ground_truth_pipeline.aws_clients import AwsClients
from ground_truth_pipeline.experiment import ExperimentRun
from ground_truth_pipeline.reports.html_report import HtmlSection, ReportPage
from ground_truth_pipeline.sagemaker_requests import training_job_request
from ground_truth_pipeline.steps import deploy_step, report_step
from ground_truth_pipeline.training_curves import TRAINING_JOB_LOG_GROUP
from tests.conftest import REGION

pytestmark = pytest.mark.integration

BUCKET = "experiments"
ROLE = "arn:aws:iam::123456789012:role/GroundTruthExecution"
IMAGE_SIZES = {"0001aaaa": (320, 240), "0002bbbb": (200, 300)}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def context(**params):
    defaults = {
        "role_arn": ROLE,
        "transform_instance_type": "ml.p2.xlarge",
        "endpoint_instance_type": "ml.m5.large",
        "prediction_threshold": 0.2,
    }
    return {
        "params": defaults | params,
        "dag": SimpleNamespace(dag_id="ground_truth_object_detection"),
        "run_id": "manual__1",
    }


def jpeg(width, height):
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (90, 140, 200)).save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.fixture
def run():
    return ExperimentRun("ground_truth_object_detection", "manual__1", BUCKET, "demo", "Bird", "/m/015p6")


@pytest.fixture
def clients(mocked_aws):
    return AwsClients(conn_id=None)


@pytest.fixture
def held_out(s3_client, run):
    """The bucket with the run's held-out images and label categories, as the prepare group writes them."""
    s3_client.create_bucket(Bucket=BUCKET)
    for image_id, (width, height) in IMAGE_SIZES.items():
        s3_client.put_object(Bucket=BUCKET, Key=run.layout.test_image_key(image_id), Body=jpeg(width, height))
    categories = {"labels": [{"label": "Bird"}, {"label": "Cat"}]}
    s3_client.put_object(
        Bucket=BUCKET, Key=run.layout.label_categories_key, Body=json.dumps(categories).encode()
    )
    return s3_client


@pytest.fixture
def training(mocked_aws, run):
    """The XCom of the training operator: ``{"Training": DescribeTrainingJob}`` of a job moto completed."""
    layout = run.layout
    request = training_job_request(
        job_name=run.resource_name("train"),
        role_arn=ROLE,
        train_manifest_uri=layout.uri_of_key(layout.train_manifest_key),
        validation_manifest_uri=layout.uri_of_key(layout.validation_manifest_key),
        attribute_names=["source-ref", "category"],
        output_uri=layout.training_output_uri,
        num_training_samples=16,
        num_classes=1,
        region=REGION,
    )
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    sagemaker.create_training_job(**request)
    return {
        "Training": serialize(sagemaker.describe_training_job(TrainingJobName=request["TrainingJobName"]))
    }


@pytest.fixture
def model(training, run, clients):
    """The XCom of the model operator for the model of ``training``, created in moto."""
    request = deploy_step.model_request(run.as_dict(), training, context(), clients=clients)
    clients.sagemaker.create_model(**request)
    return {"Model": serialize(clients.sagemaker.describe_model(ModelName=request["ModelName"]))}


def keys(s3_client, prefix):
    pages = s3_client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


def assert_png(s3_client, key):
    data = s3_client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert data.startswith(PNG_SIGNATURE)
    assert Image.open(io.BytesIO(data)).format == "PNG"


# Model and batch transform.


def test_model_request_serves_the_training_artifact(training, run, clients):
    request = deploy_step.model_request(run.as_dict(), training, context(), clients=clients)
    job = training["Training"]
    assert request == {
        "ModelName": run.resource_name("model"),
        "ExecutionRoleArn": ROLE,
        "PrimaryContainer": {
            "Image": "811284229777.dkr.ecr.us-east-1.amazonaws.com/object-detection:1",
            "ModelDataUrl": f"{run.layout.training_output_uri}{job['TrainingJobName']}/output/model.tar.gz",
        },
    }
    clients.sagemaker.create_model(**request)
    described = clients.sagemaker.describe_model(ModelName=request["ModelName"])
    assert described["PrimaryContainer"]["ModelDataUrl"] == job["ModelArtifacts"]["S3ModelArtifacts"]


def test_transform_job_request_reads_the_held_out_images(model, run, clients):
    request = deploy_step.transform_job_request(
        run.as_dict(), model, context(transform_instance_type="ml.c5.xlarge"), clients=clients
    )
    root = f"s3://{BUCKET}/{run.layout.root_key}"
    assert request["TransformJobName"] == run.resource_name("transform")
    assert request["ModelName"] == run.resource_name("model") == model["Model"]["ModelName"]
    transform_input = request["TransformInput"]
    assert transform_input["DataSource"]["S3DataSource"] == {
        "S3DataType": "S3Prefix",
        "S3Uri": f"{root}/test-images/",
    }
    assert transform_input["ContentType"] == "application/x-image"
    assert transform_input["SplitType"] == "None"
    assert request["TransformOutput"]["S3OutputPath"] == f"{root}/transform/output/"
    assert request["TransformResources"]["InstanceType"] == "ml.c5.xlarge"

    clients.sagemaker.create_transform_job(**request)
    described = clients.sagemaker.describe_transform_job(TransformJobName=request["TransformJobName"])
    assert described["ModelName"] == request["ModelName"]


def test_plot_batch_predictions_draws_what_scores_above_the_threshold(held_out, model, run, clients):
    request = deploy_step.transform_job_request(run.as_dict(), model, context(), clients=clients)
    clients.sagemaker.create_transform_job(**request)
    transform = {
        "Transform": serialize(
            clients.sagemaker.describe_transform_job(TransformJobName=request["TransformJobName"])
        )
    }
    # Where a batch transform puts its output: <S3OutputPath><path below the input prefix>.out
    output_prefix = f"{run.layout.root_key}/transform/output/"
    predictions = {
        "0001aaaa": [
            [0, 0.91, 0.10, 0.20, 0.50, 0.60],
            [0, 0.45, 0.55, 0.10, 0.90, 0.40],
            [0, 0.19, 0.00, 0.00, 0.20, 0.20],
        ],
        "0002bbbb": [[0, 0.05, 0.10, 0.10, 0.30, 0.30]],
    }
    for image_id, rows in predictions.items():
        body = json.dumps({"prediction": rows}).encode()
        held_out.put_object(Bucket=BUCKET, Key=f"{output_prefix}{image_id}.jpg.out", Body=body)

    summary = deploy_step.plot_batch_predictions(run.as_dict(), transform, context(), clients=clients)
    assert summary == {"images": 2, "boxes_above_threshold": {"0001aaaa.jpg": 2, "0002bbbb.jpg": 0}}
    for image_id in IMAGE_SIZES:
        written = keys(held_out, run.layout.prediction_key(f"batch-{image_id}") + "/")
        assert len(written) == 1 and written[0].endswith(".png")
        assert_png(held_out, written[0])

    stricter = deploy_step.plot_batch_predictions(
        run.as_dict(), transform, context(prediction_threshold=0.5), clients=clients
    )
    assert stricter["boxes_above_threshold"] == {"0001aaaa.jpg": 1, "0002bbbb.jpg": 0}


# Endpoint.


def test_plot_batch_predictions_names_an_image_the_transform_left_without_output(
    held_out, model, run, clients
):
    transform = {"Transform": {"TransformOutput": {"S3OutputPath": run.layout.transform_output_uri}}}
    with pytest.raises(
        ValueError, match=r"The batch transform wrote no output for s3://.*\.jpg: .*\.jpg\.out is missing"
    ):
        deploy_step.plot_batch_predictions(run.as_dict(), transform, context(), clients=clients)


def test_endpoint_request_deploys_the_model(model, run, clients):
    request = deploy_step.endpoint_request(run.as_dict(), model, context(), clients=clients)
    config_name = run.resource_name("epc")
    assert request["EndpointConfig"]["EndpointConfigName"] == config_name
    (variant,) = request["EndpointConfig"]["ProductionVariants"]
    assert variant["ModelName"] == run.resource_name("model")
    assert variant["InstanceType"] == "ml.m5.large"
    assert variant["InitialInstanceCount"] == 1
    assert request["Endpoint"] == {
        "EndpointName": run.resource_name("endpoint"),
        "EndpointConfigName": config_name,
    }

    clients.sagemaker.create_endpoint_config(**request["EndpointConfig"])
    clients.sagemaker.create_endpoint(**request["Endpoint"])
    described = clients.sagemaker.describe_endpoint(EndpointName=request["Endpoint"]["EndpointName"])
    assert described["EndpointConfigName"] == config_name


def stubbed_runtime(expected_params, response_body):
    """A real sagemaker-runtime client answering one InvokeEndpoint (moto 5.2.5 cannot take a binary body)."""
    runtime = boto3.client("sagemaker-runtime", region_name=REGION)
    stubber = Stubber(runtime)
    stubber.add_response(
        "invoke_endpoint",
        {
            "Body": StreamingBody(io.BytesIO(response_body), len(response_body)),
            "ContentType": "application/json",
        },
        expected_params=expected_params,
    )
    stubber.activate()
    return runtime, stubber


def test_invoke_endpoint_keeps_the_response_and_plots_it(held_out, run, clients):
    endpoint_name = run.resource_name("endpoint")
    first_image = held_out.get_object(Bucket=BUCKET, Key=run.layout.test_image_key("0001aaaa"))["Body"].read()
    response = json.dumps(
        {"prediction": [[0, 0.8, 0.1, 0.1, 0.6, 0.7], [0, 0.3, 0.5, 0.5, 0.9, 0.9], [0, 0.1, 0, 0, 0.1, 0.1]]}
    ).encode()
    runtime, stubber = stubbed_runtime(
        {"EndpointName": endpoint_name, "ContentType": "application/x-image", "Body": first_image}, response
    )
    clients.sagemaker_runtime = runtime

    result = deploy_step.invoke_endpoint(
        run.as_dict(), {"Endpoint": {"EndpointName": endpoint_name}}, context(), clients=clients
    )
    stubber.assert_no_pending_responses()
    assert result == {
        "endpoint": endpoint_name,
        "image": run.layout.test_image_key("0001aaaa"),
        "boxes_above_threshold": 2,
    }
    saved = held_out.get_object(Bucket=BUCKET, Key=run.layout.prediction_key("realtime-response.json"))
    assert saved["Body"].read() == response
    assert saved["ContentType"] == "application/json"
    plots = keys(held_out, run.layout.prediction_key("realtime") + "/")
    assert len(plots) == 1 and plots[0].endswith(".png")
    assert_png(held_out, plots[0])


def test_invoke_endpoint_without_held_out_images_says_where_it_looked(s3_client, run, clients):
    s3_client.create_bucket(Bucket=BUCKET)
    with pytest.raises(
        ValueError, match=f"No held-out image under s3://{BUCKET}/{run.layout.root_key}/test-images/"
    ):
        deploy_step.invoke_endpoint(
            run.as_dict(), {"Endpoint": {"EndpointName": "gtod-x-endpoint"}}, context(), clients=clients
        )


# The report, completed at the end of the run.


def write_transform_output(s3_client, run, predictions):
    """The batch transform's output as AWS writes it (<S3OutputPath><path below the input prefix>.out) and
    the transform operator's XCom."""
    for image_id, rows in predictions.items():
        body = json.dumps({"prediction": rows}).encode()
        key = f"{run.layout.root_key}/transform/output/{image_id}.jpg.out"
        s3_client.put_object(Bucket=BUCKET, Key=key, Body=body)
    return {"Transform": {"TransformOutput": {"S3OutputPath": run.layout.transform_output_uri}}}


def log_training(job_name, values):
    """The training job's CloudWatch log as the algorithm writes it: its configuration, then one validation
    mAP line per epoch among other lines."""
    logs = boto3.client("logs", region_name=REGION)
    stream = f"{job_name}/algo-1-1765000000"
    logs.create_log_group(logGroupName=TRAINING_JOB_LOG_GROUP)
    logs.create_log_stream(logGroupName=TRAINING_JOB_LOG_GROUP, logStreamName=stream)
    messages = ["Final configuration: {u'num_training_samples': u'16'}"]
    for epoch, value in enumerate(values):
        messages.append(f"Epoch[{epoch}] Batch[0] Train-loss=1.5")
        messages.append(f"#quality_metric: host=algo-1, epoch={epoch}, validation mAP <score>=({value})")
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=TRAINING_JOB_LOG_GROUP,
        logStreamName=stream,
        logEvents=[{"timestamp": now + i, "message": message} for i, message in enumerate(messages)],
    )


def test_complete_report_adds_the_model_the_batch_and_the_endpoint_to_the_analysis_report(
    held_out, training, run, clients
):
    layout = run.layout
    labeling = ReportPage("Labeling analysis: Bird", "2 images", (HtmlSection("Summary", "Labeled."),))
    held_out.put_object(Bucket=BUCKET, Key=layout.analysis_key("report-page.json"), Body=labeling.to_json())
    job_name = training["Training"]["TrainingJobName"]
    log_training(job_name, [0.05, 0.2, 0.35])
    transform = write_transform_output(
        held_out,
        run,
        {
            "0001aaaa": [[1, 0.9, 0.1, 0.2, 0.5, 0.6], [0, 0.1, 0, 0, 1, 1]],
            "0002bbbb": [[0, 0.6, 0, 0, 1, 1]],
        },
    )
    response = {"prediction": [[0, 0.8, 0.1, 0.1, 0.6, 0.7], [1, 0.05, 0, 0, 1, 1]]}
    held_out.put_object(
        Bucket=BUCKET, Key=layout.prediction_key("realtime-response.json"), Body=json.dumps(response).encode()
    )
    endpoint_call = {
        "endpoint": run.resource_name("endpoint"),
        "image": layout.test_image_key("0001aaaa"),
        "boxes_above_threshold": 1,
    }

    result = report_step.complete_report(
        run.as_dict(), training, transform, endpoint_call, context(), clients=clients
    )

    assert result == {
        "report_uri": layout.uri_of_key(layout.analysis_key("report.html")),
        "training_job": job_name,
        "epochs_logged": 3,
        "final_validation_map": 0.35,
        "held_out_images": 2,
    }
    for name in ("model-validation-map.png", "batch-predictions.png", "endpoint-predictions.png"):
        assert_png(held_out, layout.analysis_key(name))
    html = held_out.get_object(Bucket=BUCKET, Key=layout.analysis_key("report.html"))["Body"].read().decode()
    text = " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())
    assert re.findall(r"<h2>(.*?)</h2>", html) == [
        "Summary",
        "Trained model",
        "Batch transform",
        "Real-time endpoint",
    ]
    assert f"training job {job_name} status Completed training samples 16" in text
    assert "final validation mAP 0.35 best validation mAP 0.3500 (epoch 3)" in text
    assert "0001aaaa.jpg 2 1 0.9 Cat (1)" in text
    assert "0002bbbb.jpg 1 1 0.6 Bird (1)" in text
    assert f"The real-time endpoint {run.resource_name('endpoint')} answered for 0001aaaa.jpg" in text
    assert "Bird 0.8 0.1 0.1 0.6 0.7" in text
    assert 'href="../predictions/realtime-response.json"' in html


def test_complete_report_without_the_endpoint_response_names_it(held_out, training, run, clients):
    transform = write_transform_output(held_out, run, {"0001aaaa": [], "0002bbbb": []})
    with pytest.raises(
        ValueError, match=r"The endpoint's response is missing: s3://.*/realtime-response\.json"
    ):
        report_step.complete_report(
            run.as_dict(),
            training,
            transform,
            {"endpoint": "e", "image": run.layout.test_image_key("0001aaaa")},
            context(),
            clients=clients,
        )


# Teardown.


@pytest.fixture
def endpoint_request(model, run, clients):
    return deploy_step.endpoint_request(run.as_dict(), model, context(), clients=clients)


@pytest.fixture
def hook(mocked_aws):
    """The teardown's hook, on moto; the tests watch the calls of its own client."""
    return ResumableSageMakerHook(aws_conn_id=None)


def deploy(clients, endpoint_request, *config_names):
    """Create the endpoint configs ``config_names`` and the endpoint on the last of them."""
    for name in config_names:
        clients.sagemaker.create_endpoint_config(
            **(endpoint_request["EndpointConfig"] | {"EndpointConfigName": name})
        )
    clients.sagemaker.create_endpoint(
        EndpointName=endpoint_request["Endpoint"]["EndpointName"], EndpointConfigName=config_names[-1]
    )


def endpoint_names(clients):
    return [e["EndpointName"] for e in clients.sagemaker.list_endpoints()["Endpoints"]]


def config_names(clients):
    return sorted(
        c["EndpointConfigName"] for c in clients.sagemaker.list_endpoint_configs()["EndpointConfigs"]
    )


def test_delete_endpoint_removes_the_endpoint_and_every_config_of_the_run(endpoint_request, clients, hook):
    config = endpoint_request["EndpointConfig"]["EndpointConfigName"]
    # A retried endpoint task moved the endpoint to <config>-2; another run's config must survive.
    deploy(clients, endpoint_request, config, f"{config}-2")
    clients.sagemaker.create_endpoint_config(
        **(endpoint_request["EndpointConfig"] | {"EndpointConfigName": "other-epc"})
    )

    result = deploy_step.delete_endpoint(endpoint_request, hook=hook, poll_seconds=0)
    assert result["endpoint_deleted"] is True
    assert sorted(result["endpoint_configs_deleted"]) == [config, f"{config}-2"]
    assert endpoint_names(clients) == []
    assert config_names(clients) == ["other-epc"]


def test_delete_endpoint_is_a_no_op_when_nothing_exists(endpoint_request, clients, hook):
    result = deploy_step.delete_endpoint(endpoint_request, hook=hook, poll_seconds=0)
    assert result == {"endpoint_deleted": False, "endpoint_configs_deleted": []}


def test_delete_endpoint_deletes_a_config_left_without_endpoint(endpoint_request, clients, hook):
    config = endpoint_request["EndpointConfig"]["EndpointConfigName"]
    clients.sagemaker.create_endpoint_config(**endpoint_request["EndpointConfig"])
    result = deploy_step.delete_endpoint(endpoint_request, hook=hook, poll_seconds=0)
    assert result == {"endpoint_deleted": False, "endpoint_configs_deleted": [config]}
    assert config_names(clients) == []


def record_calls(client, operation):
    """The parameters of every ``operation`` call the client makes from now on."""
    calls = []
    client.meta.events.register(
        f"before-parameter-build.sagemaker.{operation}", lambda params, **kwargs: calls.append(params)
    )
    return calls


def test_delete_endpoint_waits_for_an_endpoint_already_being_deleted(endpoint_request, clients, hook):
    config = endpoint_request["EndpointConfig"]["EndpointConfigName"]
    deploy(clients, endpoint_request, config)
    endpoint_name = endpoint_request["Endpoint"]["EndpointName"]
    backend = sagemaker_backends[DEFAULT_ACCOUNT_ID][REGION]
    backend.endpoints[endpoint_name].endpoint_status = "Deleting"
    describes = []

    def finish_deleting_after_three_looks(**kwargs):
        describes.append(kwargs["parsed"].get("EndpointStatus"))
        if len(describes) == 3:
            del backend.endpoints[endpoint_name]

    hook.conn.meta.events.register("after-call.sagemaker.DescribeEndpoint", finish_deleting_after_three_looks)
    deletes = record_calls(hook.conn, "DeleteEndpoint")

    result = deploy_step.delete_endpoint(endpoint_request, hook=hook, poll_seconds=0)
    assert deletes == []  # no second DeleteEndpoint for an endpoint already on its way out
    assert describes == ["Deleting", "Deleting", "Deleting", None]
    assert result == {"endpoint_deleted": True, "endpoint_configs_deleted": [config]}
    assert endpoint_names(clients) == [] and config_names(clients) == []


def test_delete_endpoint_lets_a_creating_endpoint_settle_before_deleting_it(endpoint_request, clients, hook):
    config = endpoint_request["EndpointConfig"]["EndpointConfigName"]
    deploy(clients, endpoint_request, config)
    endpoint_name = endpoint_request["Endpoint"]["EndpointName"]
    endpoint = sagemaker_backends[DEFAULT_ACCOUNT_ID][REGION].endpoints[endpoint_name]
    endpoint.endpoint_status = "Creating"
    looks = []
    statuses_seen_by_delete = []

    def in_service_after_two_looks(**kwargs):
        looks.append(kwargs["parsed"].get("EndpointStatus"))
        if len(looks) == 2:
            endpoint.endpoint_status = "InService"

    def record_status_at_delete(**kwargs):
        statuses_seen_by_delete.append(endpoint.endpoint_status)

    hook.conn.meta.events.register("after-call.sagemaker.DescribeEndpoint", in_service_after_two_looks)
    hook.conn.meta.events.register("before-call.sagemaker.DeleteEndpoint", record_status_at_delete)

    result = deploy_step.delete_endpoint(endpoint_request, hook=hook, poll_seconds=0)
    assert looks[:3] == ["Creating", "Creating", "InService"]
    assert statuses_seen_by_delete == ["InService"]
    assert result == {"endpoint_deleted": True, "endpoint_configs_deleted": [config]}
    assert endpoint_names(clients) == []


def test_delete_endpoint_gives_up_on_an_endpoint_that_never_goes(endpoint_request, clients, hook):
    deploy(clients, endpoint_request, endpoint_request["EndpointConfig"]["EndpointConfigName"])
    endpoint_name = endpoint_request["Endpoint"]["EndpointName"]
    sagemaker_backends[DEFAULT_ACCOUNT_ID][REGION].endpoints[endpoint_name].endpoint_status = "Deleting"
    with pytest.raises(TimeoutError, match=f"Endpoint {endpoint_name} still exists after 0"):
        deploy_step.delete_endpoint(endpoint_request, hook=hook, poll_seconds=0, max_wait_seconds=0)
    assert config_names(clients) != []


def test_a_retried_teardown_finishes_what_a_failed_one_began(endpoint_request, clients, hook):
    config = endpoint_request["EndpointConfig"]["EndpointConfigName"]
    deploy(clients, endpoint_request, config, f"{config}-2", f"{config}-3")
    deletes = []

    def throttle_the_second_delete(params, **kwargs):
        deletes.append(params["EndpointConfigName"])
        if len(deletes) == 2:
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "DeleteEndpointConfig"
            )

    handler_id = "throttle-second-delete"
    events = hook.conn.meta.events
    events.register(
        "before-parameter-build.sagemaker.DeleteEndpointConfig",
        throttle_the_second_delete,
        unique_id=handler_id,
    )
    with pytest.raises(ClientError, match="ThrottlingException"):
        deploy_step.delete_endpoint(endpoint_request, hook=hook, poll_seconds=0)
    assert len(config_names(clients)) == 2
    events.unregister("before-parameter-build.sagemaker.DeleteEndpointConfig", unique_id=handler_id)

    retry = deploy_step.delete_endpoint(endpoint_request, hook=hook, poll_seconds=0)
    assert retry["endpoint_deleted"] is False
    assert sorted(retry["endpoint_configs_deleted"]) == [config, f"{config}-2"]
    assert config_names(clients) == []
