"""Exporting a model folder as one portable ONNX file (`onnx`)."""
