"""Damaged part files: truncated at a random byte, bytes flipped anywhere, bytes flipped
inside the features' data (found with h5py's dataset.id.get_offset(), so no flip can
land in dead space by luck). Each damaged part is found and computed again; it is
never consolidated into the feature file. The real engine, synthetic rows (synthetic.py).
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import h5py
import pytest

from extract import extraction, featurefile, parts
from extract.distributor import ShardJob
from extract.shard import ShardResult
from tests.helpers.faultkit import contents, differences, rows_lost
from tests.helpers.synthetic import SyntheticRows, add_images, extract_once

TRIALS = 20


class StopsAfter(SyntheticRows):
    """Ctrl-C after `limit` shards: their parts are kept, the rest never written."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit = limit

    def run(self, jobs: list[ShardJob], progress: Callable[[int], None]
            ) -> Iterator[ShardResult]:
        for done, result in enumerate(super().run(jobs, progress), start=1):
            yield result
            if done == self.limit:
                raise KeyboardInterrupt


class FirstDoes(SyntheticRows):
    """Runs `action` before the shards: after the runner's checks, before consolidation."""

    def __init__(self, action: Callable[[], None]):
        super().__init__()
        self.action = action

    def run(self, jobs: list[ShardJob], progress: Callable[[int], None]
            ) -> Iterator[ShardResult]:
        self.action()
        yield from super().run(jobs, progress)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A folder (3 shards), its uninterrupted file, and the two parts a Ctrl-C kept."""
    base = tmp_path_factory.mktemp("parts")
    root = add_images(base / "images", 0, 15)
    reference = base / "reference.h5"
    extract_once(root, reference)
    stopped = base / "stopped.h5"
    with pytest.raises(KeyboardInterrupt):
        extract_once(root, stopped, distributor=StopsAfter(2))
    kept = sorted(parts.folder(stopped).glob("*.h5"))
    assert len(kept) == 2 and not stopped.exists()
    shards = {}
    for part in kept:
        with h5py.File(part, "r") as f:
            shards[part.name] = featurefile.text(f["paths"]) + featurefile.text(f["skipped"])
    return {"root": root, "reference": reference, "want": contents(reference),
            "kept": parts.folder(stopped), "shards": shards}


def _with_kept_parts(setup: dict, out: Path) -> list[Path]:
    """`out`'s parts folder as the Ctrl-C left it: the two complete parts."""
    folder = parts.folder(out)
    shutil.copytree(setup["kept"], folder)
    (folder / ".lock").unlink(missing_ok=True)
    return sorted(folder.glob("*.h5"))


def truncate(path: Path, rng: random.Random) -> None:
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(rng.randrange(1, size))


def flip_anywhere(path: Path, rng: random.Random) -> None:
    data = bytearray(path.read_bytes())
    for at in rng.sample(range(len(data)), 3):
        data[at] ^= 0xFF
    path.write_bytes(bytes(data))


def flip_in_features(path: Path, rng: random.Random) -> None:
    """One byte inside the stored rows: only the part's digest can notice."""
    with h5py.File(path, "r") as f:
        features = f["features"]
        chunks = [features.id.get_chunk_info(i) for i in range(features.id.get_num_chunks())]
    chunk = rng.choice(chunks)
    at = chunk.byte_offset + rng.randrange(chunk.size)
    with open(path, "r+b") as f:
        f.seek(at)
        byte = f.read(1)[0]
        f.seek(at)
        f.write(bytes([byte ^ 0x40]))


DAMAGE = {"truncated at a random byte": truncate, "3 random bytes flipped": flip_anywhere,
          "a byte of the rows flipped": flip_in_features}


def _unchanged(part: Path, original: Path, key: str) -> bool:
    """Whether the damage left what the part holds as it was (it hit unused bytes)."""
    try:
        got = parts.read(part, key=key)
    except featurefile.FeatureFileError:
        return False
    want = parts.read(original, key=key)
    return (got[0] == want[0]).all() and got[1:3] == want[1:3]


@pytest.mark.parametrize("damage", DAMAGE)
def test_damaged_part_is_computed_again(damage: str, setup: dict, tmp_path: Path,
                                        ledger) -> None:
    """Damaged before the rerun looks at it: the rerun skips only the intact part."""
    rng = random.Random(f"skip {damage}")
    detected = harmless = 0
    for trial in range(TRIALS):
        out = tmp_path / f"t{trial}" / "features.h5"
        kept = _with_kept_parts(setup, out)
        victim = rng.choice(kept)
        key = featurefile.read_attrs(victim)["shard_key"]
        DAMAGE[damage](victim, rng)
        unchanged = _unchanged(victim, setup["kept"] / victim.name, key)
        rerun = SyntheticRows()
        outcome = extract_once(setup["root"], out, distributor=rerun)
        computed = {p for shard in rerun.computed for p in shard}
        intact = [p for p in kept if p != victim]
        lost = rows_lost(contents(out), setup["want"])
        ledger.record(f"part {damage}", recovered=lost == 0, rows_lost=lost)
        assert differences(contents(out), setup["want"]) == []
        assert outcome.action == "resumed"
        for part in intact:  # the good part is used, not computed again
            assert not computed & set(setup["shards"][part.name])
        if unchanged:  # the flip hit bytes that hold nothing: the part is still whole
            harmless += 1
        else:
            detected += 1
            assert set(setup["shards"][victim.name]) <= computed
        assert not parts.folder(out).exists()
    if damage == "3 random bytes flipped":
        assert detected >= TRIALS // 2, (detected, harmless)
    else:
        assert (detected, harmless) == (TRIALS, 0)


@pytest.mark.parametrize("damage", DAMAGE)
def test_part_damaged_after_the_check_is_never_consolidated(
    damage: str, setup: dict, tmp_path: Path, ledger
) -> None:
    """Damaged while the other shards run (after the rerun found it complete): the
    consolidation's own digest check refuses it, nothing is written under the final
    name, and the next run computes it again."""
    rng = random.Random(f"late {damage}")
    for trial in range(TRIALS // 4):
        out = tmp_path / f"t{trial}" / "features.h5"
        kept = _with_kept_parts(setup, out)
        victim = rng.choice(kept)
        original = setup["kept"] / victim.name
        key = featurefile.read_attrs(victim)["shard_key"]

        def damage_it(victim: Path = victim, original: Path = original,
                      key: str = key) -> None:
            while _unchanged(victim, original, key):  # a real change of its content
                shutil.copy(original, victim)
                DAMAGE[damage](victim, rng)

        with pytest.raises(featurefile.FeatureFileError) as refused:
            extract_once(setup["root"], out, distributor=FirstDoes(damage_it))
        message = str(refused.value)
        assert message.startswith(f"{victim}: ") and "\n" not in message, message
        accepted = int(out.exists())
        assert not out.exists() and not out.with_name(out.name + ".tmp").exists()

        rerun = SyntheticRows()
        extract_once(setup["root"], out, distributor=rerun)
        lost = rows_lost(contents(out), setup["want"])
        ledger.record(f"part {damage} after the check", recovered=lost == 0,
                      rows_lost=lost, partial_accepted=accepted)
        assert differences(contents(out), setup["want"]) == []
        assert set(setup["shards"][victim.name]) <= {p for s in rerun.computed for p in s}


def test_killed_between_rename_and_clean_up(setup: dict, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch, ledger) -> None:
    """The file is in place, its parts and lock not yet removed: the rerun reuses the
    file and removes them (no parts folder or .lock stays beside it)."""
    out = tmp_path / "features.h5"

    def dies(output: Path) -> None:
        raise SystemExit("killed")

    with monkeypatch.context() as patch:
        patch.setattr(extraction, "remove_parts", dies)
        with pytest.raises(SystemExit):
            extract_once(setup["root"], out)
    assert len(list(parts.folder(out).glob("*.h5"))) == 3
    outcome = extract_once(setup["root"], out)
    ledger.record("killed between rename and clean-up",
                  recovered=outcome.action == "reused" and not parts.folder(out).exists())
    assert outcome.action == "reused"
    assert not parts.folder(out).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["features.h5"]
    assert differences(contents(out), setup["want"]) == []
