"""The feature cache: file names carry a digest of the settings that make the rows."""

from extract import cache
from extract.backbones import registry


def test_file_names_carry_a_digest_of_the_identity(tmp_path):
    identity = {key: "x" for key in cache.identity_keys()}
    name = cache.file_name("../A/train", "vgg16", "avg", identity)
    assert name.startswith("train-vgg16-avg-") and len(name) == len("train-vgg16-avg-") + 11
    other = cache.file_name("../B/train", "vgg16", "avg", {**identity, "dataset_root": "B"})
    assert other != name
    assert cache.differences({**identity, "input_size": 64}, identity) == ["input_size 64 vs x"]


def test_how_random_weights_are_drawn_names_their_files_and_no_other(tmp_path):
    """Files of imagenet weights keep the names they had before random_init existed;
    files of random weights get new ones (an older scheme drew another network)."""
    before = {key: "x" for key in cache.identity_keys() if key != "random_init"}
    imagenet = {**before, "weights": "imagenet", "random_init": registry.random_init("imagenet")}
    assert imagenet["random_init"] is None
    assert cache.digest(imagenet) == cache.digest({**imagenet, "random_init": None})
    old_random = {**before, "weights": "random", "random_init": None}
    random = {**old_random, "random_init": registry.random_init("random")}
    assert cache.digest(random) != cache.digest(old_random)
    assert cache.differences(cache.identity_of({**old_random}), random) == [
        f"random_init None vs {registry.RANDOM_INIT}"]
