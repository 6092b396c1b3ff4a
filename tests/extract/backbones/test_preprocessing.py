"""A model file's input scalings: the named ones, explicit mean and std on either scale,
and the labels files record."""

from __future__ import annotations

import numpy as np
import pytest

from extract.backbones.preprocessing import PreprocessError, parse

PIXELS = np.array([[[[0.0, 127.5, 255.0], [10.0, 20.0, 30.0]]]], np.float32)  # (1, 1, 2, 3)


@pytest.mark.parametrize("name,expected", [
    ("imagenet", (PIXELS / 255 - np.array([0.485, 0.456, 0.406]))
     / np.array([0.229, 0.224, 0.225])),
    ("clip", (PIXELS / 255 - np.array([0.48145466, 0.4578275, 0.40821073]))
     / np.array([0.26862954, 0.26130258, 0.27577711])),
    ("inception", PIXELS / 127.5 - 1),
    ("caffe", PIXELS[..., ::-1] - np.array([103.939, 116.779, 123.68])),
    ("unit", PIXELS / 255),
    ("none", PIXELS),
])
def test_each_named_scaling(name, expected):
    scaled = parse(name)(PIXELS)
    assert scaled.dtype == np.float32 and parse(name).label == name
    np.testing.assert_allclose(scaled, expected, rtol=1e-6, atol=1e-5)


def test_explicit_values_on_the_unit_scale_or_on_the_pixel_scale():
    unit = parse("mean=0.485,0.456,0.406;std=0.229,0.224,0.225")
    np.testing.assert_allclose(unit(PIXELS), parse("imagenet")(PIXELS), rtol=1e-6)
    pixels = parse("mean=127,127,127; std=128,128,128")  # a mean above 1: the 0-255 scale
    np.testing.assert_allclose(pixels(PIXELS), (PIXELS - 127) / 128, rtol=1e-7)
    assert pixels.label == "mean=127.0,127.0,127.0;std=128.0,128.0,128.0"
    assert parse(pixels.label) == pixels  # a file's record rebuilds the same arithmetic


def test_the_scaling_works_inside_tf_data():
    import tensorflow as tf

    scaled = parse("caffe")(tf.constant(PIXELS))
    np.testing.assert_allclose(scaled.numpy(), parse("caffe")(PIXELS), rtol=1e-7)


@pytest.mark.parametrize("given,message", [
    ("imagenett", "unknown --preprocess 'imagenett'; did you mean imagenet?"),
    ("torch", "choose imagenet, clip, inception, caffe, unit, none, or mean=R,G,B;std=R,G,B"),
    ("mean=1,2;std=1,1,1", "--preprocess mean=1,2;std=1,1,1: mean needs three numbers"),
    ("mean=0.5,0.5,0.5;std=0,1,1", "std must be positive"),
    ("mean=0.5,0.5,0.5", "unknown --preprocess"),
])
def test_a_scaling_that_does_not_exist_is_refused(given, message):
    with pytest.raises(PreprocessError) as caught:
        parse(given)
    assert message in str(caught.value) and "\n" not in str(caught.value)
