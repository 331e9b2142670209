"""The built-in object-detection algorithm run locally: hyperparameters, channels, a tiny CPU training job,
its log lines and artifact, serving, stopping, pretrained weights and the validation mAP."""

from __future__ import annotations

import io
import itertools
import math
import re
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from ground_truth_pipeline.sagemaker_requests import object_detection_hyperparameters
from ground_truth_pipeline.training_curves import parse_num_training_samples, parse_validation_map
from local_aws.object_detection import (
    METRIC_NAME,
    ClientInputError,
    InvalidImageError,
    InvalidModelArtifactError,
    Predictor,
    TrainingResult,
    UnsupportedContentTypeError,
    run_training,
)
from local_aws.object_detection.dataset import parse_manifest, read_channel
from local_aws.object_detection.evaluation import (
    Detections,
    ImageBoxes,
    average_precision,
    mean_average_precision,
)
from local_aws.object_detection.hyperparameters import (
    AWS_DEFAULTS,
    CPU_BASE_NETWORK,
    CPU_FRIENDLY_DEFAULTS,
    MOBILENET_DEFAULTS,
    RULES,
    parse_hyperparameters,
)
from local_aws.object_detection.models import ModelSpec, build_detector, pretrained_weight_files
from local_aws.object_detection.training import _EarlyStopping, freeze_layers, learning_rate_at
from local_aws.synthetic_open_images import MIDS, classes_under, iter_images

ATTRIBUTES = ["source-ref", "category"]
BIRDS = {MIDS[name] for name in classes_under("Bird")}
TINY_JOB = {
    "num_classes": "1",
    "num_training_samples": "30",
    "base_network": CPU_BASE_NETWORK,
    "image_shape": "128",
    "epochs": "2",
    "mini_batch_size": "8",
}


def manifest_line(
    uri: str, width: int, height: int, boxes: list[tuple[int, float, float, float, float]]
) -> dict:
    """A Ground Truth output-manifest line; boxes as (class_id, xmin, ymin, xmax, ymax) normalised."""
    annotations = [
        {
            "class_id": class_id,
            "left": round(xmin * width),
            "top": round(ymin * height),
            "width": max(1, round((xmax - xmin) * width)),
            "height": max(1, round((ymax - ymin) * height)),
        }
        for class_id, xmin, ymin, xmax, ymax in boxes
    ]
    return {
        "source-ref": uri,
        "category": {
            "image_size": [{"width": width, "height": height, "depth": 3}],
            "annotations": annotations,
        },
        "category-metadata": {"class-map": {"0": "Bird"}, "type": "groundtruth/object-detection"},
    }


class Dataset:
    """Synthetic Open Images with one to three birds each, as manifest lines and an S3 stand-in."""

    def __init__(self, count: int, seed: int) -> None:
        self.images: dict[str, bytes] = {}
        self.lines: list[dict] = []
        for image in iter_images(50 * count, seed=seed):
            birds = [a for a in image.annotations if a.label in BIRDS]
            if not 1 <= len(birds) <= 3:
                continue
            uri = f"s3://bucket/images/{image.image_id}.jpg"
            self.images[uri] = image.jpeg
            boxes = [(0, a.xmin, a.ymin, a.xmax, a.ymax) for a in birds]
            self.lines.append(manifest_line(uri, image.width, image.height, boxes))
            if len(self.lines) == count:
                return
        raise AssertionError(f"fewer than {count} images with one to three birds")

    def read(self, uri: str) -> bytes:
        return self.images[uri]


class Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, line: str) -> None:
        self.lines.append(line)

    def having(self, text: str) -> list[str]:
        return [line for line in self.lines if text in line]


def never() -> bool:
    return False


@pytest.fixture(scope="module")
def data() -> tuple[Dataset, Dataset]:
    return Dataset(30, seed=11), Dataset(10, seed=12)


@pytest.fixture(autouse=True)
def empty_torch_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """torchvision's weight cache, empty unless a test puts weights there."""
    home = tmp_path_factory.mktemp("torch-home")
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home / "hub" / "checkpoints"


def train(
    data: tuple[Dataset, Dataset],
    output_dir: Path,
    log: Log | None = None,
    should_stop: Callable[[], bool] = never,
    **overrides: str,
) -> TrainingResult:
    train_set, validation_set = data
    images = {**train_set.images, **validation_set.images}
    return run_training(
        {**TINY_JOB, **overrides},
        train_set.lines,
        validation_set.lines,
        ATTRIBUTES,
        images.__getitem__,
        log or Log(),
        should_stop,
        output_dir,
    )


@pytest.fixture(scope="module")
def trained(
    data: tuple[Dataset, Dataset], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TrainingResult, Log]]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("no-weights")))
        log = Log()
        yield train(data, tmp_path_factory.mktemp("job") / "output", log), log


# Hyperparameters.


def test_unknown_hyperparameter_is_named() -> None:
    with pytest.raises(ClientInputError, match=r"unknown hyperparameter 'epoch'.*takes num_classes"):
        parse_hyperparameters({**TINY_JOB, "epoch": "3"})


def test_required_hyperparameters_are_named() -> None:
    job = {name: value for name, value in TINY_JOB.items() if name != "num_classes"}
    with pytest.raises(ClientInputError, match="missing required hyperparameter num_classes"):
        parse_hyperparameters(job)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("base_network", "alexnet"),
        ("learning_rate", "0"),
        ("learning_rate", "1.5"),
        ("optimizer", "nadam"),
        ("epochs", "0"),
        ("epochs", "2.5"),
        ("mini_batch_size", "-4"),
        ("use_pretrained_model", "yes"),
        ("early_stopping", "maybe"),
        ("early_stopping_tolerance", "1.5"),
        ("lr_scheduler_step", "10,x"),
        ("lr_scheduler_factor", "1"),
        ("weight_decay", "0"),
        ("momentum", "nan"),
        ("nms_threshold", "1.01"),
        ("freeze_layer_pattern", "("),
        ("kv_store", "local"),
        ("label_width", "0"),
    ],
)
def test_invalid_values_are_rejected_naming_the_hyperparameter(name: str, value: str) -> None:
    with pytest.raises(
        ClientInputError, match=rf"hyperparameter {name}={re.escape(repr(value))} is invalid: "
    ):
        parse_hyperparameters({**TINY_JOB, name: value})


def test_values_must_be_strings_as_create_training_job_sends_them() -> None:
    with pytest.raises(ClientInputError, match="epochs must be given as a string"):
        parse_hyperparameters({**TINY_JOB, "epochs": 2})  # type: ignore[dict-item]


def test_small_image_shapes_are_a_local_extension_of_the_cpu_network_only() -> None:
    assert parse_hyperparameters({**TINY_JOB, "image_shape": "64"}).image_shape == 64
    with pytest.raises(ClientInputError, match=r"image_shape=63 is invalid .* >= 64"):
        parse_hyperparameters({**TINY_JOB, "image_shape": "63"})
    for network in ("vgg-16", "resnet-50"):
        with pytest.raises(
            ClientInputError, match=rf"image_shape=299 .*{network}.* >= 300; .*local extension"
        ):
            parse_hyperparameters({**TINY_JOB, "base_network": network, "image_shape": "299"})
        assert (
            parse_hyperparameters({**TINY_JOB, "base_network": network, "image_shape": "300"}).image_shape
            == 300
        )


def test_defaults_are_aws_s_and_the_cpu_network_has_its_own() -> None:
    required = {"num_classes": "2", "num_training_samples": "100"}
    aws = parse_hyperparameters(required)
    assert (aws.base_network, aws.mini_batch_size, aws.epochs, aws.image_shape) == ("vgg-16", 32, 30, 300)
    assert aws.use_pretrained_model and aws.optimizer == "sgd" and aws.lr_scheduler_step == ()
    assert aws.max_boxes_per_image == 69  # label_width 350: 2 header values and 5 per box
    assert dict(aws.final_configuration) == {**AWS_DEFAULTS, **required}
    cpu = parse_hyperparameters({**required, "base_network": "tiny-vgg"})
    assert cpu.image_shape == int(CPU_FRIENDLY_DEFAULTS["image_shape"])
    assert cpu.final_configuration["epochs"] == CPU_FRIENDLY_DEFAULTS["epochs"]
    assert not cpu.use_pretrained_model and cpu.lr_scheduler_step == ()
    assert set(cpu.final_configuration) == set(RULES)
    mobilenet = parse_hyperparameters({**required, "base_network": "mobilenet-v3", "epochs": "20"})
    assert mobilenet.mini_batch_size == int(MOBILENET_DEFAULTS["mini_batch_size"])
    assert mobilenet.use_pretrained_model and mobilenet.lr_scheduler_step == (15, 18)


def test_the_cpu_network_has_no_pretrained_weights_and_says_so(
    data: tuple[Dataset, Dataset], tmp_path: Path
) -> None:
    log = Log()
    should_stop = iter([False] * 4 + [True] * 10).__next__
    train(data, tmp_path, log, should_stop=should_stop, use_pretrained_model="1")
    (line,) = log.having("use_pretrained_model=1")
    assert " WARNING " in line and line.endswith(
        "tiny-vgg is a local network without pretrained weights: training from scratch"
    )


def test_the_pipeline_s_hyperparameters_are_accepted() -> None:
    """The DAG's request builder and the algorithm agree, the notebook's empty lr_scheduler_step included."""
    request = object_detection_hyperparameters(num_training_samples=800, num_classes=1)
    parsed = parse_hyperparameters({**request, "lr_scheduler_step": ""})
    assert (parsed.base_network, parsed.num_training_samples, parsed.lr_scheduler_step) == (
        "resnet-50",
        800,
        (),
    )
    assert parse_hyperparameters({**request, "lr_scheduler_step": "20, 10"}).lr_scheduler_step == (10, 20)


def test_learning_rate_steps_count_epochs_of_num_training_samples() -> None:
    hp = parse_hyperparameters(
        {
            **TINY_JOB,
            "base_network": "mobilenet-v3",
            "num_training_samples": "10",
            "mini_batch_size": "5",
            "lr_scheduler_step": "2,4",
            "learning_rate": "0.1",
            "lr_scheduler_factor": "0.5",
        }
    )
    assert [learning_rate_at(i, hp) for i in (0, 3, 4, 7, 8, 100)] == [0.1, 0.1, 0.05, 0.05, 0.025, 0.025]


def test_the_cpu_network_warms_up_then_follows_a_cosine_or_the_steps() -> None:
    job = {**TINY_JOB, "num_training_samples": "100", "mini_batch_size": "10", "epochs": "4"}
    hp = parse_hyperparameters({**job, "learning_rate": "0.01"})  # 40 iterations, 6 of warm-up
    rates = [learning_rate_at(i, hp) for i in range(40)]
    assert rates[0] == pytest.approx(0.01 / 25)
    assert all(a < b for a, b in itertools.pairwise(rates[:7]))
    assert rates[6] == pytest.approx(0.01)
    assert all(a > b for a, b in itertools.pairwise(rates[6:]))
    assert rates[23] == pytest.approx(0.005, rel=0.1) and rates[39] == pytest.approx(0.0, abs=1e-12)
    stepped = parse_hyperparameters({**job, "learning_rate": "0.01", "lr_scheduler_step": "2"})
    rates = [learning_rate_at(i, stepped) for i in (6, 19, 20, 39)]
    assert rates == pytest.approx([0.01, 0.01, 0.001, 0.001])


def test_early_stopping_waits_for_min_epochs_and_patience() -> None:
    hp = parse_hyperparameters(
        {
            **TINY_JOB,
            "early_stopping": "True",
            "early_stopping_min_epochs": "4",
            "early_stopping_patience": "2",
            "early_stopping_tolerance": "0.1",
        }
    )
    stopping = _EarlyStopping(hp)
    # 0.5 -> 0.52 is a relative gain of 4%, under the tolerance: no improvement.
    decisions = [
        stopping.should_stop(epoch, value) for epoch, value in enumerate([0.0, 0.5, 0.52, 0.53, 0.54])
    ]
    assert decisions == [False, False, False, True, True]
    off = _EarlyStopping(parse_hyperparameters(TINY_JOB))
    assert not any(off.should_stop(epoch, 0.0) for epoch in range(20))


def test_freeze_layer_pattern_freezes_matching_parameters() -> None:
    model = build_detector(ModelSpec("mobilenet-v3", 1, 64, 0.45, pretrained_backbone=False))
    hp = parse_hyperparameters({**TINY_JOB, "freeze_layer_pattern": r"backbone\.features\."})
    frozen, total = freeze_layers(model, hp)
    assert 0 < frozen < total
    assert all(not p.requires_grad for n, p in model.named_parameters() if n.startswith("backbone.features."))
    assert all(p.requires_grad for n, p in model.named_parameters() if n.startswith("head."))
    with pytest.raises(ClientInputError, match=r"freeze_layer_pattern='.*' freezes every layer"):
        freeze_layers(model, parse_hyperparameters({**TINY_JOB, "freeze_layer_pattern": ".*"}))


# Channels.


def test_attribute_names_must_list_the_image_first(data: tuple[Dataset, Dataset]) -> None:
    lines = data[0].lines
    for names in (["category", "source-ref"], ["source-ref"], ["source-ref", "category", "extra"]):
        with pytest.raises(ClientInputError, match=r"AttributeNames .* image reference first"):
            read_channel(lines, names, "train")
    images = read_channel(lines, ATTRIBUTES, "train")
    assert len(images) == 30 and all(1 <= len(image.class_ids) <= 3 for image in images)
    boxes = np.concatenate([image.boxes for image in images])
    assert boxes.min() >= 0 and boxes.max() <= 1 and np.all(boxes[:, 2:] > boxes[:, :2])


def test_a_line_without_the_label_attribute_is_named() -> None:
    lines = [manifest_line("s3://b/a.jpg", 10, 10, [(0, 0.1, 0.1, 0.5, 0.5)]), {"source-ref": "s3://b/b.jpg"}]
    with pytest.raises(
        ClientInputError, match=r"train channel, line 2: attribute 'category' of AttributeNames"
    ):
        read_channel(lines, ATTRIBUTES, "train")


def test_a_box_outside_the_image_is_rejected() -> None:
    line = manifest_line("s3://b/a.jpg", 100, 100, [(0, 0.1, 0.1, 0.5, 0.5)])
    line["category"]["annotations"][0].update(left=150, width=20)
    with pytest.raises(
        ClientInputError, match=r"line 1, attribute 'category': annotation 0 is no box inside"
    ):
        read_channel([line], ATTRIBUTES, "validation")


def test_manifest_text_skips_blank_lines_and_names_bad_ones() -> None:
    assert parse_manifest('{"a": 1}\n\n{"a": 2}\n', "train") == [{"a": 1}, {"a": 2}]
    with pytest.raises(ClientInputError, match="train channel, line 2: not JSON"):
        parse_manifest('{"a": 1}\n{"a": \n', "train")


def test_class_ids_must_be_below_num_classes(data: tuple[Dataset, Dataset], tmp_path: Path) -> None:
    train_set, validation_set = data
    lines = [
        *train_set.lines[:-1],
        manifest_line(train_set.lines[-1]["source-ref"], 100, 100, [(1, 0, 0, 1, 1)]),
    ]
    with pytest.raises(
        ClientInputError, match=r"train channel, line 30 .*class_id 1 is outside num_classes=1"
    ):
        run_training(
            TINY_JOB, lines, validation_set.lines, ATTRIBUTES, train_set.read, Log(), never, tmp_path
        )


def test_label_width_too_small_for_the_data_is_named(data: tuple[Dataset, Dataset], tmp_path: Path) -> None:
    with pytest.raises(ClientInputError, match=r"label_width=12 is too small .* has 3 boxes, .* at least 17"):
        train(data, tmp_path, label_width="12")


def test_an_image_that_does_not_decode_fails_the_job_naming_it(
    data: tuple[Dataset, Dataset], tmp_path: Path
) -> None:
    train_set, validation_set = data
    broken = train_set.lines[3]["source-ref"]

    def read(uri: str) -> bytes:
        return (
            b"<html>not found</html>" if uri == broken else {**train_set.images, **validation_set.images}[uri]
        )

    with pytest.raises(
        ClientInputError, match=rf"train channel, line 4 \({re.escape(broken)}\): not an image"
    ) as info:
        run_training(
            TINY_JOB, train_set.lines, validation_set.lines, ATTRIBUTES, read, Log(), never, tmp_path
        )
    assert info.value.failure_reason.startswith("ClientError: ")


# Training.


def test_training_writes_the_artifact_and_aws_s_log_lines(trained: tuple[TrainingResult, Log]) -> None:
    result, log = trained
    assert result.model_tar_path is not None and result.model_tar_path.name == "model.tar.gz"
    assert result.model_tar_path.is_file()
    assert (result.epochs_run, result.num_training_samples, result.stopped) == (2, 30, False)
    (final,) = log.having("Final configuration: ")
    assert "u'num_training_samples': u'30'" in final
    assert parse_num_training_samples(final) == 30
    # The reference notebook's own parsing.
    assert int(final.split("num_training_samples': u'")[1].split("'")[0]) == 30
    lines = log.having("validation mAP <score>=(")
    assert [re.search(r"host=algo-1, epoch=(\d+), validation mAP", line)[1] for line in lines] == ["0", "1"]
    values = [parse_validation_map(line) for line in lines]
    assert values == [float(line.split("validation mAP <score>=(")[1][:-1]) for line in lines]
    assert values == list(result.validation_map)
    assert all(0.0 <= value <= 1.0 for value in values)
    assert result.final_metrics == {METRIC_NAME: values[-1]}
    assert result.best_validation_map == max(values)
    assert all(
        re.match(r"\[\d\d/\d\d/\d{4} \d\d:\d\d:\d\d (INFO|WARNING) \d+\] ", line) for line in log.lines
    )


def test_pretrained_weights_missing_from_the_cache_are_said_plainly(
    trained: tuple[TrainingResult, Log], data: tuple[Dataset, Dataset], tmp_path: Path
) -> None:
    assert trained[1].having("use_pretrained_model=0: training base network tiny-vgg from scratch")
    log = Log()
    train(data, tmp_path, log, base_network="mobilenet-v3", image_shape="64", epochs="1")
    (line,) = log.having("use_pretrained_model=1")
    assert "not in the local cache" in line and line.endswith("training from scratch")
    assert pretrained_weight_files("mobilenet-v3")[0] in line


def test_pretrained_weights_in_the_cache_are_used(
    data: tuple[Dataset, Dataset], tmp_path: Path, empty_torch_cache: Path
) -> None:
    empty_torch_cache.mkdir(parents=True)
    weights = empty_torch_cache / pretrained_weight_files("mobilenet-v3")[0]
    torch.manual_seed(1)
    torch.save(torchvision.models.mobilenet_v3_large().state_dict(), weights)
    log = Log()
    mobilenet = {"base_network": "mobilenet-v3", "epochs": "1"}
    result = train(data, tmp_path, log, **mobilenet, use_pretrained_model="1")
    (line,) = log.having("use_pretrained_model=1")
    assert line.endswith(f"base network mobilenet-v3 starts from {weights}")
    predictor = Predictor.from_artifact(result.model_tar_path)
    assert predictor.spec.pretrained_backbone  # the full tail, as ImageNet weights need
    no_weights = Log()
    train(data, tmp_path / "scratch", no_weights, **mobilenet, use_pretrained_model="0")
    assert no_weights.having("use_pretrained_model=0: training base network mobilenet-v3 from scratch")


def test_num_training_samples_that_differs_from_the_data_is_warned(
    data: tuple[Dataset, Dataset], tmp_path: Path
) -> None:
    log = Log()
    should_stop = iter([False] * 4 + [True] * 10).__next__
    train(data, tmp_path, log, should_stop=should_stop, num_training_samples="31")
    (warning,) = log.having("num_training_samples=31 but the train channel has 30 records")
    assert " WARNING " in warning


def test_should_stop_ends_training_keeping_the_best_epoch(
    data: tuple[Dataset, Dataset], tmp_path: Path
) -> None:
    calls = 0

    def should_stop() -> bool:
        nonlocal calls
        calls += 1
        return calls > 5  # 4 batches of 8 in epoch 0, then one of epoch 1

    log = Log()
    result = train(data, tmp_path, log, should_stop=should_stop, epochs="5")
    assert (result.stopped, result.epochs_run) == (True, 1)
    assert result.model_tar_path is not None and result.model_tar_path.is_file()
    assert log.having("Training stopped on request after 1 of 5 epochs")
    at_once = train(data, tmp_path / "at-once", should_stop=lambda: True)
    assert (at_once.stopped, at_once.epochs_run, at_once.model_tar_path, at_once.final_metrics) == (
        True,
        0,
        None,
        {},
    )


# Serving.


def test_the_artifact_round_trips_and_predicts_aws_s_json(
    trained: tuple[TrainingResult, Log], data: tuple[Dataset, Dataset]
) -> None:
    path = trained[0].model_tar_path
    assert path is not None
    with tarfile.open(path) as archive:
        assert sorted(archive.getnames()) == ["hyperparams.json", "model_algo-1-spec.json", "model_algo-1.pt"]
    predictor = Predictor.from_artifact(path.read_bytes())
    assert predictor.spec == ModelSpec("tiny-vgg", 1, 128, 0.45, pretrained_backbone=False)
    jpeg = data[1].images[data[1].lines[0]["source-ref"]]
    png = io.BytesIO()
    Image.open(io.BytesIO(jpeg)).convert("L").save(png, format="PNG")  # grayscale, another format
    for body, content_type in (
        (jpeg, "image/jpeg"),
        (png.getvalue(), "image/png"),
        (jpeg, "application/x-image"),
    ):
        response = predictor.predict(body, content_type)
        assert list(response) == ["prediction"]
        predictions = response["prediction"]
        assert predictions, "a freshly trained model still scores some boxes above 0.01"
        for class_id, score, xmin, ymin, xmax, ymax in predictions:
            assert class_id == 0.0 and isinstance(class_id, float)
            assert 0.0 < score <= 1.0
            assert 0.0 <= xmin <= xmax <= 1.0 and 0.0 <= ymin <= ymax <= 1.0
        scores = [p[1] for p in predictions]
        assert scores == sorted(scores, reverse=True)
    again = Predictor.from_artifact(path).predict(jpeg)
    assert again == predictor.predict(jpeg)


def test_an_undecodable_image_or_content_type_is_a_clear_error(trained: tuple[TrainingResult, Log]) -> None:
    predictor = Predictor.from_artifact(trained[0].model_tar_path)
    with pytest.raises(InvalidImageError, match="not an image that can be decoded"):
        predictor.predict(b"\xff\xd8\xff\xe0 truncated jpeg", "image/jpeg")
    with pytest.raises(UnsupportedContentTypeError, match=r"'text/csv' is not supported.*image/jpeg"):
        predictor.predict(b"1,2,3", "text/csv")


def test_a_model_data_archive_that_is_not_ours_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidModelArtifactError, match=r"not a readable tar\.gz"):
        Predictor.from_artifact(b"not a tarball")
    mxnet = io.BytesIO()
    with tarfile.open(fileobj=mxnet, mode="w:gz") as archive:
        for name in ("model_algo_1-symbol.json", "model_algo_1-0000.params"):
            info = tarfile.TarInfo(name)
            archive.addfile(info, io.BytesIO())
    with pytest.raises(InvalidModelArtifactError, match="an MXNet model of AWS's algorithm"):
        Predictor.from_artifact(mxnet.getvalue())


@pytest.mark.parametrize("network", ["vgg-16", "resnet-50"])
def test_aws_base_networks_build_and_detect_at_300(network: str) -> None:
    model = build_detector(ModelSpec(network, 2, 300, 0.45, pretrained_backbone=False)).eval()
    with torch.inference_mode():
        (detections,) = model([torch.rand(3, 300, 300)])
    assert detections["boxes"].shape[1] == 4
    assert set(detections["labels"].tolist()) <= {1, 2}


# Validation mAP.


def boxes(*rows: tuple[float, float, float, float]) -> np.ndarray:
    return np.asarray(rows, np.float64).reshape(-1, 4)


def test_map_is_one_for_exact_detections_and_zero_for_none() -> None:
    truth = [ImageBoxes(boxes((0, 0, 1, 1), (2, 2, 3, 3)), np.array([0, 1]))]
    exact = [Detections(truth[0].boxes, truth[0].class_ids, np.array([0.9, 0.8]))]
    assert mean_average_precision(exact, truth, 0.5) == 1.0
    nothing = [Detections(boxes(), np.array([], int), np.array([]))]
    assert mean_average_precision(nothing, truth, 0.5) == 0.0
    assert mean_average_precision(nothing, [ImageBoxes(boxes(), np.array([], int))], 0.5) == 0.0


def test_map_counts_duplicates_as_false_positives_and_honours_the_threshold() -> None:
    truth = [
        ImageBoxes(boxes((0, 0, 10, 10)), np.array([0])),
        ImageBoxes(boxes((0, 0, 10, 10)), np.array([0])),
    ]
    detections = [
        Detections(boxes((0, 0, 10, 10), (0, 0, 10, 9)), np.array([0, 0]), np.array([0.9, 0.95])),
        Detections(boxes((0, 0, 10, 6)), np.array([0]), np.array([0.5])),  # IoU 0.6
    ]
    # Ranked: TP (0.95), FP duplicate (0.9), TP (0.5): precision 1 up to recall 0.5, then 2/3 at recall 1.
    assert math.isclose(mean_average_precision(detections, truth, 0.5), 0.5 * 1 + 0.5 * 2 / 3)
    assert math.isclose(mean_average_precision(detections, truth, 0.7), 0.5)
    assert average_precision(np.array([0.0, 1.0]), np.array([0.9, 0.1]), 1) == 0.5
