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

The default boxes are tiled from each feature map's own size (no fixed steps), so every ``image_shape`` the
network accepts gets evenly spread anchors. ``use_pretrained_model`` means ImageNet weights for the base
network, as on AWS; they are read only from torchvision's local cache (``<torch hub dir>/checkpoints``) and
never downloaded.
"""

from __future__ import annotations

from collections import OrderedDict
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

from local_aws.object_detection.hyperparameters import CPU_BASE_NETWORK, MOBILENET_BASE_NETWORK

SCORE_THRESHOLD = 0.01  # detections below this score are dropped before NMS
TOP_K_BEFORE_NMS = 400  # AWS's nms_topk
DETECTIONS_PER_IMAGE = 200

_PRETRAINED: dict[str, tuple[Any, ...]] = {
    "vgg-16": (VGG16_Weights.IMAGENET1K_FEATURES,),
    "resnet-50": (ResNet50_Weights.IMAGENET1K_V1, ResNet50_Weights.IMAGENET1K_V2),
    MOBILENET_BASE_NETWORK: (MobileNet_V3_Large_Weights.IMAGENET1K_V1,),
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
        raise RuntimeError(f"the cached pretrained weights {path} cannot be read: {error}") from error


def build_detector(spec: ModelSpec, backbone_weights: dict[str, Tensor] | None = None) -> SSD:
    """The detector of ``spec``; ``backbone_weights`` are the base network's ImageNet weights, if any."""
    if backbone_weights is not None and not spec.pretrained_backbone:
        raise ValueError("backbone weights given for a spec without a pretrained backbone")
    builders = {
        "vgg-16": _vgg16_ssd,
        "resnet-50": _resnet50_ssd,
        CPU_BASE_NETWORK: _tiny_vgg_ssd,
        MOBILENET_BASE_NETWORK: _mobilenet_v3_ssdlite,
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
