"""The reader: DCT-scaled JPEG decoding and thread sizing."""

import numpy as np
from PIL import Image

from extract import reader
from tests.helpers.imagefolders import smooth_jpeg


def _read(files: list[str], size: int) -> np.ndarray:
    batches = reader.image_batches(files, size=size, batch_size=4, preprocess=lambda x: x)
    return np.concatenate([images.numpy() for _, images in batches])


def test_large_jpegs_decode_scaled_and_small_ones_exactly(tmp_path):
    import tensorflow as tf

    small = smooth_jpeg(tmp_path / "small.jpg", 120, 90)  # 90 < 1.5 x 64: decoded at full scale
    large = smooth_jpeg(tmp_path / "large.jpg", 1600, 1200)  # 1200 / 8 >= 96: decoded at 1/8
    got = _read([small, large], 64)
    full = tf.io.decode_image(tf.io.read_file(small), channels=3, expand_animations=False)
    np.testing.assert_array_equal(got[0], tf.image.resize(full, (64, 64)).numpy())
    # The reference is the photo shrunk with an antialiasing filter: DCT scaling is
    # about that, bilinear resizing of the full-scale photo alone is not.
    reference = np.asarray(Image.open(large).resize((64, 64), Image.BOX), dtype=np.float32)
    assert np.abs(got[1] - reference).mean() < 3.0
    eighth = tf.io.decode_jpeg(tf.io.read_file(large), channels=3, ratio=8)
    np.testing.assert_array_equal(got[1], tf.image.resize(eighth, (64, 64)).numpy())


def test_reader_threads_follow_the_model_rate_up_to_the_cores(tmp_path, monkeypatch):
    files = [smooth_jpeg(tmp_path / f"p{i}.jpg", 400, 300) for i in range(3)]
    monkeypatch.setattr(reader, "cores", lambda: 16)
    per_image = reader.decode_seconds(files, 64)
    assert 0 < per_image < 1
    slow = reader.balanced_threads(files, 64, 0.2 / per_image)
    fast = reader.balanced_threads(files, 64, 6 / per_image)
    assert slow == 1 and 3 <= fast <= 16
    assert reader.balanced_threads(files, 64, 1e9) == 16
    assert reader.balanced_threads(files, 64, 1.0, on_gpu=True) == 16

