"""ecgrhythm: classify ECG recordings of any length into rhythm classes with Keras LSTM networks.

Keras runs on the JAX backend unless `KERAS_BACKEND` says otherwise; the code
uses `keras.ops` only, so TensorFlow and PyTorch users can run it too.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

__version__ = "0.1.0"
