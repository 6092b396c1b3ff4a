"""The size limits in the backbone table match the models themselves: the smallest input
each one is built at, and the activations its largest layer holds."""

import importlib
import math

import pytest

from extract.backbones import registry


def _constructor(spec: registry.BackboneSpec):
    module, attribute = spec.constructor.split(":")
    return getattr(importlib.import_module(module), attribute)


def _largest_layer(model) -> int:
    """Floats per image that the largest layer holds, its inputs and output together."""
    def floats(tensors) -> int:
        tensors = tensors if isinstance(tensors, list) else [tensors]
        return sum(math.prod(tensor.shape[1:]) for tensor in tensors)

    return max(floats(layer.input) + floats(layer.output) for layer in model.layers[1:])


@pytest.mark.long
@pytest.mark.parametrize("name", list(registry.BACKBONES))
def test_peak_activations_are_the_largest_layers_per_input_pixel(name):
    spec = registry.BACKBONES[name]
    size = spec.input_size
    model = _constructor(spec)(include_top=False, weights=None, input_shape=(size, size, 3))
    assert spec.peak_activations == math.ceil(_largest_layer(model) / size**2)


@pytest.mark.parametrize("name", [name for name, spec in registry.BACKBONES.items()
                                  if spec.downloads_weights])
def test_the_minimum_size_is_the_one_keras_accepts(name):
    spec = registry.BACKBONES[name]
    build = _constructor(spec)
    smallest = spec.min_input_size
    build(include_top=False, weights=None, input_shape=(smallest, smallest, 3))
    with pytest.raises(ValueError, match=f"at least {smallest}x{smallest}"):
        build(include_top=False, weights=None, input_shape=(smallest - 1, smallest - 1, 3))


def test_a_size_under_the_minimum_is_refused_for_every_backbone():
    for name, spec in registry.BACKBONES.items():
        with pytest.raises(registry.BackboneError, match=f"at least {spec.min_input_size} px"):
            registry.build(name, weights="random", pooling="avg",
                           input_size=spec.min_input_size - 1)
