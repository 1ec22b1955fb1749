"""HRNetV2 and HRNet-OCR on timm's HRNet backbones (smp has neither).

HRNet keeps a stride-4 branch alive through the whole network next to strides 8, 16 and 32. HRNetV2 (Wang et
al., "Deep High-Resolution Representation Learning", 2019) upsamples the four branch outputs to stride 4,
concatenates them and classifies every pixel with a 1x1 conv-BN-ReLU and a 1x1 conv. OCR (Yuan et al.,
"Object-Contextual Representations for Semantic Segmentation", 2020) adds on that concatenation:

1. an auxiliary head (same as HRNetV2's) whose class maps are the *soft object regions*, trained with the
   auxiliary loss;
2. one feature vector per class: the pixel features averaged with the spatial softmax of its region map;
3. the *pixel-region relation*: each pixel's attention over those K region vectors;
4. the *object context*: the region vectors mixed by that relation, concatenated with the pixel features
   and fused, then classified.

Under mixed precision the two softmaxes and the matmuls around them run in float32 (autocast off): a spatial
softmax over every pixel of a map gives weights near 1/HW, which fp16 (smallest normal 2^-14) resolves badly.
"""

from __future__ import annotations

import timm
import torch
import torch.nn.functional as F
from torch import nn

from segkit.errors import SegkitError
from segkit.models.smp_models import PaddedSegmenter
from segkit.registry import MODELS

# timm HRNet children per stage, from the input: stem, the stride-4 bottleneck layer, then each stage with the
# transition that adds its new lower-resolution branch. ``freeze_encoder=N`` freezes the first N.
HRNET_STAGES = (("conv1", "bn1", "conv2", "bn2"), ("layer1",), ("transition1", "stage2"),
                ("transition2", "stage3"), ("transition3", "stage4"))


def hrnet_encoder(backbone: str, encoder_weights: str | None) -> nn.Module:
    """timm HRNet returning its four raw branch outputs (strides 4, 8, 16, 32), not the classification
    head's widened ``incre`` features that ``features_only`` gives by default."""
    names = timm.list_models("hrnet_*")
    if backbone not in names:
        raise SegkitError(f"model.backbone={backbone!r} is not a timm HRNet; use one of {', '.join(names)}")
    if encoder_weights not in (None, "imagenet"):
        raise SegkitError(f"model.encoder_weights={encoder_weights!r}: HRNet backbones take 'imagenet' or "
                          "None; load other weights with model.pretrained='path.pth'")
    try:
        return timm.create_model(backbone, pretrained=encoder_weights == "imagenet", features_only=True,
                                 feature_location="", out_indices=(1, 2, 3, 4))
    except OSError as err:  # hub and URL errors
        raise SegkitError(
            f"model.encoder_weights='imagenet': could not download weights for {backbone!r} "
            f"({type(err).__name__}); when offline set model.encoder_weights=None"
        ) from err


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int = 1) -> nn.Sequential:
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


def pixel_classifier(in_channels: int, num_classes: int) -> nn.Sequential:
    """HRNetV2's segmentation head, also OCR's auxiliary head: 1x1 conv-BN-ReLU, 1x1 conv to classes."""
    return nn.Sequential(conv_bn_relu(in_channels, in_channels), nn.Conv2d(in_channels, num_classes, 1))


def concat_branches(branches: list[torch.Tensor]) -> torch.Tensor:
    size = branches[0].shape[-2:]
    upsampled = [F.interpolate(b, size=size, mode="bilinear", align_corners=False) for b in branches[1:]]
    return torch.cat([branches[0], *upsampled], dim=1)


def full_precision(device: torch.device) -> torch.autocast:
    """Autocast off on ``device``: the enclosed ops run in the dtype of their (float32) inputs."""
    return torch.autocast(device.type, enabled=False)


def object_regions(pixels: torch.Tensor, region_logits: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) features, (B, K, H, W) class maps -> (B, C, K, 1): one feature vector per class, the
    pixel features weighted by that class's spatial softmax (float32, see the module docstring)."""
    with full_precision(pixels.device):
        weights = region_logits.float().flatten(2).softmax(dim=-1)  # (B, K, HW), each class map sums to 1
        regions = weights @ pixels.float().flatten(2).transpose(1, 2)  # (B, K, C)
    return regions.transpose(1, 2).unsqueeze(-1)


class ObjectContext(nn.Module):
    """Pixel-region relation (scaled dot-product of pixel queries and region keys, softmax over the regions)
    and the object context it mixes from the region values, projected back to the pixel channels."""

    def __init__(self, channels: int, key_channels: int) -> None:
        super().__init__()
        self.scale = key_channels**-0.5
        self.query = nn.Sequential(conv_bn_relu(channels, key_channels),
                                   conv_bn_relu(key_channels, key_channels))
        self.key = nn.Sequential(conv_bn_relu(channels, key_channels),
                                 conv_bn_relu(key_channels, key_channels))
        self.value = conv_bn_relu(channels, key_channels)
        self.project = conv_bn_relu(key_channels, channels)

    def forward(self, pixels: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = pixels.shape
        query = self.query(pixels).flatten(2).transpose(1, 2)  # (B, HW, key)
        key = self.key(regions).flatten(2)  # (B, key, K)
        value = self.value(regions).flatten(2).transpose(1, 2)  # (B, K, key)
        with full_precision(pixels.device):
            relation = (query.float() @ key.float() * self.scale).softmax(dim=-1)  # (B, HW, K)
            context = (relation @ value.float()).transpose(1, 2).reshape(batch, -1, height, width)
        return self.project(context)


class OCRHead(nn.Module):
    """Returns (logits, auxiliary logits), both at the stride of its input features."""

    def __init__(self, in_channels: int, num_classes: int, mid_channels: int, key_channels: int,
                 dropout: float) -> None:
        super().__init__()
        self.aux = pixel_classifier(in_channels, num_classes)
        self.reduce = conv_bn_relu(in_channels, mid_channels, kernel_size=3)
        self.context = ObjectContext(mid_channels, key_channels)
        self.fuse = nn.Sequential(conv_bn_relu(2 * mid_channels, mid_channels), nn.Dropout2d(dropout))
        self.classifier = nn.Conv2d(mid_channels, num_classes, 1)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        aux = self.aux(features)
        pixels = self.reduce(features)
        context = self.context(pixels, object_regions(pixels, aux))
        return self.classifier(self.fuse(torch.cat([context, pixels], dim=1))), aux


class HRNetSegNet(nn.Module):
    """HRNet encoder + a head on its concatenated branches, logits upsampled to the input size.

    With an ``OCRHead`` it returns ``{"out", "aux"}`` in training and only the logits in eval; the auxiliary
    head still runs in eval because its region maps feed the object context.
    """

    def __init__(self, encoder: nn.Module, head: nn.Module, aux_weight: float | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head
        if aux_weight is not None:
            self.aux_weight = float(aux_weight)

    def encoder_stages(self) -> list[list[nn.Parameter]]:
        return [[p for name in stage for p in self.encoder.get_submodule(name).parameters()]
                for stage in HRNET_STAGES]

    def forward(self, images: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        out = self.head(concat_branches(self.encoder(images)))
        size = images.shape[-2:]
        if isinstance(out, tuple):
            logits, aux = (F.interpolate(o, size=size, mode="bilinear", align_corners=False) for o in out)
            return {"out": logits, "aux": aux} if self.training else logits
        return F.interpolate(out, size=size, mode="bilinear", align_corners=False)


def _channels(encoder: nn.Module) -> int:
    return sum(encoder.feature_info.channels())


@MODELS.register()
def HRNetV2(num_classes: int, backbone: str = "hrnet_w48",
            encoder_weights: str | None = "imagenet") -> nn.Module:
    encoder = hrnet_encoder(backbone, encoder_weights)
    head = pixel_classifier(_channels(encoder), num_classes)
    return PaddedSegmenter(HRNetSegNet(encoder, head), multiple=32)


@MODELS.register()
def HRNetOCR(num_classes: int, backbone: str = "hrnet_w48", encoder_weights: str | None = "imagenet",
             ocr_mid_channels: int = 512, ocr_key_channels: int = 256, dropout: float = 0.05,
             aux_weight: float = 0.4) -> nn.Module:
    """HRNet-OCR; ``aux_weight`` scales the auxiliary (soft object region) loss, 0.4 as in the paper."""
    encoder = hrnet_encoder(backbone, encoder_weights)
    head = OCRHead(_channels(encoder), num_classes, ocr_mid_channels, ocr_key_channels, dropout)
    return PaddedSegmenter(HRNetSegNet(encoder, head, aux_weight=aux_weight), multiple=32)
