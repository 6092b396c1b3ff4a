"""When no image could be read, the summary gives no rate (there was nothing to label)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import predict.cli
from predict.predicting import PredictionResults
from tests.helpers.bundles import run_predict


def test_no_rate_when_nothing_was_labelled(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "bundle.json").write_text("{}")
    broken = [tmp_path / "corrupt.jpg", tmp_path / "empty.jpg"]
    broken[0].write_bytes(b"\xff\xd8 not a jpeg")
    broken[1].write_bytes(b"")

    def unreadable(bundle: Any, images: list[Path], **kwargs: Any) -> PredictionResults:
        return PredictionResults([], list(images), [], 1.0, 0.2)

    monkeypatch.setattr(predict.cli, "load_bundle",
                        lambda *args, **kwargs: SimpleNamespace(label_names=["a", "b"]))
    monkeypatch.setattr(predict.cli, "predict", unreadable)
    result = run_predict("--model", model, *broken)
    assert result.exit_code == 1, result.output
    summary = [line for line in result.output.splitlines() if " labelled, " in line]
    assert len(summary) == 1 and summary[0].startswith("0 images labelled, 2 skipped; ")
    assert "images/s" not in summary[0]
