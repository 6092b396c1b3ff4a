"""confusion.png's title fits the picture and names the run (issue 26, items 3 and 15)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from classify.report.confusion import write_confusion
from classify.report.evaluation import evaluate

FLOWERS = ["bluebell", "daffodil", "daisy", "sunflower", "tulip"]
FUSED = ("fused: flowers5-efficientnet_lite0-avg-b367d929 + "
         "flowers5-efficientnet_lite1-avg-29d5c66b / logreg")


@pytest.mark.parametrize("title", [
    "flowers5-efficientnet_lite0-avg-b367d929 / rf: accuracy 0.9474",  # cut before
    f"{FUSED}\naccuracy 0.9737",
])
def test_the_title_is_whole_inside_the_picture(tmp_path: Path, title: str) -> None:
    y = np.repeat(np.arange(5), 8)
    png = tmp_path / "confusion.png"
    write_confusion(png, evaluate(y, np.roll(y, 1), FLOWERS), FLOWERS, title)
    picture = Image.open(png)
    assert picture.text["Title"] == title
    ink = (np.asarray(picture.convert("L")) < 200)
    top = ink[: ink.shape[0] // 8]  # the title's band
    assert top.any(), "no title drawn"
    assert not ink[:, :4].any() and not ink[:, -4:].any(), "something touches the side"
