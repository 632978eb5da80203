"""The networks: the CNN + BiLSTM family (`cnn_lstm`) and model folders on disk (`saving`: weights, configs, calibration, checksums)."""
