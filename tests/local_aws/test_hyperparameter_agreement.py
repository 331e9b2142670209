"""The DAG's rules for the object-detection hyperparameters and the stack's, held against each other.

The product (``ground_truth_pipeline.sagemaker_requests``) holds AWS's documented rules, extended only by the
base networks its configuration admits; the stack (``local_aws.object_detection.hyperparameters``) holds the
rules of the algorithm it implements, and ``python -m local_aws env`` gives the DAG that configuration. Every
request the product builds with it must be one the stack accepts, what the product refuses at a boundary the
stack refuses too, and the stack's log lines must be the ones the product reads its training curves from.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ground_truth_pipeline.sagemaker_requests import (
    AWS_BASE_NETWORKS,
    AWS_MIN_IMAGE_SHAPE,
    OBJECT_DETECTION_HYPERPARAMETERS,
    ExtraBaseNetworks,
    object_detection_hyperparameters,
)
from ground_truth_pipeline.steps.train_step import configured_extra_base_networks
from ground_truth_pipeline.training_curves import parse_num_training_samples, parse_validation_map
from local_aws.config import LocalAwsConfig
from local_aws.environment import (
    DAG_EXTRA_BASE_NETWORKS_MIN_IMAGE_SHAPE_VARIABLE,
    DAG_EXTRA_BASE_NETWORKS_VARIABLE,
    stack_variables,
)
from local_aws.object_detection import ClientInputError
from local_aws.object_detection import hyperparameters as stack
from local_aws.object_detection.job import AlgorithmLog, final_configuration_line, validation_map_line

# Valid values by AWS's documentation, at and near the boundaries of each range; base_network and image_shape
# are sampled per network, num_classes and num_training_samples are the builder's arguments.
VALID_SAMPLES = {
    "early_stopping": ("True", "False"),
    "early_stopping_min_epochs": ("1", "50"),
    "early_stopping_patience": ("1", "5"),
    "early_stopping_tolerance": ("0", "0.0", "0.5", "1", "1.0"),
    "epochs": ("1", "+3", "30"),
    "freeze_layer_pattern": ("^(conv1_|conv2_).*", ".*"),
    "kv_store": ("dist_sync", "dist_async"),
    "label_width": ("1", "7", "350"),
    "learning_rate": ("1e-9", "0.001", "1"),
    "lr_scheduler_factor": ("1e-9", "0.1", "0.999999"),
    "lr_scheduler_step": ("1", "10,20", "20, 10"),
    "mini_batch_size": ("1", "32"),
    "momentum": ("1e-9", "0.9", "1"),
    "nms_threshold": ("1e-9", "0.45", "1"),
    "optimizer": ("sgd", "adam", "rmsprop", "adadelta"),
    "overlap_threshold": ("1e-9", "0.5", "1"),
    "use_pretrained_model": ("0", "1"),
    "weight_decay": ("1e-9", "0.0005", "0.999999"),
}
COUNTS = ((1, 1), (10, 100_000))  # (num_classes, num_training_samples)
NETWORKS = (*AWS_BASE_NETWORKS, *stack.LOCAL_BASE_NETWORKS)


@pytest.fixture
def stack_extension(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> ExtraBaseNetworks:
    """The extension the train step reads from the DAG's configuration, as ``local_aws env`` sets it."""
    for name, value in stack_variables(LocalAwsConfig(data_dir=tmp_path)).items():
        monkeypatch.setenv(name, value)
    return configured_extra_base_networks()


def min_image_shape(network: str, extension: ExtraBaseNetworks) -> int:
    return extension.min_image_shape if network in extension.names else AWS_MIN_IMAGE_SHAPE


def test_env_tells_the_dag_the_networks_and_minimum_shape_of_the_stack_s_algorithm(
    stack_extension: ExtraBaseNetworks, tmp_path: Path
) -> None:
    variables = stack_variables(LocalAwsConfig(data_dir=tmp_path))
    assert variables[DAG_EXTRA_BASE_NETWORKS_VARIABLE].split(",") == list(stack.LOCAL_BASE_NETWORKS)
    assert variables[DAG_EXTRA_BASE_NETWORKS_MIN_IMAGE_SHAPE_VARIABLE] == str(stack.LOCAL_MIN_IMAGE_SHAPE)
    assert stack_extension == ExtraBaseNetworks(stack.LOCAL_BASE_NETWORKS, stack.LOCAL_MIN_IMAGE_SHAPE)
    # Each side's copy of AWS's documented rules, and the networks the stack trains: AWS's and the extension.
    assert (stack.AWS_BASE_NETWORKS, stack.AWS_MIN_IMAGE_SHAPE) == (AWS_BASE_NETWORKS, AWS_MIN_IMAGE_SHAPE)
    assert set(stack.BASE_NETWORKS) == {*AWS_BASE_NETWORKS, *stack_extension.names}


def test_every_hyperparameter_is_sampled() -> None:
    sampled = {*VALID_SAMPLES, "base_network", "image_shape", "num_classes", "num_training_samples"}
    assert sampled == set(OBJECT_DETECTION_HYPERPARAMETERS)
    # AWS documents the same hyperparameters on both sides.
    assert set(OBJECT_DETECTION_HYPERPARAMETERS) == set(stack.RULES)


@pytest.mark.parametrize("network", NETWORKS)
def test_every_request_the_product_builds_on_the_stack_is_one_the_stack_accepts(
    stack_extension: ExtraBaseNetworks, network: str
) -> None:
    smallest = min_image_shape(network, stack_extension)
    for num_classes, num_training_samples in COUNTS:
        for image_shape in (smallest, smallest + 1, 512):
            base = {"base_network": network, "image_shape": image_shape}
            requests = [base] + [
                {**base, name: value} for name, values in VALID_SAMPLES.items() for value in values
            ]
            for overrides in requests:
                request = object_detection_hyperparameters(
                    num_training_samples=num_training_samples,
                    num_classes=num_classes,
                    overrides=overrides,
                    extra_base_networks=stack_extension,
                )
                parsed = stack.parse_hyperparameters(request)
                assert {name: parsed.final_configuration[name] for name in request} == request


@pytest.mark.parametrize("network", NETWORKS)
def test_what_the_product_refuses_at_a_boundary_the_stack_refuses(
    stack_extension: ExtraBaseNetworks, network: str
) -> None:
    too_small = {"base_network": network, "image_shape": str(min_image_shape(network, stack_extension) - 1)}
    with pytest.raises(ValueError, match=r"image_shape=.* is invalid for base_network="):
        object_detection_hyperparameters(
            num_training_samples=10, num_classes=1, overrides=too_small, extra_base_networks=stack_extension
        )
    with pytest.raises(ClientInputError, match=r"image_shape=\d+ is invalid for base_network="):
        stack.parse_hyperparameters({"num_classes": "1", "num_training_samples": "10", **too_small})


def test_a_network_neither_side_knows_is_refused_by_both(stack_extension: ExtraBaseNetworks) -> None:
    with pytest.raises(ValueError, match=r"base_network='alexnet' is invalid"):
        object_detection_hyperparameters(
            num_training_samples=10,
            num_classes=1,
            overrides={"base_network": "alexnet"},
            extra_base_networks=stack_extension,
        )
    with pytest.raises(ClientInputError, match=r"base_network='alexnet' is invalid"):
        stack.parse_hyperparameters(
            {"num_classes": "1", "num_training_samples": "10", "base_network": "alexnet"}
        )


@pytest.mark.parametrize("network", NETWORKS)
def test_the_product_reads_the_log_lines_the_stack_writes(network: str) -> None:
    lines: list[str] = []
    write = AlgorithmLog(lines.append)
    parsed = stack.parse_hyperparameters(
        {"num_classes": "2", "num_training_samples": "40", "base_network": network}
    )
    write(final_configuration_line(parsed.final_configuration))
    values = (0.0, 1 / 3, 1e-5, 0.5, 1.0)
    for epoch, value in enumerate(values):
        write(validation_map_line(epoch, value))

    assert parse_num_training_samples(lines[0]) == 40
    assert [parse_validation_map(line) for line in lines[1:]] == list(values)
    assert all(parse_validation_map(line) is None for line in lines[:1])
