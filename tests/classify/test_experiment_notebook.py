"""classify.experiment as a notebook calls it: quiet unless asked, one path or several,
saving as a choice, and the README's example as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from classify.config import ExperimentConfig, ExperimentError
from classify.experiment import run
from tests.helpers.featurefiles import write_feature_file

README = Path(__file__).resolve().parents[2] / "README.md"


def _config(features: object, outputs: Path, **options: object) -> ExperimentConfig:
    return ExperimentConfig(features=features, grid={"C": [0.1, 1.0]}, jobs=1,  # type: ignore[arg-type]
                            outputs=outputs, **options)


def test_nothing_is_printed_unless_announce_is_given(feature_file: Path, outputs: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    result = run(_config((feature_file,), outputs))
    assert capsys.readouterr() == ("", "")
    assert result.files is not None and result.files.model_dir.is_dir()
    notes: list[str] = []
    run(_config((feature_file,), outputs), announce=notes.append)
    assert capsys.readouterr() == ("", "")
    assert any(note.startswith(f"loaded {feature_file}") for note in notes)


@pytest.mark.parametrize("named", ["string", "path", "list of strings"])
def test_features_is_one_path_or_a_sequence_of_them(feature_file: Path, outputs: Path,
                                                    named: str) -> None:
    features = {"string": str(feature_file), "path": feature_file,
                "list of strings": [str(feature_file)]}[named]
    config = _config(features, outputs)
    assert config.features == (feature_file,)
    result = run(config)
    assert [source.path for source in result.metrics.features] == [str(feature_file)]


def test_features_that_are_not_paths_are_refused(outputs: Path) -> None:
    with pytest.raises(ExperimentError, match="features: name at least one feature file"):
        _config([], outputs)
    with pytest.raises(ExperimentError, match=r"features: expected paths, not int \(3\)"):
        _config(["a.h5", 3], outputs)


def test_save_false_returns_the_result_and_writes_nothing(feature_file: Path,
                                                          outputs: Path) -> None:
    result = run(_config(feature_file, outputs, save=False))
    assert result.files is None
    assert 0 <= result.metrics.accuracy <= 1 and result.report.startswith("features")
    assert hasattr(result.estimator, "classes_")  # fitted
    assert sorted(p.name for p in outputs.iterdir()) == ["features"]  # no report, model, ledger


def _readme_notebook_example() -> str:
    section = README.read_text(encoding="utf-8").split("**From a notebook.**", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)  # type: ignore[union-attr]


def test_the_readme_notebook_example_runs_as_written(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    features = tmp_path / "outputs" / "features"
    features.mkdir(parents=True)
    # The name extract gives it: dataset, backbone, pooling and a digest of the settings.
    write_feature_file(features / "flowers17-efficientnet_lite0-avg-1a2b3c4d.h5",
                       attrs={"dataset": "flowers17", "backbone": "efficientnet_lite0"})
    monkeypatch.chdir(tmp_path)
    scope: dict[str, object] = {}
    exec(_readme_notebook_example(), scope)  # noqa: S102 - the README's own code
    shown = capsys.readouterr().out
    assert "loaded outputs/features/flowers17-efficientnet_lite0-avg-1a2b3c4d.h5" in shown
    assert "\naccuracy    " in shown  # print(result.report)
    result = scope["result"]
    assert (result.files.model_dir / "bundle.json").exists()  # type: ignore[attr-defined]
