"""The runner: one extraction, from a scanned folder to a complete feature file.

Under the output's lock it decides what to do: reuse a complete file with the same
identity and images; otherwise plan the rows still to compute (an earlier file with the
same settings lends the rows of unchanged images), skip the shards whose parts are
already complete, run the rest on a distributor, and consolidate everything into the
file, which is written aside and renamed into place. The previous file stays
readable until then; a file of other settings or another folder is never replaced.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, TextIO

from filelock import FileLock, Timeout
from tqdm import tqdm

from common.text import timings
from extract import cache, featurefile, parts
from extract.backbones import registry
from extract.consolidate import Reused, consolidate, remove_parts, reusable_rows
from extract.distributor import Distributor, Sequential, ShardJob
from extract.featurefile import Extractor, Role
from extract.plan import ROW_ORDER, Plan, Shard, plan, shards
from extract.scan import LabelFile, Scan
from extract.settings import RunOptions, Settings

# Images per shard: a kill loses at most one shard, under a minute of CPU work for the
# slowest common backbone (VGG16 on two cores); for fast ones, seconds.
DEFAULT_SHARD_SIZE = 384


class OutputLockedError(featurefile.FeatureFileError):
    """Another extract is writing the same output file."""


@dataclass(frozen=True)
class Outcome:
    """What one run did, for the summary line."""

    path: Path
    action: str  # reused, created, updated (changed images), resumed
    rows: int
    skipped: list[str]
    feature_dim: int
    seconds: float
    computed: int = 0  # images this run put through the model
    reused_rows: int = 0  # rows copied from the earlier file
    resumed_rows: int = 0  # images an interrupted run had computed (its finished parts)
    startup: float = 0.0  # building the model (loading TensorFlow, weights, conversion)
    working: float = 0.0  # the shards' own time

    def summary(self) -> str:
        size_mb = self.path.stat().st_size / 1e6
        head = (f"{self.action}: {self.rows} rows, {len(self.skipped)} skipped, "
                f"{self.feature_dim} features, {self.path} ({size_mb:.1f} MB)")
        if self.action == "reused":
            return f"{head}; {self.seconds:.1f} s"
        resumed = (f", {self.resumed_rows} from the interrupted run's parts"
                   if self.resumed_rows else "")
        counts = f"{head}; {self.computed} computed{resumed}, {self.reused_rows} reused"
        if not self.computed:  # no model ran: no start-up, and no rate to give
            return f"{counts}; {self.seconds:.1f} s"
        return (f"{counts}; "
                f"{timings(self.seconds, self.startup, self.working, self.computed, 'extraction')}")


def identity(settings: Settings, the_plan: Plan) -> dict[str, Any]:
    """Everything that decides the rows (extract.cache.identity). A model file is named
    by its stem; its sha256 (the settings' weights) and its preprocessing and output
    are its settings' own."""
    own = settings.is_model_file
    return cache.identity(str(the_plan.root), Extractor(
        backbone=settings.name,
        weights=settings.weights if own else registry.weights_identity(settings.weights),
        preprocessing=(settings.preprocessing if own
                       else registry.preprocessing_name(settings.backbone)),
        pooling=settings.pooling,
        input_size=settings.input_size,
        dtype=settings.dtype,
        engine=settings.engine,
        precision=settings.precision,
        random_init=registry.random_init(settings.weights),
        model_output=settings.model_output,
    ), the_plan.label_file.identity() if the_plan.label_file else None)


def default_output(features_dir: Path, dataset_name: str, settings: Settings,
                   the_plan: Plan) -> Path:
    return features_dir / cache.file_name(dataset_name, settings.name, settings.pooling,
                                          identity(settings, the_plan))


@contextmanager
def locked(output: Path) -> Iterator[None]:
    """The output's writer lock, for the whole run, decisions included.

    It lives in the parts folder, which goes once the file is complete, so no lock
    file stays beside a finished feature file. filelock falls back to an existence lock
    where the filesystem has no flock.
    """
    where = parts.folder(output)
    where.mkdir(parents=True, exist_ok=True)
    lock = FileLock(where / ".lock", timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise OutputLockedError(f"{output}: another extract is writing this file; wait for "
                                "it to finish, or pick another --output") from None
    try:
        yield
    finally:
        lock.release()
        if {p.name for p in where.iterdir()} <= {".lock", parts.RUN_RECORD}:
            (where / parts.RUN_RECORD).unlink(missing_ok=True)  # no part: nothing to resume
            (where / ".lock").unlink(missing_ok=True)
            where.rmdir()


def previous_file(output: Path, wanted: dict[str, Any], force: bool,
                  label_file: LabelFile | None = None) -> dict[str, Any] | None:
    """The attributes of the complete file of the same identity at `output`, if any.

    Anything else there is left alone with a one-line error (never counted as stale):
    another identity, an unreadable file (perhaps a passing I/O error), an old partial
    file. `--force` replaces whatever is there.
    """
    if force or not output.exists():
        return None
    try:
        attrs = featurefile.read_attrs(output)
    except featurefile.FeatureFileError as exc:
        raise featurefile.FeatureFileError(f"{exc}; it is left as it is: move it away, or pass "
                                     "--force to replace it") from None
    if attrs.get("complete") is not True:
        raise featurefile.FeatureFileError(f"{output}: a partial file from an older offtheshelf; "
                                     "pass --force to replace it")
    differ = _differences(attrs, wanted, label_file)
    if differ:
        raise featurefile.FeatureFileError(
            f"{output}: holds features of other settings ({'; '.join(differ)}); pick "
            "another --output, or pass --force to replace it")
    return attrs


def other_settings(output: Path, wanted: dict[str, Any],
                   label_file: LabelFile | None = None) -> list[str]:
    """Notes on the files beside `output` of the same folder and backbone: why a new
    file is made instead of using one of them. Those that differ only in their labels
    are left to `labelled_otherwise`, whose rows are reused."""
    notes = []
    for entry in cache.entries(output.parent):
        have = cache.identity_of(entry.attrs)
        if (entry.path != output and have["dataset_root"] == wanted["dataset_root"]
                and have["backbone"] == wanted["backbone"]):
            if _labels_alone_differ(have, wanted):
                continue
            differ = "; ".join(_differences(entry.attrs, wanted, label_file))
            if differ:
                notes.append(f"note: {entry.path.name} has this folder and backbone with "
                             f"other settings ({differ}); it is kept, and a new file is made")
            else:
                notes.append(f"note: {entry.path.name} has this folder with these settings "
                             f"under a name of its own; it is kept, and {output.name} is made "
                             f"(--output {entry.path} would use it)")
    return notes


def _labels_alone_differ(have: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Whether two identities differ in their label file only: their rows are the same."""
    return (not cache.differences(have, wanted, labels=False)
            and bool(cache.differences(have, wanted)))


def _differences(attrs: dict[str, Any], wanted: dict[str, Any],
                 label_file: LabelFile | None) -> list[str]:
    """The settings a file's `attrs` hold otherwise than this run's, its label file named
    rather than shown as a sha256."""
    have = cache.identity_of(attrs)
    differ = cache.differences(have, wanted, labels=False)
    if len(cache.differences(have, wanted)) > len(differ):
        theirs, ours = _label_sources(attrs, label_file)
        differ.append(f"labels from {theirs} vs {ours}")
    return differ


def _label_sources(attrs: dict[str, Any], label_file: LabelFile | None) -> tuple[str, str]:
    """Where a file's labels came from and where this run's come from, worded so that
    the two differ: an edited label file is the earlier version of itself."""
    theirs = attrs.get("labels_file")
    ours = label_file.path if label_file else None
    if label_file is not None and theirs == ours:
        name = Path(label_file.path).name
        if attrs.get("labels_sha256") != label_file.sha256:
            return f"an earlier version of {name}", name
        return (f"{name} read as {attrs.get('labels_columns')}",
                f"{name} read as {label_file.columns}")
    if theirs and ours and Path(theirs).name == Path(ours).name:
        return str(theirs), str(ours)
    return (Path(theirs).name if theirs else "class folders",
            Path(ours).name if ours else "class folders")


def labelled_otherwise(output: Path, the_plan: Plan, wanted: dict[str, Any],
                       log: Callable[[str], None]) -> Reused | None:
    """The rows of unchanged images held by a file beside `output` of this folder and
    these settings whose labels came from elsewhere (the rows depend on the images and
    the extractor alone): of the file that holds the most. One note names the files."""
    others = [entry for entry in cache.entries(output.parent)
              if entry.path != output
              and _labels_alone_differ(cache.identity_of(entry.attrs), wanted)]
    if not others:
        return None
    # The most recently used file first among those that lend as many rows.
    reused, donor = max(((reusable_rows(entry.path, the_plan), entry) for entry in others),
                        key=lambda found: len(found[0].rows))
    theirs, ours = _label_sources(donor.attrs, the_plan.label_file)
    more = len(others) - 1
    kept = ("it is kept" if not more else
            f"it and {more} more file{'s' if more > 1 else ''} labelled otherwise are kept")
    log(f"note: {donor.path.name} has this folder with these settings, labelled from "
        f"{theirs} (this run: {ours}); {kept}, and a new file is made")
    return reused if reused.rows else None


def _clear_parts(where: Path, keep: list[Path]) -> None:
    """Delete unfinished parts and parts of another plan; they can never be used."""
    if where.is_dir():
        for stale in set(where.glob("*.h5*")) - set(keep):
            stale.unlink()


def run(
    scan: Scan,
    settings: Settings,
    output: Path,
    *,
    options: RunOptions | None = None,
    dataset_name: str = "",
    distributor: Distributor | None = None,
    log: Callable[[str], None] = print,
    progress: bool = True,
    command: str | None = None,
) -> Outcome:
    """Extract (or reuse, or update, or resume) the features of `scan` into `output`.

    Without a `distributor` the shards run here, through one mapper built only when
    there is work to do (TensorFlow loads then). `command`: the command line that runs
    this, kept beside the parts so that `extract --list` shows how to resume it.
    """
    options = options or RunOptions()
    started = time.perf_counter()
    the_plan = plan(scan)
    wanted = identity(settings, the_plan)
    with locked(output):
        previous = previous_file(output, wanted, options.force, the_plan.label_file)
        # A file of the same folder read before split folders were known holds the split
        # names as classes: same images, other labels.
        if (previous is not None and previous.get("dataset_fingerprint") == the_plan.fingerprint
                and previous.get(featurefile.SPLIT_SOURCE) == the_plan.split_source):
            log(f"{output}: features for these images and settings exist; reusing "
                "(--force extracts again)")
            remove_parts(output)  # a run killed between its rename and its clean-up
            note = cache.mark_used(output)
            if note:
                log(note)
            return Outcome(output, "reused", int(previous["n_written"]),
                           featurefile.read_skipped(output), int(previous["feature_dim"]),
                           time.perf_counter() - started)
        # Only a file under the cache's own name is made in place of another one: a
        # file named with --output was asked for as it is.
        cache_named = output.name == cache.file_name(dataset_name, settings.name,
                                                      settings.pooling, wanted)
        reused = reusable_rows(output, the_plan) if previous is not None else None
        if cache_named and not (previous or output.exists()):
            for note in other_settings(output, wanted, the_plan.label_file):
                log(note)
            lent = labelled_otherwise(output, the_plan, wanted, log)
            reused = None if options.force else lent
        todo = [i for i in range(len(the_plan)) if reused is None or i not in reused.rows]
        planned = shards(the_plan, todo, identity=cache.digest(wanted),
                         batch_size=options.batch_size,
                         shard_size=options.shard_size or DEFAULT_SHARD_SIZE)
        where = parts.folder(output)
        part_paths = [where / shard.name for shard in planned]
        _clear_parts(where, [] if options.force else part_paths)
        pending = [(shard, part) for shard, part in zip(planned, part_paths)
                   if not parts.is_complete(part, key=shard.key)]
        if previous is not None:
            why = ("the images changed"
                   if previous.get(featurefile.SPLIT_SOURCE) == the_plan.split_source
                   else "written before its split folders were read as a split")
            log(f"{output}: {why}; {len(reused.rows) if reused else 0} rows "
                f"are reused, {len(todo)} images go through the model")
        elif reused is not None:
            log(f"{output}: {len(reused.rows)} rows are reused from {reused.path.name}, "
                f"{len(todo)} images go through the model")
        if len(pending) < len(planned):
            log(f"{output}: resuming: {len(planned) - len(pending)} of {len(planned)} "
                f"shards are already in {where}/")
        if pending:
            parts.record_run(output, {"dataset": dataset_name, "command": command,
                                      "identity": wanted})
        startup, working = _compute(pending, settings, options, distributor, progress, log)
        # The identity is the settings' own: a part's attributes add only the device,
        # the feature size and the versions that computed it.
        attrs = {**_mapper_attrs(planned, part_paths, reused.path if reused else output),
                 **{key: value for key, value in wanted.items() if value is not None},
                 "dataset": dataset_name, "dataset_fingerprint": the_plan.fingerprint,
                 "n_images": len(the_plan), "row_order": ROW_ORDER,
                 "identity": cache.digest(wanted),
                 "n_reused": len(reused.rows) if reused else 0, "n_computed": len(todo),
                 **({"labels_file": the_plan.label_file.path} if the_plan.label_file else {}),
                 **({featurefile.SPLIT_SOURCE: the_plan.split_source}
                    if the_plan.split_source else {})}
        done = consolidate(output, the_plan, list(zip(planned, part_paths)), reused,
                           feature_dim=int(attrs["feature_dim"]), attrs=attrs,
                           buffer_size=options.buffer_size,
                           compression=options.compression)
        remove_parts(output)
    action = ("resumed" if len(pending) < len(planned)
              else "updated" if previous is not None else "created")
    return Outcome(output, action, done.rows, done.skipped, int(attrs["feature_dim"]),
                   time.perf_counter() - started,
                   computed=sum(len(shard.rows) for shard, _ in pending),
                   reused_rows=len(reused.rows) if reused else 0,
                   resumed_rows=sum(len(shard.rows) for shard in planned)
                   - sum(len(shard.rows) for shard, _ in pending),
                   startup=startup, working=working)


def _compute(pending: list[tuple[Shard, Path]], settings: Settings, options: RunOptions,
             distributor: Distributor | None, progress: bool, log: Callable[[str], None]
             ) -> tuple[float, float]:
    """Run the pending shards; (seconds building the mapper, seconds of shard work)."""
    if not pending:
        return 0.0, 0.0
    started = time.perf_counter()
    if distributor is None:
        from extract.mapper import build_mapper

        distributor = Sequential(build_mapper(settings, log=log))
    built = time.perf_counter()
    jobs = [ShardJob(shard, part, settings, options) for shard, part in pending]
    with WarmedUpBar(sum(len(shard.rows) for shard, _ in pending), settings.name,
                     disable=None if progress else True) as bar:  # None: hidden off a terminal
        for _ in distributor.run(jobs, bar.update):
            pass
    return built - started, time.perf_counter() - built


class WarmedUpBar:
    """The progress bar, timed from the end of the first batch.

    The first batch carries the warm-up (the reader's measurements, tracing or compiling
    the forward pass): counted in, it made the first estimates many times too slow. Until
    it ends the bar says it is warming up; then a timed bar takes over, the first batch's
    images counted as done before it started.
    """

    def __init__(self, total: int, label: str, *, disable: bool | None = None,
                 file: TextIO | None = None):
        self.label = label
        self.options = {"total": total, "unit": "img", "dynamic_ncols": True,
                        "disable": disable, "file": file}
        self.bar = tqdm(desc=f"{label} (warming up)", leave=False, **self.options)
        self.timed = False

    def update(self, images: int) -> None:
        if self.timed:
            self.bar.update(images)
            return
        self.bar.close()
        self.bar = tqdm(desc=self.label, initial=images, **self.options)
        self.timed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()


def _mapper_attrs(planned: list[Shard], part_paths: list[Path], earlier: Path
                  ) -> dict[str, Any]:
    """How the rows were computed, from a part (or, with no part, the earlier file)."""
    source = part_paths[0] if planned else earlier
    return Extractor.from_attrs(featurefile.read_attrs(source)).to_attrs(Role.RUNTIME)
