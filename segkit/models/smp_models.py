"""Registry entries over segmentation-models-pytorch: one config line swaps the architecture."""

from __future__ import annotations

from typing import Any

import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
from torch import nn

from segkit.errors import SegkitError
from segkit.registry import MODELS, check_kwargs


class PaddedSegmenter(nn.Module):
    """Wraps a network that needs sides divisible by its output stride.

    Inputs of any size are zero-padded (zero = the dataset mean after normalisation) at the bottom/right up
    to the next multiple and the logits are cropped back, so callers always get logits at input resolution.
    """

    def __init__(self, net: nn.Module, multiple: int) -> None:
        super().__init__()
        self.net = net
        self.multiple = multiple

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[-2:]
        pad_h, pad_w = -height % self.multiple, -width % self.multiple
        if pad_h or pad_w:
            images = F.pad(images, (0, pad_w, 0, pad_h))
        return self.net(images)[..., :height, :width]


def build_smp(arch: type[nn.Module], num_classes: int, encoder_name: str, encoder_weights: str | None,
              **kwargs: Any) -> PaddedSegmenter:
    """Build an smp architecture, turning a failed weight download into one actionable line.

    smp forwards unknown keywords to the encoder; only timm (``tu-``) encoders take extra ones, so for the
    others a misspelt key is reported instead of ignored.
    """
    check_kwargs(arch, kwargs, where=f"model ({arch.__name__})", strict=not encoder_name.startswith("tu-"))
    try:
        net = arch(encoder_name=encoder_name, encoder_weights=encoder_weights, classes=num_classes, **kwargs)
    except (KeyError, ValueError) as err:
        raise SegkitError(f"model: cannot build {arch.__name__} with encoder {encoder_name!r}: {err}") from err
    except OSError as err:  # URLError, HTTP and hub errors are OSErrors
        raise SegkitError(
            f"model.encoder_weights={encoder_weights!r}: could not download weights for {encoder_name!r} "
            f"({type(err).__name__}: {err}); when offline set model.encoder_weights=None"
        ) from err
    return PaddedSegmenter(net, multiple=net.encoder.output_stride)


@MODELS.register()
def Unet(num_classes: int, encoder_name: str = "resnet34", encoder_weights: str | None = "imagenet",
         **kwargs: Any) -> nn.Module:
    return build_smp(smp.Unet, num_classes, encoder_name, encoder_weights, **kwargs)


@MODELS.register()
def EfficientUnet(num_classes: int, encoder_name: str = "efficientnet-b4",
                  encoder_weights: str | None = "imagenet", **kwargs: Any) -> nn.Module:
    """Unet on an EfficientNet encoder: the trash competition's strongest simple baseline."""
    if not encoder_name.startswith(("efficientnet-", "timm-efficientnet-", "tu-efficientnet")):
        raise SegkitError(f"model.encoder_name={encoder_name!r}: EfficientUnet needs an EfficientNet "
                          "encoder such as 'efficientnet-b4'; use type='Unet' for other encoders")
    return build_smp(smp.Unet, num_classes, encoder_name, encoder_weights, **kwargs)


@MODELS.register()
def DeepLabV3Plus(num_classes: int, encoder_name: str = "resnet50", encoder_weights: str | None = "imagenet",
                  **kwargs: Any) -> nn.Module:
    return build_smp(smp.DeepLabV3Plus, num_classes, encoder_name, encoder_weights, **kwargs)
