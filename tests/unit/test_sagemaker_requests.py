import json
from decimal import Decimal
from unittest import mock

import pytest
from airflow.providers.amazon.aws.operators.sagemaker import SageMakerEndpointOperator

from ground_truth_pipeline import region_arns
from ground_truth_pipeline.region_arns import (
    ARNS_PATH_ENV,
    UnsupportedRegionError,
    auto_labeling_algorithm_arn,
    consolidation_lambda_arn,
    load_region_table,
    object_detection_image_uri,
    pre_human_task_lambda_arn,
    public_workteam_arn,
    supported_regions,
)
from ground_truth_pipeline.sagemaker_requests import (
    AWS_MIN_IMAGE_SHAPE,
    DEFAULT_HYPERPARAMETERS,
    ExtraBaseNetworks,
    InvalidRequestError,
    PrivateTeam,
    PublicCrowd,
    endpoint_config_request,
    endpoint_operator_config,
    endpoint_request,
    label_categories,
    labeling_job_request,
    model_request,
    object_detection_hyperparameters,
    training_job_request,
    transform_job_request,
    usd_amount,
    validate_request,
)
from ground_truth_pipeline.steps import train_step

ROLE = "arn:aws:iam::123456789012:role/GroundTruthRole"
ROOT = "s3://bucket/gt/bird/run-1"
PRIVATE_TEAM = "arn:aws:sagemaker:us-west-2:123456789012:workteam/private-crowd/labelers"
IMAGE = "433757028032.dkr.ecr.us-west-2.amazonaws.com/object-detection:1"


def labeling(**overrides):
    arguments = {
        "job_name": "gtod-bird-0123456789-label",
        "class_name": "Bird",
        "manifest_uri": f"{ROOT}/input.manifest",
        "output_uri": f"{ROOT}/labeling/",
        "role_arn": ROLE,
        "label_categories_uri": f"{ROOT}/class_labels.json",
        "template_uri": f"{ROOT}/instructions.template",
        "region": "us-west-2",
        "workforce": PublicCrowd(task_price_usd=0.036),
        "auto_labeling": False,
    }
    return labeling_job_request(**{**arguments, **overrides})


def training(**overrides):
    arguments = {
        "job_name": "gtod-bird-0123456789-train",
        "role_arn": ROLE,
        "region": "us-west-2",
        "train_manifest_uri": f"{ROOT}/training/train.manifest",
        "validation_manifest_uri": f"{ROOT}/training/validation.manifest",
        "attribute_names": ["source-ref", "category"],
        "output_uri": f"{ROOT}/training/output/",
        "num_training_samples": 80,
        "num_classes": 1,
    }
    return training_job_request(**{**arguments, **overrides})


def transform(**overrides):
    arguments = {
        "job_name": "gtod-bird-0123456789-transform",
        "model_name": "gtod-bird-0123456789-model",
        "input_prefix_uri": f"{ROOT}/test-images/",
        "output_uri": f"{ROOT}/transform/output/",
    }
    return transform_job_request(**{**arguments, **overrides})


# Region tables.


def test_us_west_2_arns_are_the_documented_ones():
    assert (
        pre_human_task_lambda_arn("us-west-2")
        == "arn:aws:lambda:us-west-2:081040173940:function:PRE-BoundingBox"
    )
    assert (
        consolidation_lambda_arn("us-west-2")
        == "arn:aws:lambda:us-west-2:081040173940:function:ACS-BoundingBox"
    )
    assert auto_labeling_algorithm_arn("us-west-2") == (
        "arn:aws:sagemaker:us-west-2:027400017018:labeling-job-algorithm-specification/object-detection"
    )
    assert public_workteam_arn("us-west-2") == (
        "arn:aws:sagemaker:us-west-2:394669845002:workteam/public-crowd/default"
    )
    assert object_detection_image_uri("us-west-2") == IMAGE


@pytest.mark.parametrize(
    ("region", "account"),
    [
        ("us-east-1", "432418664414"),
        ("us-east-2", "266458841044"),
        ("eu-west-1", "568282634449"),
        ("ap-northeast-1", "477331159723"),
    ],
)
def test_lambda_accounts_of_the_documented_regions(region, account):
    assert pre_human_task_lambda_arn(region) == f"arn:aws:lambda:{region}:{account}:function:PRE-BoundingBox"


def test_every_supported_region_has_every_entry():
    regions = supported_regions()
    assert {"us-west-2", "us-east-1", "us-east-2", "eu-west-1", "ap-northeast-1"} <= set(regions)
    for region in regions:
        assert f":{region}:" in pre_human_task_lambda_arn(region)
        assert f".dkr.ecr.{region}.amazonaws.com/object-detection:1" in object_detection_image_uri(region)


@pytest.mark.parametrize(
    "arn_of",
    [
        pre_human_task_lambda_arn,
        consolidation_lambda_arn,
        auto_labeling_algorithm_arn,
        public_workteam_arn,
        object_detection_image_uri,
    ],
)
def test_unknown_region_is_an_error_naming_it_and_the_supported_ones(arn_of):
    with pytest.raises(UnsupportedRegionError, match=r"'mars-north-1'.*us-west-2") as caught:
        arn_of("mars-north-1")
    assert isinstance(caught.value, ValueError)


def test_table_path_can_be_overridden(tmp_path, monkeypatch):
    table = {
        "auto_labeling_algorithm_account": "027400017018",
        "public_workteam_account": "394669845002",
        "regions": {
            "eu-north-1": {
                "bounding_box_lambda_account": "111111111111",
                "object_detection_registry_account": "222222222222",
            }
        },
    }
    path = tmp_path / "arns.json"
    path.write_text(json.dumps(table))
    monkeypatch.setenv(ARNS_PATH_ENV, str(path))
    assert supported_regions() == ["eu-north-1"]
    assert object_detection_image_uri("eu-north-1") == (
        "222222222222.dkr.ecr.eu-north-1.amazonaws.com/object-detection:1"
    )


def test_malformed_table_names_the_file_and_entry(tmp_path):
    path = tmp_path / "arns.json"
    path.write_text(
        json.dumps(
            {
                "auto_labeling_algorithm_account": "027400017018",
                "public_workteam_account": "394669845002",
                "regions": {"us-west-2": {"bounding_box_lambda_account": "81040173940"}},
            }
        )
    )
    with pytest.raises(ValueError, match=r"arns\.json: us-west-2\.bounding_box_lambda_account"):
        load_region_table(path)


def test_default_table_lives_in_include():
    assert region_arns.region_table_path().parts[-2:] == ("include", "ground_truth_arns.json")
    assert region_arns.region_table_path().is_file()


# validate_request.


def test_validate_request_names_a_missing_required_field():
    with pytest.raises(InvalidRequestError, match="EndpointConfigName"):
        validate_request("CreateEndpoint", {"EndpointName": "gtod-bird-0123456789-endpoint"})


def test_validate_request_names_a_field_of_the_wrong_type():
    request = transform()
    request["MaxPayloadInMB"] = "6"
    with pytest.raises(InvalidRequestError, match=r"Invalid type for parameter MaxPayloadInMB"):
        validate_request("CreateTransformJob", request)


def test_validate_request_names_an_unknown_field_and_operation():
    with pytest.raises(InvalidRequestError, match='Unknown parameter in input: "Colour"'):
        validate_request("CreateEndpoint", {"EndpointName": "e", "EndpointConfigName": "c", "Colour": "red"})
    with pytest.raises(InvalidRequestError, match="CreateLabellingJob"):
        validate_request("CreateLabellingJob", {})


def test_every_builder_output_passes_botocore_validation():
    requests = {
        "CreateLabelingJob": labeling(),
        "CreateTrainingJob": training(),
        "CreateModel": model_request(
            model_name="gtod-bird-0123456789-model",
            image_uri=IMAGE,
            model_data_url=f"{ROOT}/training/output/job/output/model.tar.gz",
            role_arn=ROLE,
        ),
        "CreateTransformJob": transform(),
        "CreateEndpointConfig": endpoint_config_request(
            config_name="gtod-bird-0123456789-epc", model_name="gtod-bird-0123456789-model"
        ),
        "CreateEndpoint": endpoint_request(
            endpoint_name="gtod-bird-0123456789-endpoint", config_name="gtod-bird-0123456789-epc"
        ),
    }
    for operation, request in requests.items():
        validate_request(operation, request)


# Labeling job.


def test_public_crowd_gets_the_public_workteam_and_a_price():
    config = labeling()["HumanTaskConfig"]
    assert config["WorkteamArn"] == "arn:aws:sagemaker:us-west-2:394669845002:workteam/public-crowd/default"
    assert config["PublicWorkforceTaskPrice"] == {
        "AmountInUsd": {"Dollars": 0, "Cents": 3, "TenthFractionsOfACent": 6}
    }
    assert config["PreHumanTaskLambdaArn"].endswith("081040173940:function:PRE-BoundingBox")
    assert config["AnnotationConsolidationConfig"]["AnnotationConsolidationLambdaArn"].endswith(
        "081040173940:function:ACS-BoundingBox"
    )


def test_private_team_gets_its_arn_and_no_price():
    config = labeling(workforce=PrivateTeam(PRIVATE_TEAM))["HumanTaskConfig"]
    assert config["WorkteamArn"] == PRIVATE_TEAM
    assert "PublicWorkforceTaskPrice" not in config


def test_labeling_request_carries_the_inputs_and_task_settings():
    request = labeling(workers_per_object=3, max_concurrent_tasks=50)
    assert request["LabelAttributeName"] == "category"
    assert request["InputConfig"]["DataSource"]["S3DataSource"]["ManifestS3Uri"] == f"{ROOT}/input.manifest"
    assert request["InputConfig"]["DataAttributes"]["ContentClassifiers"] == [
        "FreeOfPersonallyIdentifiableInformation",
        "FreeOfAdultContent",
    ]
    assert request["LabelCategoryConfigS3Uri"] == f"{ROOT}/class_labels.json"
    config = request["HumanTaskConfig"]
    assert config["UiConfig"] == {"UiTemplateS3Uri": f"{ROOT}/instructions.template"}
    assert config["NumberOfHumanWorkersPerDataObject"] == 3
    assert config["MaxConcurrentTaskCount"] == 50
    assert config["TaskTimeLimitInSeconds"] == 300
    assert config["TaskAvailabilityLifetimeInSeconds"] == 21600
    assert "Bird" in config["TaskTitle"] and "Bird" in config["TaskDescription"]


def test_auto_labeling_adds_the_algorithm_config_only_when_on():
    assert "LabelingJobAlgorithmsConfig" not in labeling(auto_labeling=False)
    assert labeling(auto_labeling=True)["LabelingJobAlgorithmsConfig"] == {
        "LabelingJobAlgorithmSpecificationArn": (
            "arn:aws:sagemaker:us-west-2:027400017018:labeling-job-algorithm-specification/object-detection"
        )
    }


def test_labeling_request_for_an_unsupported_region_fails():
    with pytest.raises(UnsupportedRegionError, match="mars-north-1"):
        labeling(region="mars-north-1")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"workers_per_object": 0}, "workers_per_object must be an integer from 1 to 9"),
        ({"workers_per_object": 10}, "workers_per_object must be an integer from 1 to 9"),
        ({"manifest_uri": "bucket/input.manifest"}, "manifest_uri must be an s3://"),
        ({"label_attribute_name": "category-metadata"}, "must not end with '-metadata'"),
        ({"label_attribute_name": "category-ref"}, "must not end with '-ref'"),
        ({"label_attribute_name": "my_label"}, "label_attribute_name 'my_label' does not match"),
        ({"task_title": "x" * 129}, "task_title must be a string of 1 to 128 characters"),
        ({"task_keywords": ["boxes!"]}, "task keyword 'boxes!' does not match"),
        ({"task_keywords": ["a", "b", "c", "d", "e", "f"]}, "task_keywords must hold 1 to 5"),
        ({"content_classifiers": ["FreeOfViolence"]}, "unknown content classifiers"),
        ({"task_time_limit_s": 10}, "TaskTimeLimitInSeconds"),
    ],
)
def test_labeling_request_rejects_bad_arguments(overrides, message):
    with pytest.raises(ValueError, match=message):
        labeling(**overrides)


@pytest.mark.parametrize(
    "arn",
    ["workteam/private-crowd/labelers", "arn:aws:sagemaker:us-west-2:123:workteam/private-crowd/x", ROLE],
)
def test_private_team_needs_a_workteam_arn(arn):
    with pytest.raises(ValueError, match="private workteam ARN"):
        PrivateTeam(arn)


def test_private_team_refuses_the_public_workforce():
    with pytest.raises(ValueError, match="use PublicCrowd"):
        PrivateTeam(public_workteam_arn("us-west-2"))


# Prices.


@pytest.mark.parametrize(
    ("price", "amount"),
    [
        (0.036, (0, 3, 6)),
        (0.012, (0, 1, 2)),
        (1.2, (1, 20, 0)),
        ("0.840", (0, 84, 0)),
        (Decimal("2.999"), (2, 99, 9)),
        (1, (1, 0, 0)),
    ],
)
def test_usd_amount_converts_exactly(price, amount):
    dollars, cents, tenths = amount
    assert usd_amount(price) == {"Dollars": dollars, "Cents": cents, "TenthFractionsOfACent": tenths}


@pytest.mark.parametrize(
    ("price", "message"),
    [
        (0.0365, "whole number of tenths of a cent"),
        (0, "positive"),
        (-0.036, "positive"),
        (float("nan"), "positive"),
        (3.0, "above SageMaker's limit"),
        ("twelve", "not a number"),
        (True, "not a number"),
    ],
)
def test_usd_amount_rejects_prices_sagemaker_cannot_take(price, message):
    with pytest.raises(ValueError, match=message):
        usd_amount(price)


def test_public_crowd_takes_only_prices_aws_allows_for_boxes():
    assert PublicCrowd(1.2).amount_in_usd() == {"Dollars": 1, "Cents": 20, "TenthFractionsOfACent": 0}
    with pytest.raises(ValueError, match=r"0\.012 USD is not one AWS allows.*0\.036, 0\.048"):
        PublicCrowd(0.012)
    with pytest.raises(ValueError, match="whole number of tenths of a cent"):
        PublicCrowd(0.0365)


# Label categories.


def test_label_categories_in_order():
    assert label_categories(["Bird", "Duck"]) == {"labels": [{"label": "Bird"}, {"label": "Duck"}]}


@pytest.mark.parametrize(
    ("names", "message"),
    [
        ([], "1 to 10 label categories"),
        ([f"c{i}" for i in range(11)], "1 to 10 label categories, got 11"),
        (["Bird", " "], "label category 1 must be a non-empty name"),
        (["Bird", "Duck", "Bird"], "repeated: Bird"),
        ("Bird", "not the string"),
    ],
)
def test_label_categories_rejects_bad_lists(names, message):
    with pytest.raises(ValueError, match=message):
        label_categories(names)


# Training job.


def test_training_request_defaults():
    request = training()
    assert request["AlgorithmSpecification"] == {"TrainingImage": IMAGE, "TrainingInputMode": "Pipe"}
    assert request["HyperParameters"] == {
        **DEFAULT_HYPERPARAMETERS,
        "num_classes": "1",
        "num_training_samples": "80",
    }
    assert request["HyperParameters"]["base_network"] == "resnet-50"
    assert request["HyperParameters"]["mini_batch_size"] == "1"
    assert "lr_scheduler_step" not in request["HyperParameters"]
    assert request["ResourceConfig"] == {
        "InstanceType": "ml.p3.2xlarge",
        "InstanceCount": 1,
        "VolumeSizeInGB": 50,
    }
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 86400}
    assert request["OutputDataConfig"] == {"S3OutputPath": f"{ROOT}/training/output/"}


def test_training_channels_are_augmented_manifests_in_recordio():
    train, validation = training()["InputDataConfig"]
    assert (train["ChannelName"], validation["ChannelName"]) == ("train", "validation")
    assert train["DataSource"]["S3DataSource"] == {
        "S3DataType": "AugmentedManifestFile",
        "S3Uri": f"{ROOT}/training/train.manifest",
        "S3DataDistributionType": "FullyReplicated",
        "AttributeNames": ["source-ref", "category"],
    }
    assert validation["DataSource"]["S3DataSource"]["S3Uri"] == f"{ROOT}/training/validation.manifest"
    for channel in (train, validation):
        assert channel["ContentType"] == "application/x-recordio"
        assert channel["RecordWrapperType"] == "RecordIO"
        assert channel["CompressionType"] == "None"


def test_training_image_from_image_uri_and_region_or_uri_exclusive():
    local_image = "localhost/object-detection:latest"
    assert (
        training(region=None, image_uri=local_image)["AlgorithmSpecification"]["TrainingImage"] == local_image
    )
    with pytest.raises(ValueError, match="exactly one of region"):
        training(image_uri=local_image)
    with pytest.raises(ValueError, match="exactly one of region"):
        training(region=None)


def test_hyperparameter_overrides_are_rendered_as_strings_and_empty_values_omitted():
    hyperparameters = object_detection_hyperparameters(
        num_training_samples=120,
        num_classes=2,
        overrides={
            "epochs": 5,
            "learning_rate": 0.0005,
            "mini_batch_size": "16",
            "optimizer": "adam",
            "lr_scheduler_step": "",
            "early_stopping": True,
            "momentum": None,
        },
    )
    assert hyperparameters["epochs"] == "5"
    assert hyperparameters["learning_rate"] == "0.0005"
    assert hyperparameters["mini_batch_size"] == "16"
    assert hyperparameters["optimizer"] == "adam"
    assert hyperparameters["early_stopping"] == "True"
    assert "lr_scheduler_step" not in hyperparameters
    assert "momentum" not in hyperparameters
    assert hyperparameters["num_classes"] == "2"
    assert hyperparameters["num_training_samples"] == "120"
    assert hyperparameters["base_network"] == "resnet-50"


def test_hyperparameter_overrides_may_repeat_but_not_contradict_the_counts():
    same = object_detection_hyperparameters(
        num_training_samples=80, num_classes=1, overrides={"num_classes": 1}
    )
    assert same["num_classes"] == "1"
    with pytest.raises(ValueError, match=r"num_classes='3' contradicts num_classes=1"):
        object_detection_hyperparameters(num_training_samples=80, num_classes=1, overrides={"num_classes": 3})
    with pytest.raises(ValueError, match=r"num_training_samples='81' contradicts"):
        training(hyperparameters={"num_training_samples": "81"})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"optimizer": "lbfgs"},
            r"optimizer='lbfgs' is invalid: it must be one of sgd, adam, rmsprop, adadelta",
        ),
        ({"base_network": "resnet-101"}, r"base_network='resnet-101' is invalid"),
        ({"epochs": 0}, r"epochs='0' is invalid: it must be a positive integer"),
        ({"epochs": 2.5}, r"epochs='2.5' is invalid"),
        ({"mini_batch_size": -4}, r"mini_batch_size='-4' is invalid"),
        ({"image_shape": 299}, r"image_shape='299' is invalid: it must be an integer >= 300"),
        ({"learning_rate": 0}, r"learning_rate='0' is invalid: it must be a number in \(0, 1\]"),
        ({"weight_decay": 1}, r"weight_decay='1' is invalid"),
        ({"use_pretrained_model": True}, r"use_pretrained_model='True' is invalid: it must be one of 0, 1"),
        ({"lr_scheduler_step": "10,x"}, r"lr_scheduler_step='10,x' is invalid"),
        ({"freeze_layer_pattern": "conv1_("}, r"freeze_layer_pattern='conv1_\(' is invalid"),
        ({"epoch": 5}, r"unknown object-detection hyperparameters epoch"),
        ({"epochs": [5]}, r"hyperparameter epochs must be a string or a number"),
    ],
)
def test_invalid_hyperparameters_are_named(overrides, message):
    with pytest.raises(ValueError, match=message):
        training(hyperparameters=overrides)


def test_valid_optional_hyperparameters_pass():
    hyperparameters = training(
        hyperparameters={"lr_scheduler_step": "10, 20", "early_stopping_tolerance": 0, "image_shape": 512}
    )["HyperParameters"]
    assert hyperparameters["lr_scheduler_step"] == "10, 20"
    assert hyperparameters["image_shape"] == "512"


@pytest.mark.parametrize("counts", [{"num_classes": 0}, {"num_training_samples": 0}, {"num_classes": True}])
def test_counts_must_be_positive_integers(counts):
    with pytest.raises(ValueError, match="must be an integer at least 1"):
        training(**counts)


@pytest.mark.parametrize(
    "names",
    [
        ["category", "source-ref"],
        ["source-ref"],
        ["source-ref", "category", "category-metadata"],
        ["source-ref", "category-metadata"],
        "source-ref",
    ],
)
def test_attribute_names_must_be_source_ref_then_the_label(names):
    with pytest.raises(ValueError, match="attribute_names"):
        training(attribute_names=names)


# Model, transform, endpoint.


def test_model_request():
    request = model_request(
        model_name="m", image_uri=IMAGE, model_data_url=f"{ROOT}/model.tar.gz", role_arn=ROLE
    )
    assert request == {
        "ModelName": "m",
        "ExecutionRoleArn": ROLE,
        "PrimaryContainer": {"Image": IMAGE, "ModelDataUrl": f"{ROOT}/model.tar.gz"},
    }


def test_transform_request_sends_each_image_whole():
    request = transform()
    assert request["BatchStrategy"] == "SingleRecord"
    assert request["MaxConcurrentTransforms"] == 16
    assert request["MaxPayloadInMB"] == 6
    assert request["TransformInput"] == {
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"{ROOT}/test-images/"}},
        "ContentType": "application/x-image",
        "SplitType": "None",
        "CompressionType": "None",
    }
    assert request["TransformResources"] == {"InstanceType": "ml.p2.xlarge", "InstanceCount": 1}
    with pytest.raises(ValueError, match="content_type 'text/csv'"):
        transform(content_type="text/csv")


def test_endpoint_operator_config_has_the_config_and_the_endpoint():
    config = endpoint_operator_config(endpoint_name="ep", config_name="epc", model_name="m", instance_count=2)
    assert config == {
        "EndpointConfig": {
            "EndpointConfigName": "epc",
            "ProductionVariants": [
                {
                    "VariantName": "AllTraffic",
                    "ModelName": "m",
                    "InstanceType": "ml.m4.xlarge",
                    "InitialInstanceCount": 2,
                }
            ],
        },
        "Endpoint": {"EndpointName": "ep", "EndpointConfigName": "epc"},
    }
    validate_request("CreateEndpointConfig", config["EndpointConfig"])
    validate_request("CreateEndpoint", config["Endpoint"])


def test_endpoint_operator_passes_our_requests_to_the_hook(monkeypatch):
    config = endpoint_operator_config(endpoint_name="ep", config_name="epc", model_name="m")
    operator = SageMakerEndpointOperator(task_id="deploy", config=config, wait_for_completion=False)
    hook = mock.MagicMock()
    hook.create_endpoint.return_value = {"ResponseMetadata": {"HTTPStatusCode": 200}}
    monkeypatch.setattr(SageMakerEndpointOperator, "hook", hook)
    operator.execute({})
    hook.create_endpoint_config.assert_called_once_with(config["EndpointConfig"])
    hook.create_endpoint.assert_called_once_with(config["Endpoint"], wait_for_completion=False)
    hook.create_model.assert_not_called()


EXTRA = ExtraBaseNetworks(("cpu-net", "edge-net"), min_image_shape=64)
NETWORKS_OPTION = (
    r"\[ground_truth_object_detection\] extra_base_networks "
    r"\(AIRFLOW__GROUND_TRUTH_OBJECT_DETECTION__EXTRA_BASE_NETWORKS\)"
)


def test_a_network_beyond_aws_s_is_refused_naming_the_option_that_admits_it():
    with pytest.raises(
        ValueError,
        match=r"base_network='cpu-net' is invalid: it must be one of AWS's networks, vgg-16, resnet-50; "
        rf"a training service that accepts others is configured with them in {NETWORKS_OPTION}",
    ):
        training(hyperparameters={"base_network": "cpu-net", "image_shape": 128})


def test_configured_extra_networks_are_admitted_from_their_own_minimum_image_shape():
    for network in EXTRA.names:
        cpu = {"base_network": network, "image_shape": 64}
        hyperparameters = training(hyperparameters=cpu, extra_base_networks=EXTRA)["HyperParameters"]
        assert (hyperparameters["base_network"], hyperparameters["image_shape"]) == (network, "64")
        with pytest.raises(
            ValueError,
            match=rf"image_shape='63' is invalid for base_network={network}: it must be an integer >= 64 "
            r"\(\[ground_truth_object_detection\] extra_base_networks_min_image_shape ",
        ):
            training(hyperparameters={**cpu, "image_shape": 63}, extra_base_networks=EXTRA)
    with pytest.raises(
        ValueError,
        match=r"base_network='other-net' is invalid: it must be one of AWS's networks, vgg-16, resnet-50, "
        rf"or of the extra networks of {NETWORKS_OPTION}, cpu-net, edge-net",
    ):
        training(hyperparameters={"base_network": "other-net"}, extra_base_networks=EXTRA)


def test_aws_s_networks_keep_aws_s_rules_whatever_is_configured():
    with pytest.raises(
        ValueError,
        match=r"image_shape='128' is invalid for base_network=resnet-50: it must be an integer >= 300, as on "
        r"AWS; smaller shapes, from 64, are for the extra networks cpu-net, edge-net only",
    ):
        training(hyperparameters={"image_shape": 128}, extra_base_networks=EXTRA)
    with pytest.raises(ValueError, match=r"image_shape='299' is invalid: it must be an integer >= 300$"):
        training(hyperparameters={"base_network": "", "image_shape": 299})
    assert training(extra_base_networks=EXTRA)["HyperParameters"] == training()["HyperParameters"]
    assert training(hyperparameters={"base_network": ""})["HyperParameters"]["image_shape"] == "300"


@pytest.mark.parametrize(
    ("names", "min_image_shape", "message"),
    [
        ("vgg-16, cpu-net", "64", r"extra_base_networks .* names vgg-16, one of AWS's networks"),
        ("cpu-net", "0", r"extra_base_networks_min_image_shape .* must be an integer at least 1, got 0"),
        ("cpu-net", "big", r"extra_base_networks_min_image_shape .* must be a positive integer, got 'big'"),
    ],
)
def test_a_bad_extension_is_refused_naming_its_option(names, min_image_shape, message):
    with pytest.raises(ValueError, match=message):
        ExtraBaseNetworks.from_options(names, min_image_shape)


def test_the_extension_is_read_from_the_dag_s_configuration(monkeypatch):
    networks, min_shape = (
        "AIRFLOW__GROUND_TRUTH_OBJECT_DETECTION__EXTRA_BASE_NETWORKS",
        "AIRFLOW__GROUND_TRUTH_OBJECT_DETECTION__EXTRA_BASE_NETWORKS_MIN_IMAGE_SHAPE",
    )
    monkeypatch.delenv(networks, raising=False)
    monkeypatch.delenv(min_shape, raising=False)
    assert train_step.configured_extra_base_networks() == ExtraBaseNetworks((), AWS_MIN_IMAGE_SHAPE)
    monkeypatch.setenv(networks, " cpu-net, edge-net ,")
    monkeypatch.setenv(min_shape, "64")
    assert train_step.configured_extra_base_networks() == EXTRA
