"""One small model per family of prunable layer kinds, built the same way in Keras 3 and in tf_keras, with data.

Every layer kind Shears prunes appears in one of three models (the tests share one run per model and format):
- images (digits, 8x8x1): Conv2D, SeparableConv2D, DepthwiseConv2D (kept dense: tfmot prunes none of its
  weights), Conv2DTranspose, Dense;
- sequences (token ids): Embedding, Conv1D, SeparableConv1D, LSTM, GRU, SimpleRNN, Dense;
- volumes (digits as 4x4x4x1): Conv3D, Dense.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

# layer name -> (family, class, the weights tfmot prunes)
KINDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "dense": ("image", "Dense", ("kernel",)),
    "conv2d": ("image", "Conv2D", ("kernel",)),
    "sepconv2d": ("image", "SeparableConv2D", ("pointwise_kernel",)),
    "convtranspose": ("image", "Conv2DTranspose", ("kernel",)),
    "conv1d": ("sequence", "Conv1D", ("kernel",)),
    "sepconv1d": ("sequence", "SeparableConv1D", ("pointwise_kernel",)),
    "embedding": ("sequence", "Embedding", ("embeddings",)),
    "lstm": ("sequence", "LSTM", ("kernel", "recurrent_kernel")),
    "gru": ("sequence", "GRU", ("kernel", "recurrent_kernel")),
    "simplernn": ("sequence", "SimpleRNN", ("kernel", "recurrent_kernel")),
    "conv3d": ("volume", "Conv3D", ("kernel",)),
}
KEPT = {"depthwise": ("image", "DepthwiseConv2D")}
FAMILIES = ("image", "sequence", "volume")
SEQ_LEN, VOCAB = 12, 40


def digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images / 16.0).astype(np.float32), d.target.astype(np.int64)


def sequences(n: int = 1200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Token ids 1..VOCAB-1; class 1 when 'positive' tokens (1-7) outnumber 'negative' ones (8-14)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(1, VOCAB, size=(n, SEQ_LEN))
    pos = ((x >= 1) & (x < 8)).sum(axis=1)
    neg = ((x >= 8) & (x < 15)).sum(axis=1)
    return x.astype(np.int32), (pos > neg).astype(np.int64)


def data(family: str) -> tuple[np.ndarray, np.ndarray]:
    if family == "sequence":
        return sequences()
    x, y = digits()
    if family == "volume":
        return x.reshape(-1, 4, 4, 4, 1), y
    return x[..., None], y


def build(k: Any, family: str) -> Any:
    """The family's model in Keras module `k` (Keras 3's `keras` or `tf_keras`)."""
    layers = k.layers
    if family == "image":
        inp = k.Input((8, 8, 1), name="image")
        x = layers.Conv2D(8, 3, padding="same", activation="relu", name="conv2d")(inp)
        x = layers.SeparableConv2D(8, 3, padding="same", activation="relu", name="sepconv2d")(x)
        x = layers.DepthwiseConv2D(3, padding="same", name="depthwise")(x)
        x = layers.Conv2DTranspose(8, 3, padding="same", activation="relu", name="convtranspose")(x)
        x = layers.MaxPooling2D(2, name="pool")(x)
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(32, activation="relu", name="dense")(x)
        out = layers.Dense(10, name="logits")(x)
    elif family == "sequence":
        inp = k.Input((SEQ_LEN,), dtype="int32", name="tokens")
        x = layers.Embedding(VOCAB, 8, name="embedding")(inp)
        x = layers.Conv1D(8, 3, padding="same", activation="relu", name="conv1d")(x)
        x = layers.SeparableConv1D(8, 3, padding="same", activation="relu", name="sepconv1d")(x)
        x = layers.LSTM(8, return_sequences=True, name="lstm")(x)
        x = layers.GRU(8, return_sequences=True, name="gru")(x)
        x = layers.SimpleRNN(8, name="simplernn")(x)
        out = layers.Dense(2, name="logits")(x)
    else:
        inp = k.Input((4, 4, 4, 1), name="volume")
        x = layers.Conv3D(8, 2, activation="relu", name="conv3d")(inp)
        x = layers.Flatten(name="flatten")(x)
        out = layers.Dense(10, name="logits")(x)
    return k.Model(inp, out, name=f"{family}_kinds")


def trained(k: Any, family: str, epochs: int = 6, seed: int = 0) -> Any:
    k.utils.set_random_seed(seed)
    model = build(k, family)
    x, y = data(family)
    model.compile(k.optimizers.Adam(0.01), k.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    return model


def save(folder: Path, family: str, generation: str) -> tuple[Path, Path]:
    """(model file, data file) of a family, built with Keras 3 (`keras3`: a .keras) or tf_keras (`tf_keras`: an .h5)."""
    import io

    if generation == "keras3":
        from tests.keras.k3models import k3

        path = folder / f"{family}.keras"
        trained(k3(), family).save(path)
    else:
        import tf_keras

        path = folder / f"{family}.h5"
        trained(tf_keras, family).save(path)
    x, y = data(family)
    buf = io.BytesIO()
    np.savez(buf, x=x, y=y)
    data_path = folder / f"{family}.npz"
    data_path.write_bytes(buf.getvalue())
    return path, data_path


TEXT_LEN, TEXT_VOCAB = 20, 200


def text_task(n: int = 1500, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A text-like task: sentences of TEXT_LEN token ids; class 1 when 'positive' words (ids 1-19) outnumber
    'negative' ones (20-39) — the sentiment task of the Keras text tutorials, without a download."""
    rng = np.random.default_rng(seed)
    x = rng.integers(1, TEXT_VOCAB, size=(n, TEXT_LEN))
    pos = ((x >= 1) & (x < 20)).sum(axis=1)
    neg = ((x >= 20) & (x < 40)).sum(axis=1)
    return x.astype(np.int32), (pos > neg).astype(np.int64)


def text_lstm(k: Any, epochs: int = 8, seed: int = 0) -> Any:
    """Embedding(TEXT_VOCAB, 16) -> LSTM(32) -> Dense(2) logits, trained on text_task() in Keras module `k`."""
    k.utils.set_random_seed(seed)
    model = k.Sequential([k.Input((TEXT_LEN,), dtype="int32", name="tokens"),
                          k.layers.Embedding(TEXT_VOCAB, 16, name="embedding"), k.layers.LSTM(32, name="lstm"),
                          k.layers.Dense(2, name="logits")], name="text_lstm")
    x, y = text_task()
    model.compile(k.optimizers.Adam(0.005), k.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    return model
