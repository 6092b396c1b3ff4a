"""The mapper's engines and precision: OpenVINO against TensorFlow on real photos, bf16
against f32, the converted-model cache, the one-line refusals, predict's fallback, the
reader threads it asks for, and the model it frees."""

import sys

import numpy as np
import pytest

from extract import mapper as engines
from extract import reader
from extract.backbones.registry import preprocess_function
from extract.settings import Settings
from tests.helpers.extracting import SIZE
from tests.helpers.imagefolders import FLOWERS17_JPG, make_folder, smooth_jpeg

needs_flowers = pytest.mark.skipif(not FLOWERS17_JPG.is_dir(), reason=f"{FLOWERS17_JPG} is absent")
pytest.importorskip("openvino")


@pytest.fixture(autouse=True)
def cache_home(tmp_path_factory, monkeypatch):
    """Converted models go to one throw-away cache for the module, not ~/.cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))


def _photos(n: int) -> list[str]:
    """n flowers17 photos spread over the classes (80 photos per class)."""
    return [str(FLOWERS17_JPG / f"image_{1 + 80 * (i % 17) + i // 17:04d}.jpg") for i in range(n)]


def _features(settings: Settings, files: list[str]) -> np.ndarray:
    mapper = engines.build_mapper(settings)
    batches = reader.image_batches(files, size=settings.input_size, batch_size=8,
                                     preprocess=preprocess_function(settings.backbone))
    return np.concatenate([mapper(images) for _, images in batches])


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture(scope="module")
def lite0_f32():
    """lite0 with ImageNet weights on 20 photos: TensorFlow's and OpenVINO's features."""
    if not FLOWERS17_JPG.is_dir():
        pytest.skip(f"{FLOWERS17_JPG} is absent")
    files = _photos(20)
    settings = Settings("efficientnet_lite0", "imagenet", "avg", 224)
    return files, {engine: _features(Settings(**{**settings.__dict__, "engine": engine}), files)
                   for engine in ("tensorflow", "openvino")}


@needs_flowers
def test_openvino_f32_equals_tensorflow_on_photos_with_imagenet_weights(lite0_f32):
    _, features = lite0_f32
    reference = features["tensorflow"]
    assert reference.shape == (20, 1280) and reference.std() > 0.1
    np.testing.assert_allclose(features["openvino"], reference, rtol=1e-4, atol=1e-4)


@needs_flowers
def test_openvino_f32_equals_tensorflow_for_vgg16_random_weights():
    files = _photos(12)
    settings = Settings("vgg16", "random", "flatten", 64)
    reference = _features(settings, files)
    got = _features(Settings("vgg16", "random", "flatten", 64, engine="openvino"), files)
    assert reference.shape == (12, 2048) and np.abs(reference).max() > 0
    np.testing.assert_allclose(got, reference, rtol=1e-4, atol=1e-5 * np.abs(reference).max())


@needs_flowers
def test_bf16_features_agree_with_f32(lite0_f32):
    try:
        engines.check("openvino", "bfloat16")
    except engines.EngineError as exc:
        pytest.skip(str(exc))
    files, features = lite0_f32
    bf16 = _features(Settings("efficientnet_lite0", "imagenet", "avg", 224,
                              engine="openvino", precision="bfloat16"), files)
    cosines = _cosines(bf16, features["openvino"])
    assert cosines.min() >= 0.99
    assert not np.array_equal(bf16, features["openvino"])  # bf16 did run, not f32


def test_second_mapper_reads_the_converted_model_back(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    settings = Settings("vgg16", "random", "avg", 32, engine="openvino")
    said: list[str] = []
    first = engines.build_mapper(settings, log=said.append)
    second = engines.build_mapper(settings, log=said.append)
    assert first.conversion_s is not None and first.conversion_s > 0
    assert second.conversion_s is None
    assert "converted vgg16 in" in said[0] and "using the converted vgg16" in said[1]
    assert engines.converted_model_dir(settings).is_relative_to(tmp_path)
    other = Settings("vgg16", "random", "avg", 48, engine="openvino")
    assert engines.converted_model_dir(other) != engines.converted_model_dir(settings)
    batch = np.random.default_rng(0).normal(size=(3, 32, 32, 3)).astype(np.float32)
    np.testing.assert_array_equal(first(batch), second(batch))
    assert first.attrs() == {"engine": "openvino", "precision": "float32",
                             "device": engines.cpu_model()}


def test_openvino_engine_without_openvino_is_a_one_line_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # `import openvino` now fails
    with pytest.raises(ImportError):
        import openvino  # noqa: F401
    with pytest.raises(engines.EngineError) as refused:
        engines.build_mapper(Settings("vgg16", "random", "avg", 32, engine="openvino"))
    message = str(refused.value)
    assert "\n" not in message
    assert "--engine openvino" in message and "pip install openvino" in message
    monkeypatch.setattr(engines, "gpu_count", lambda: 0)
    assert engines.resolve_engine("auto") == "tensorflow"  # auto takes what is there


@pytest.mark.parametrize("engine", ["tensorflow", "openvino"])
def test_float16_without_a_gpu_is_a_one_line_error(monkeypatch, engine):
    monkeypatch.setattr(engines, "gpu_count", lambda: 0)
    with pytest.raises(engines.EngineError) as refused:
        engines.check(engine, "float16")
    message = str(refused.value)
    assert "\n" not in message and "--precision float16" in message and "GPU" in message


def test_bfloat16_on_tensorflow_without_a_gpu_points_to_openvino(monkeypatch):
    monkeypatch.setattr(engines, "gpu_count", lambda: 0)
    with pytest.raises(engines.EngineError, match="use --engine openvino --precision bfloat16"):
        engines.check("tensorflow", "bfloat16")


def test_auto_is_tensorflow_with_a_gpu_and_openvino_without(monkeypatch):
    monkeypatch.setattr(engines, "gpu_count", lambda: 1)
    assert engines.resolve_engine("auto") == "tensorflow"
    monkeypatch.setattr(engines, "gpu_count", lambda: 0)
    assert engines.resolve_engine("auto") == "openvino"
    assert engines.resolve_engine("tensorflow") == "tensorflow"
    with pytest.raises(engines.EngineError, match="--engine onnx: choose one of auto"):
        engines.resolve_engine("onnx")


def test_predict_rebuilds_the_trained_engine_or_says_what_it_uses(monkeypatch):
    monkeypatch.setattr(engines, "gpu_count", lambda: 0)
    assert engines.for_prediction("openvino", "float32") == ("openvino", "float32", None)
    assert engines.for_prediction(None, None) == ("tensorflow", "float32", None)
    engine, precision, note = engines.for_prediction("tensorflow", "float16")
    assert (engine, precision) == ("tensorflow", "float32")
    assert "from tensorflow at float16" in note and "using tensorflow at float32" in note
    monkeypatch.setitem(sys.modules, "openvino", None)
    engine, precision, note = engines.for_prediction("openvino", "bfloat16")
    assert (engine, precision) == ("tensorflow", "float32")
    assert "OpenVINO is not installed" in note
    with pytest.raises(engines.EngineError, match="upgrade offtheshelf"):
        engines.for_prediction("tensorrt", "float32")


def test_bfloat16_on_a_cpu_without_bf16_instructions_is_refused(monkeypatch):
    monkeypatch.setattr(engines, "cpu_flags", lambda: {"avx2", "avx512f"})
    with pytest.raises(engines.EngineError) as refused:
        engines.check("openvino", "bfloat16")
    assert "no bf16 instructions (AMX or AVX512-BF16)" in str(refused.value)
    assert "use --precision float32" in str(refused.value)


class _TimedMapper:
    """A stand-in model that takes `seconds` per image."""

    feature_dim, on_gpu = 2, False

    def __init__(self, seconds: float):
        self.seconds = seconds

    def __call__(self, images):
        import time

        time.sleep(self.seconds * len(images))
        return np.zeros((len(images), 2), np.float32)


def test_reader_threads_measure_the_mapper(tmp_path, monkeypatch):
    files = [smooth_jpeg(tmp_path / f"p{i}.jpg", 400, 300) for i in range(3)]
    monkeypatch.setattr(reader, "cores", lambda: 16)
    assert engines.measure_rate(_TimedMapper(0.05), 64) < 25
    assert engines.reader_threads(_TimedMapper(0.05), files, 64) == 1
    assert engines.reader_threads(_TimedMapper(1e-5), files, 64) == 16
    gpu = _TimedMapper(1.0)
    gpu.on_gpu = True
    assert engines.reader_threads(gpu, files, 64) == 16


def _extract_here(tmp_path, monkeypatch, *args):
    from click.testing import CliRunner

    from extract.cli import main

    root = tmp_path / "data"
    if not root.exists():
        make_folder(root, classes=2, per_class=3)
    monkeypatch.chdir(tmp_path)
    return CliRunner().invoke(main, ["--dataset", str(root), "--backbone", "vgg16",
                                     "--weights", "random", "--image-size", "32", *args])


def test_a_change_of_engine_or_precision_makes_a_new_file(tmp_path, monkeypatch):
    from extract import cache

    monkeypatch.setattr(engines, "bf16_hardware", lambda flags: ["avx512_bf16"])
    runs = [("tensorflow", "float32"), ("openvino", "float32"), ("openvino", "bfloat16")]
    for engine, precision in runs:
        result = _extract_here(tmp_path, monkeypatch, "--engine", engine,
                               "--precision", precision)
        assert result.exit_code == 0, result.output
        assert "created:" in result.output
    found = cache.entries(tmp_path / "outputs" / "features")
    assert sorted((e.attrs["engine"], e.attrs["precision"]) for e in found) == sorted(runs)
    assert len({e.path.name for e in found}) == 3
    assert all(e.attrs["device"] for e in found)
    again = _extract_here(tmp_path, monkeypatch, "--engine", "openvino")
    assert "reused:" in again.output


def test_engine_and_precision_refusals_are_one_line_at_the_command(tmp_path, monkeypatch):
    monkeypatch.setattr(engines, "gpu_count", lambda: 0)
    half = _extract_here(tmp_path, monkeypatch, "--precision", "float16")
    assert half.exit_code == 1 and "--precision float16" in half.output
    monkeypatch.setitem(sys.modules, "openvino", None)
    missing = _extract_here(tmp_path, monkeypatch, "--engine", "openvino")
    assert missing.exit_code == 1 and "pip install openvino" in missing.output
    for result in (half, missing):
        errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1 and "Traceback" not in result.output
    assert not (tmp_path / "outputs" / "features").exists() or not list(
        (tmp_path / "outputs" / "features").glob("*.h5"))


def test_dropping_a_mapper_frees_its_model():
    import gc
    import weakref

    from extract.mapper import build_mapper

    mapper = build_mapper(Settings("vgg16", "random", "avg", SIZE))
    mapper(np.zeros((2, SIZE, SIZE, 3), np.float32))  # traced and run once
    model = weakref.ref(mapper.model)
    del mapper
    gc.collect()
    assert model() is None
