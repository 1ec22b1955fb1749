"""Deployment: segkit models as ONNX files (``onnx_export``) and their int8 versions (``quantize``)."""
