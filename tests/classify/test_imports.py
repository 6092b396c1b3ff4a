"""`classify` runs where TensorFlow is not installed and imports nothing heavy up front."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

BLOCK_TENSORFLOW = textwrap.dedent(
    """
    import importlib.abc, sys

    class NoTensorFlow(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("tensorflow", "keras", "tf_keras"):
                raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")
            return None

    sys.meta_path.insert(0, NoTensorFlow())
    """
)


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_classify_runs_end_to_end_with_tensorflow_unimportable(
    feature_file: Path, outputs: Path
) -> None:
    args = [
        "--features",
        str(feature_file),
        "--outputs",
        str(outputs),
        "--grid",
        "C=1",
        "--jobs",
        "1",
    ]
    code = BLOCK_TENSORFLOW + textwrap.dedent(
        f"""
        from classify.cli import main
        try:
            main({args!r}, prog_name="classify")
        except SystemExit as exit:
            assert not exit.code, exit.code
        assert not any(m.split(".")[0] in ("tensorflow", "keras") for m in sys.modules)
        """
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert "accuracy    " in result.stdout
    assert (outputs / "results.csv").exists()


def test_importing_the_cli_loads_no_heavy_library() -> None:
    heavy = ["tensorflow", "keras", "sklearn", "scipy", "xgboost", "matplotlib", "h5py"]
    code = (
        "import json, sys\nimport classify.cli\n"
        f"print(json.dumps([m for m in {heavy!r} if m in sys.modules]))"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
