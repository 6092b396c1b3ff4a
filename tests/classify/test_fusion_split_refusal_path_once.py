"""Finding 13d of the second new-user pass: refusing a file with a given split beside
one without names each file once."""

from __future__ import annotations

from pathlib import Path

import pytest

from classify.fusion import FusionError, read_fused
from tests.helpers.featurefiles import write_feature_file
from tests.helpers.layouts import write_split_file

COUNTS = [6, 6]
SPLIT = (["train"] * 4 + ["test"] * 2) * 2


@pytest.mark.parametrize("split_first", [True, False])
def test_each_file_is_named_once(tmp_path: Path, split_first: bool) -> None:
    with_split = write_split_file(tmp_path / "a.h5", SPLIT, COUNTS)
    without = write_feature_file(tmp_path / "b.h5", counts=COUNTS)
    first, second = (with_split, without) if split_first else (without, with_split)
    with pytest.raises(FusionError) as caught:
        read_fused([first, second])
    message = str(caught.value)
    assert message.count(str(second)) == 1 and message.count(str(first)) == 1, message
    has = "has no given split" if split_first else "has a given split"
    other = "has one" if split_first else "has none"
    assert message.startswith(f"{second}: {has}, while {first} {other}; extract both "
                              "from the same layout"), message
