"""The atomic writer: nothing under the final name until the file is whole."""

import numpy as np

from extract.consolidate import FeatureFileWriter


def test_nothing_is_under_the_final_name_until_finish(tmp_path):
    path = tmp_path / "f.h5"
    writer = FeatureFileWriter(path, feature_dim=2, label_names=["a", "b"], attrs={},
                               buffer_size=2)
    for i in range(5):
        writer.add(np.ones(2, np.float32), 0, f"a/{i}.jpg")
    assert not path.exists() and writer.tmp.exists()
    writer.abandon()
    assert not path.exists() and not writer.tmp.exists()
