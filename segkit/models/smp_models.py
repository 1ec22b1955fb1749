"""Registry entries over segmentation-models-pytorch: one config line swaps the architecture."""

from __future__ import annotations

from typing import Any

import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
from torch import nn

from segkit.errors import SegkitError
from segkit.registry import MODELS, check_kwargs

Output = torch.Tensor | dict[str, torch.Tensor]

# smp's EfficientNet encoders keep the ImageNet classifier's last conv + BN although no feature map uses them:
# parameters without gradients make DDP fail (unless find_unused_parameters) and inflate parameter counts.
_UNUSED_EFFICIENTNET_HEAD = ("_conv_head", "_bn1", "conv_head", "bn2")


class PaddedSegmenter(nn.Module):
    """The one wrapper every built model is: any input size in, logits at input resolution out.

    Inputs are zero-padded (zero = the dataset mean after normalisation) at the bottom/right up to the next
    multiple of the network's output stride and the logits are cropped back. A network with an auxiliary
    head may return ``{"out", "aux"}`` in training; both are cropped, and its ``aux_weight`` shows through.

    ``frozen_norms`` names BatchNorm layers that stay in eval mode through ``train()``, so their statistics
    keep the values they were loaded with (see ``segkit.models.freeze``).
    """

    def __init__(self, net: nn.Module, multiple: int) -> None:
        super().__init__()
        self.net = net
        self.multiple = multiple
        self.frozen_norms: list[str] = []

    @property
    def aux_weight(self) -> float:
        """Weight of the auxiliary loss; AttributeError (so ``getattr`` defaults) for nets without one."""
        return self.net.aux_weight

    def train(self, mode: bool = True) -> PaddedSegmenter:
        super().train(mode)
        for name in self.frozen_norms:
            self.get_submodule(name).eval()
        return self

    def forward(self, images: torch.Tensor) -> Output:
        height, width = images.shape[-2:]
        pad_h, pad_w = -height % self.multiple, -width % self.multiple
        if pad_h or pad_w:
            images = F.pad(images, (0, pad_w, 0, pad_h))
        out = self.net(images)
        if isinstance(out, dict):
            return {key: value[..., :height, :width] for key, value in out.items()}
        return out[..., :height, :width]


def build_smp(arch: type[nn.Module], num_classes: int, encoder_name: str, encoder_weights: str | None,
              **kwargs: Any) -> PaddedSegmenter:
    """Build an smp architecture, turning a failed weight download into one actionable line.

    smp forwards unknown keywords to the encoder; only timm (``tu-``) encoders take extra ones, so for the
    others a misspelt key is reported instead of ignored. ``aux_params`` and ``activation`` are refused:
    the trainer and the losses expect plain logits.
    """
    check_kwargs(arch, kwargs, where=f"model ({arch.__name__})", strict=not encoder_name.startswith("tu-"))
    for key in ("aux_params", "activation"):
        if kwargs.get(key) is not None:
            raise SegkitError(f"model.{key}={kwargs[key]!r}: segkit models return raw logits for the losses; "
                              f"remove model.{key}")
    try:
        net = arch(encoder_name=encoder_name, encoder_weights=encoder_weights, classes=num_classes, **kwargs)
    except (KeyError, ValueError) as err:
        raise SegkitError(f"model: cannot build {arch.__name__} with encoder {encoder_name!r}: "
                          f"{err}") from err
    except OSError as err:  # URLError, HTTP and hub errors are OSErrors
        raise SegkitError(
            f"model.encoder_weights={encoder_weights!r}: could not download weights for {encoder_name!r} "
            f"({type(err).__name__}: {err}); when offline set model.encoder_weights=None"
        ) from err
    if type(net.encoder).__name__ == "EfficientNetEncoder":
        for name in _UNUSED_EFFICIENTNET_HEAD:
            if hasattr(net.encoder, name):
                setattr(net.encoder, name, nn.Identity())
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
def UnetPlusPlus(num_classes: int, encoder_name: str = "resnet34", encoder_weights: str | None = "imagenet",
                 **kwargs: Any) -> nn.Module:
    return build_smp(smp.UnetPlusPlus, num_classes, encoder_name, encoder_weights, **kwargs)


@MODELS.register()
def FPN(num_classes: int, encoder_name: str = "resnet34", encoder_weights: str | None = "imagenet",
        **kwargs: Any) -> nn.Module:
    return build_smp(smp.FPN, num_classes, encoder_name, encoder_weights, **kwargs)


@MODELS.register()
def DeepLabV3(num_classes: int, encoder_name: str = "resnet50", encoder_weights: str | None = "imagenet",
              **kwargs: Any) -> nn.Module:
    return build_smp(smp.DeepLabV3, num_classes, encoder_name, encoder_weights, **kwargs)


@MODELS.register()
def DeepLabV3Plus(num_classes: int, encoder_name: str = "resnet50", encoder_weights: str | None = "imagenet",
                  **kwargs: Any) -> nn.Module:
    return build_smp(smp.DeepLabV3Plus, num_classes, encoder_name, encoder_weights, **kwargs)
