"""The input scalings a model file can ask for (`extract --preprocess`).

A built-in backbone brings its own preprocess_input; a model file does not say how it
wants its pixels, so the user names it: one of `NAMED`, or explicit values
`mean=R,G,B;std=R,G,B`. Each becomes a `Preprocessing`, a callable the reader applies
to its float32 RGB batches in [0, 255] (tf.data tensors or numpy arrays alike).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.errors import UserError
from common.text import did_you_mean

# Per-channel statistics on the [0, 1] scale, as timm and Hugging Face print them.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)  # on the [0, 255] scale, in BGR order
EXPLICIT_FORM = "mean=R,G,B;std=R,G,B"


class PreprocessError(UserError):
    """A --preprocess that names no scaling; the message lists them."""


@dataclass(frozen=True)
class Preprocessing:
    """(pixels - mean) / std per channel, on RGB pixels in [0, 255]; channels reversed
    first for a BGR model. `label` is what a feature file records (its identity)."""

    label: str
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)  # on the [0, 255] scale
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    bgr: bool = False

    def __call__(self, images: Any) -> Any:
        if self.bgr:
            images = images[..., ::-1]
        if self.mean == (0.0, 0.0, 0.0) and self.std == (1.0, 1.0, 1.0):
            return images
        import numpy as np  # only once images are scaled: parsing the option needs none

        mean = np.asarray(self.mean, np.float32)
        std = np.asarray(self.std, np.float32)
        return (images - mean) / std


def _on_pixels(values: tuple[float, ...]) -> tuple[float, float, float]:
    """[0, 1]-scale statistics on the [0, 255] scale of the reader's pixels."""
    return tuple(255.0 * v for v in values)  # type: ignore[return-value]


NAMED: dict[str, Preprocessing] = {
    "imagenet": Preprocessing("imagenet", _on_pixels(IMAGENET_MEAN), _on_pixels(IMAGENET_STD)),
    "clip": Preprocessing("clip", _on_pixels(CLIP_MEAN), _on_pixels(CLIP_STD)),
    "inception": Preprocessing("inception", (127.5,) * 3, (127.5,) * 3),  # [-1, 1]
    "caffe": Preprocessing("caffe", CAFFE_MEAN_BGR, bgr=True),
    "unit": Preprocessing("unit", std=(255.0,) * 3),  # [0, 1]
    "none": Preprocessing("none"),  # [0, 255]: a model that scales its own input
}
DESCRIPTION = (f"{', '.join(NAMED)}, or {EXPLICIT_FORM} ([0, 1] scale as timm and Hugging "
               "Face print them; a mean above 1 puts both on the [0, 255] scale)")


def _three(text: str, key: str, given: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3:
        raise PreprocessError(f"--preprocess {given}: {key} needs three numbers, R,G,B "
                              f"({EXPLICIT_FORM})")
    return values  # type: ignore[return-value]


def parse(given: str) -> Preprocessing:
    """The scaling `given` names: a name of NAMED or explicit mean and std.

    Explicit values are on the [0, 1] scale (mean=0.485,0.456,0.406;std=0.229,0.224,0.225)
    unless a mean is above 1, which no [0, 1] image has: then both are on the [0, 255]
    scale of the pixels (mean=123.675,116.28,103.53;std=58.395,57.12,57.375). The label
    spells the numbers out in full, so a file's record rebuilds the same arithmetic.
    """
    text = given.strip()
    if text.lower() in NAMED:
        return NAMED[text.lower()]
    parts = dict(part.split("=", 1) for part in text.replace(" ", "").split(";")
                 if "=" in part)
    if not text.startswith(("mean=", "std=")) or set(parts) != {"mean", "std"}:
        raise PreprocessError(f"unknown --preprocess {given!r}; {did_you_mean(text, NAMED)}"
                              f"choose {DESCRIPTION}")
    mean, std = _three(parts["mean"], "mean", given), _three(parts["std"], "std", given)
    if min(std) <= 0:
        raise PreprocessError(f"--preprocess {given}: std must be positive")
    label = f"mean={','.join(map(repr, mean))};std={','.join(map(repr, std))}"
    if max(mean) > 1:
        return Preprocessing(label, mean, std)
    return Preprocessing(label, _on_pixels(mean), _on_pixels(std))
