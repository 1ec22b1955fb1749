"""One small from-scratch configuration per registered model type, shared by the model tests.

A type without an entry is built with its defaults (its own default encoder), so it is still tested, slowly,
and fails visibly if it does not work with them.
"""

TINY_DECODER = {"decoder_channels": (32, 16, 16, 8, 8)}
TINY = {
    "Unet": {"encoder_name": "resnet18", **TINY_DECODER},
    "EfficientUnet": {"encoder_name": "efficientnet-b0", **TINY_DECODER},
    "UnetPlusPlus": {"encoder_name": "resnet18", **TINY_DECODER},
    "FPN": {"encoder_name": "resnet18", "decoder_pyramid_channels": 32, "decoder_segmentation_channels": 32},
    "DeepLabV3": {"encoder_name": "resnet18", "decoder_channels": 32},
    "DeepLabV3Plus": {"encoder_name": "resnet18", "decoder_channels": 32},
    "Linknet": {"encoder_name": "resnet18"},
    "PSPNet": {"encoder_name": "resnet18", "psp_out_channels": 32},
    "PAN": {"encoder_name": "resnet18", "decoder_channels": 16},
    "MAnet": {"encoder_name": "resnet18", "decoder_channels": (32, 16, 16, 8, 8), "decoder_pab_channels": 16},
    "UPerNet": {"encoder_name": "tu-convnext_atto", "decoder_channels": 32},
    "Segformer": {"encoder_name": "mit_b0", "decoder_segmentation_channels": 32},
    "DPT": {"encoder_name": "tu-vit_tiny_patch16_224", "decoder_intermediate_channels": (16, 16, 16, 16),
            "decoder_fusion_channels": 16},
    "HRNetV2": {"backbone": "hrnet_w18_small"},
    "HRNetOCR": {"backbone": "hrnet_w18_small", "ocr_mid_channels": 32, "ocr_key_channels": 16},
}
# Types that need a file: their kwargs come from a fixture (see tests/models/test_registry_models.py)
NEEDS_FOLDER = ("SMPPretrained",)


def tiny_cfg(name: str) -> dict:
    cfg = {"type": name, **TINY.get(name, {})}
    if "path" not in cfg:
        cfg["encoder_weights"] = None
    return cfg
