"""Real Keras 3 models, built and trained here with `import keras` (Keras 3), the way users make them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def k3() -> Any:
    import keras  # Keras 3: tf.keras is tf_keras in this process (TF_USE_LEGACY_KERAS=1), `keras` is not

    assert keras.__version__.startswith("3."), keras.__version__
    return keras


def digits_images() -> tuple[np.ndarray, np.ndarray]:
    """sklearn's 8x8 digits in [0, 1], without a channel axis (the usual grayscale form)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images / 16.0).astype(np.float32), d.target.astype(np.int64)


def functional_cnn(epochs: int = 2) -> Any:
    """Rescaling -> Conv2D -> BatchNormalization -> ReLU, a 1x1 branch joined by Add and Concatenate,
    MaxPooling -> Flatten -> Dropout -> Dense -> Dense logits; trained on digits with a channel axis."""
    keras = k3()
    keras.utils.set_random_seed(0)
    layers = keras.layers
    inp = keras.Input((8, 8, 1), name="image")
    x = layers.Rescaling(1.0, name="rescale")(inp)
    x = layers.Conv2D(16, 3, padding="same", name="conv")(x)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.ReLU(name="relu")(x)
    side = layers.Conv2D(16, 1, name="side")(x)
    x = layers.Concatenate(name="concat")([layers.Add(name="add")([x, side]), side])
    x = layers.MaxPooling2D(2, name="pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(0.1, name="dropout")(x)
    x = layers.Dense(64, activation="relu", name="dense")(x)
    out = layers.Dense(10, name="logits")(x)
    model = keras.Model(inp, out, name="k3_cnn")
    x_all, y_all = digits_images()
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x_all[..., None], y_all, epochs=epochs, batch_size=32, verbose=0)
    return model


def nested_shared() -> Any:
    """A nested Sequential block used twice (shared weights) inside a Functional model."""
    keras = k3()
    keras.utils.set_random_seed(1)
    layers = keras.layers
    block = keras.Sequential([keras.Input((6,)), layers.Dense(8, activation="relu", name="inner")], name="block")
    a = keras.Input((6,), name="a")
    shared = layers.Dense(6, activation="tanh", name="shared")
    left, right = shared(a), shared(layers.Activation("sigmoid", name="sig")(a))
    x = layers.Concatenate(name="cat")([block(left), block(right)])
    x = layers.LayerNormalization(name="ln")(x)
    return keras.Model(a, layers.Dense(3, name="logits")(x), name="nested")


def iris_csv(path: Path) -> Path:
    """Iris with class names as labels (setosa, versicolor, virginica), rows shuffled with a fixed seed."""
    import pandas as pd
    from sklearn.datasets import load_iris

    d = load_iris()
    df = pd.DataFrame(d.data, columns=["sepal_l", "sepal_w", "petal_l", "petal_w"])
    df["label"] = np.asarray(d.target_names)[d.target]
    df = df.sample(frac=1.0, random_state=0).reset_index(drop=True)
    df.to_csv(path, index=False)
    return path


def sequential_mlp(csv: Path, epochs: int = 60) -> Any:
    """Normalization (adapted) -> Dense -> Dense logits, a Keras 3 Sequential trained on the CSV's features."""
    import pandas as pd

    keras = k3()
    keras.utils.set_random_seed(2)
    df = pd.read_csv(csv)
    x = df.drop(columns="label").to_numpy(np.float32)
    y = np.searchsorted(np.array(sorted(df["label"].unique())), df["label"].to_numpy())
    norm = keras.layers.Normalization(name="norm")
    norm.adapt(x)
    model = keras.Sequential([keras.Input((4,)), norm, keras.layers.Dense(64, activation="relu", name="hidden"),
                              keras.layers.Dense(3, name="logits")], name="k3_mlp")
    model.compile(keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=epochs, batch_size=16, verbose=0)
    return model


def learnable_images(n: int = 600, size: int = 32, classes: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random-but-learnable RGB images: noise plus a bright patch whose position and colour name the class."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = rng.uniform(0.0, 0.3, (n, size, size, 3)).astype(np.float32)
    for i, c in enumerate(y):
        r, col = divmod(int(c), 5)
        x[i, 4 + r * 14: 14 + r * 14, 2 + col * 6: 8 + col * 6, c % 3] = 1.0
    return x, y.astype(np.int64)


def mobilenet_v2(x: np.ndarray, y: np.ndarray, epochs: int = 4) -> Any:
    """keras.applications.MobileNetV2(weights=None, alpha=0.35, 32x32x3, 10 classes), trained on (x, y).

    Its BatchNormalization momentum is lowered to 0.5: with the default 0.99 the moving statistics of a few
    dozen steps stay near their start, and the model answers one class in inference whatever it learned
    (a constant model, which the no-skill gate rightly fails)."""
    keras = k3()
    keras.utils.set_random_seed(3)
    model = keras.applications.MobileNetV2(weights=None, alpha=0.35, input_shape=(32, 32, 3), classes=10)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.5
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    # and then recalibrated: one pass in training mode with momentum 0 makes the moving statistics those of
    # the training images, so inference behaves as training did (without it, a run under load can still
    # leave a constant model: seen once in CI's two-process suite)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0
    model(x[:256], training=True)
    return model


def subclassed() -> Any:
    keras = k3()

    class TinyNet(keras.Model):  # type: ignore[misc,name-defined]
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.dense = keras.layers.Dense(10)

        def call(self, x: Any) -> Any:
            return self.dense(keras.ops.reshape(x, (-1, 64)))

    model = TinyNet()
    model(np.zeros((1, 8, 8), np.float32))
    return model


def with_custom_layer() -> Any:
    keras = k3()

    @keras.saving.register_keras_serializable(package="mine")
    class Doubling(keras.layers.Layer):  # type: ignore[misc,name-defined]
        def call(self, x: Any) -> Any:
            return x * 2.0

    inp = keras.Input((8, 8), name="image")
    x = keras.layers.Flatten(name="flatten")(Doubling(name="double")(inp))
    return keras.Model(inp, keras.layers.Dense(10, name="logits")(x))


# Keras 3 models Shears cannot rebuild, each with the part of its one-line error that names the problem.
UNSUPPORTED = [
    (subclassed, "subclassed model (class TinyNet"),
    (with_custom_layer, "layer 'double' has class Doubling (custom"),
]
