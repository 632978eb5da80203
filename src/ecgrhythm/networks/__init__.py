"""The networks: families registered by name (`registry`; each one module: `cnn_lstm`, the CNN + BiLSTM, and `gru`), the
Keras layers and ONNX nodes they share (`layers`, `onnx_graph`), and model folders on disk (`saving`: weights, configs,
calibration, checksums; `split`: the records a model trained on)."""
