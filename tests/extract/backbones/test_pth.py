"""The torch-free .pth reader: it unpickles tensors and nothing else."""

import pickle

import pytest

from extract.backbones import pth


def test_reader_refuses_anything_but_tensors(tmp_path):
    """A pickle naming any other global is refused rather than executed."""
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        for header in (pth.MAGIC_NUMBER, pth.PROTOCOL_VERSION,
                       {"little_endian": True}):
            pickle.dump(header, f, protocol=2)
        f.write(b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00trueq\x00\x85R.")
    with pytest.raises(pth.TorchFileError, match="refusing to unpickle os.system"):
        pth.load_state_dict(path)
