"""Registry entries over segmentation-models-pytorch: every smp 0.6 architecture, one config line each.

One generic builder (:func:`build_smp`) serves all of them; :data:`SMP_ARCHITECTURES` holds what differs: the
default encoder, which encoders each accepts (said in the error when another is given), and the input-size
rule (side multiple and smallest side) that ``PaddedSegmenter`` pads to, so every network takes any size.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
from torch import nn

from segkit.errors import SegkitError
from segkit.models.unused import prune_unused
from segkit.registry import MODELS, check_kwargs

Output = torch.Tensor | dict[str, torch.Tensor]

CNN_ENCODERS = ("any smp encoder (resnet*, efficientnet-*, mit_b*, ...) or hierarchical timm encoder as "
                "'tu-' + a timm name (tu-convnext_*, tu-efficientnetv2_*, tu-regnet*, ...); plain ViTs only "
                "with DPT")
NO_MIT = ("smp CNN encoders (resnet*, efficientnet-*, ...) or hierarchical timm encoders as 'tu-' + a timm "
          "name (tu-convnext_*, tu-efficientnetv2_*, tu-regnet*, ...); not mit_b* or plain ViTs")


@dataclass(frozen=True)
class SmpArchitecture:
    """What segkit needs beyond an smp class: its encoder rules and the input sizes its decoder takes.

    The padded side multiple is ``encoder.output_stride * stride_factor`` and the smallest padded side
    ``encoder.output_stride * min_feature_side``.
    """

    smp_class: str
    default_encoder: str
    encoders: str
    refused_prefixes: tuple[str, ...] = ()
    required_prefix: str = ""
    stride_factor: int = 1
    min_feature_side: int = 1
    defaults: dict[str, Any] = field(default_factory=dict)
    check: Callable[[str], str | None] | None = None
    note: str = ""

    def refusal(self, encoder_name: str) -> str | None:
        """Why ``encoder_name`` cannot work here, or None."""
        if self.required_prefix and not encoder_name.startswith(self.required_prefix):
            return f"needs a {self.required_prefix!r} encoder"
        if encoder_name.startswith(self.refused_prefixes):
            return f"does not take {encoder_name.split('_')[0]}* encoders"
        return self.check(encoder_name) if self.check else None


def _efficientnet_only(encoder_name: str) -> str | None:
    if encoder_name.startswith(("efficientnet-", "timm-efficientnet-", "tu-efficientnet")):
        return None
    return "needs an EfficientNet encoder; use type='Unet' for other encoders"


SMP_ARCHITECTURES: dict[str, SmpArchitecture] = {
    "Unet": SmpArchitecture("Unet", "resnet34", CNN_ENCODERS, note="U-Net decoder, skip at every stride"),
    "EfficientUnet": SmpArchitecture(
        "Unet", "efficientnet-b4", "efficientnet-b0 ... b7 (also timm-efficientnet-*, tu-efficientnet*)",
        check=_efficientnet_only, note="Unet on an EfficientNet; refuses other encoders"),
    "UnetPlusPlus": SmpArchitecture("UnetPlusPlus", "resnet34", NO_MIT, refused_prefixes=("mit_b",),
                                   note="nested skip pathways; the heaviest decoder"),
    "FPN": SmpArchitecture("FPN", "resnet34", CNN_ENCODERS,
                           note="`decoder_segmentation_channels` a multiple of 32 (GroupNorm)"),
    "DeepLabV3": SmpArchitecture("DeepLabV3", "resnet50", NO_MIT, refused_prefixes=("mit_b",),
                                note="dilated encoder (output stride 8), ASPP"),
    "DeepLabV3Plus": SmpArchitecture("DeepLabV3Plus", "resnet50", CNN_ENCODERS,
                                    note="`encoder_output_stride` 16 (default) or 8"),
    "Linknet": SmpArchitecture("Linknet", "resnet34", NO_MIT, refused_prefixes=("mit_b",),
                              note="additive skips; the lightest decoder"),
    "PSPNet": SmpArchitecture("PSPNet", "resnet34", NO_MIT, refused_prefixes=("mit_b",),
                             note="`encoder_depth` 3 (stride 8): later encoder stages are removed"),
    # PAN's feature pyramid attention max-pools its deepest map three times: it needs at least 8 pixels there
    "PAN": SmpArchitecture("PAN", "resnet34", CNN_ENCODERS, min_feature_side=8,
                          note="feature pyramid attention; `encoder_output_stride` 16 (default) or 32"),
    "MAnet": SmpArchitecture("MAnet", "resnet34", CNN_ENCODERS,
                             note="multi-scale attention (position + channel) decoder"),
    "UPerNet": SmpArchitecture("UPerNet", "tu-convnext_tiny", CNN_ENCODERS,
                               note="pyramid pooling + FPN fusion; the ConvNeXt/Swin decoder of mmseg"),
    "Segformer": SmpArchitecture("Segformer", "mit_b2", CNN_ENCODERS,
                                 note="all-MLP decoder; Mix Transformer `mit_b0`..`mit_b5` is its own encoder"),
    # DPT reassembles the patch grid at half its resolution too (a stride-2 conv), hence twice the patch size;
    # dynamic_img_size lets the ViT interpolate its position embeddings to any padded size
    "DPT": SmpArchitecture(
        "DPT", "tu-vit_small_patch16_224",
        "plain timm ViTs as 'tu-' + a timm name (tu-vit_*, tu-deit_*, tu-eva02_*, ...: one patch stride "
        "throughout)",
        required_prefix="tu-", stride_factor=2, defaults={"dynamic_img_size": True},
        note="ViT features reassembled at 4 scales; `dynamic_img_size=True` by default (any padded size)"),
}


class PaddedSegmenter(nn.Module):
    """The one wrapper every built model is: any input size in, logits at input resolution out.

    Inputs are zero-padded (zero = the dataset mean after normalisation) at the bottom/right up to the next
    multiple of the network's ``multiple`` and at least ``min_size``, and the logits are cropped back. A
    network with an auxiliary head may return ``{"out", "aux"}`` in training; both are cropped, and its
    ``aux_weight`` shows through.

    ``frozen_norms`` names BatchNorm layers that stay in eval mode through ``train()``, so their statistics
    keep the values they were loaded with (see ``segkit.models.freeze``).
    """

    def __init__(self, net: nn.Module, multiple: int, min_size: int = 1) -> None:
        super().__init__()
        self.net = net
        self.multiple = multiple
        self.min_size = min_size
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

    def padded_size(self, height: int, width: int) -> tuple[int, int]:
        """The size the network sees for an input of ``height`` x ``width``."""
        return tuple(max(self.min_size, side + -side % self.multiple) for side in (height, width))

    def forward(self, images: torch.Tensor) -> Output:
        height, width = images.shape[-2:]
        padded_h, padded_w = self.padded_size(height, width)
        if (padded_h, padded_w) != (height, width):
            images = F.pad(images, (0, padded_w - width, 0, padded_h - height))
        try:
            out = self.net(images)
        except ValueError as err:
            if self.training and "Expected more than 1 value per channel" in str(err):
                raise SegkitError(
                    f"{type(self.net).__name__} cannot train on a batch of 1: a BatchNorm after its global "
                    "pooling sees one value per channel; use data.batch_size >= 2") from err
            raise
        if isinstance(out, dict):
            return {key: value[..., :height, :width] for key, value in out.items()}
        return out[..., :height, :width]


def build_smp(name: str, num_classes: int, encoder_name: str | None = None,
              encoder_weights: str | None = "imagenet", **kwargs: Any) -> PaddedSegmenter:
    """Build the smp architecture registered as ``name``; every failure is one line naming what works.

    smp forwards unknown keywords to the encoder; only timm (``tu-``) encoders take extra ones, so for the
    others a misspelt key is reported instead of ignored. ``aux_params`` and ``activation`` are refused:
    the trainer and the losses expect plain logits.
    """
    spec = SMP_ARCHITECTURES[name]
    arch = getattr(smp, spec.smp_class)
    encoder_name = encoder_name or spec.default_encoder
    refusal = spec.refusal(encoder_name)
    if refusal:
        raise SegkitError(f"model.encoder_name={encoder_name!r}: {name} {refusal}; it takes {spec.encoders}")
    kwargs = {**spec.defaults, **kwargs}
    check_kwargs(arch, kwargs, where=f"model ({name})", strict=not encoder_name.startswith("tu-"))
    for key in ("aux_params", "activation"):
        if kwargs.get(key) is not None:
            raise SegkitError(f"model.{key}={kwargs[key]!r}: segkit models return raw logits for the losses; "
                              f"remove model.{key}")
    try:
        with warnings.catch_warnings(record=True) as caught:  # shown only if the model is accepted
            warnings.simplefilter("always")
            net = arch(encoder_name=encoder_name, encoder_weights=encoder_weights, classes=num_classes, **kwargs)
    except OSError as err:  # URLError, HTTP and hub errors are OSErrors
        raise SegkitError(
            f"model.encoder_weights={encoder_weights!r}: could not download weights for {encoder_name!r} "
            f"({type(err).__name__}: {err}); when offline set model.encoder_weights=None"
        ) from err
    except (KeyError, ValueError, TypeError, RuntimeError) as err:
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise SegkitError(f"model: cannot build {name} with encoder {encoder_name!r} ({first_line}); "
                          f"{name} takes {spec.encoders}") from err
    model = wrap_smp(net, spec)
    for warning in caught:
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return model


def wrap_smp(net: nn.Module, spec: SmpArchitecture) -> PaddedSegmenter:
    """``net`` padded to the sizes ``spec`` says its decoder takes, with the parameters no output uses removed.

    smp keeps some that no feature map uses (EfficientNet's classifier conv, PSPNet's encoder stages past
    its depth, a ViT's final norm): parameters without gradients make DDP fail (unless
    find_unused_parameters) and inflate parameter counts.
    """
    strides = getattr(net.encoder, "output_strides", None)
    if strides is not None and len(set(strides)) > 1:
        raise SegkitError(f"model.encoder_name: {type(net).__name__} needs a plain ViT whose features share one "
                          f"stride, this encoder's have strides {strides}; it takes {spec.encoders}")
    vit = getattr(net.encoder, "model", None)
    if getattr(vit, "dynamic_img_size", None) is False:
        side = "x".join(str(s) for s in vit.patch_embed.img_size)
        raise SegkitError(f"model.dynamic_img_size=False: this {type(net).__name__} encoder then takes only {side} "
                          "inputs while segkit feeds any padded size; leave dynamic_img_size=True (the default)")
    stride = net.encoder.output_stride
    model = PaddedSegmenter(net, multiple=stride * spec.stride_factor, min_size=stride * spec.min_feature_side)
    prune_unused(model, model.padded_size(64, 64))
    return model


def _register(name: str) -> None:
    factory = partial(build_smp, name)
    factory.__doc__ = f"smp {SMP_ARCHITECTURES[name].smp_class}; encoders: {SMP_ARCHITECTURES[name].encoders}"
    MODELS.register(name)(factory)


for _name in SMP_ARCHITECTURES:
    _register(_name)
