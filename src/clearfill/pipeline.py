"""The staged pipeline: a list of stages run in order over one ``State``.

Each stage is a small object with a ``name`` and a ``run(state)`` that reads the
fields earlier stages filled and fills its own; it declares them in ``needs``
(must be made before it), ``uses`` (read when an earlier stage made them, else
None) and ``makes``, and the pipeline checks the order when it is built (a
missing maker is an error then, not an AttributeError halfway through a run). A stage that has
nothing to do raises ``StageSkipped`` with the reason; the pipeline times every
stage, records what ran and what was skipped, and on request keeps each stage's
picture. Stages hold settings and pooled models (``models.pool``), so building a
pipeline is cheap once its models are loaded.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, ClassVar, Sequence

import numpy as np

from .errors import Cancelled, InvalidConfigError
from .imaging import composite, shrunk

if TYPE_CHECKING:
    from .detect.marks import Overlay


class StageSkipped(Exception):
    """Raised by a stage that has nothing to do; the message says why."""


@dataclass(frozen=True)
class CropRecord:
    """Where the context crop sits and what the later stages need to stitch it back.

    ``box`` = (x0, y0, x1, y1) in image coordinates, end-exclusive; it lies inside
    the image unless the context is larger than the image, in which case the crop
    is edge-replicated beyond the borders. All arrays are the crop's size.
    """

    box: tuple[int, int, int, int]
    image: np.ndarray  # the removed image, cropped (float32 H x W x 3)
    hole: np.ndarray  # bool: pixels to fill
    refine_mask: np.ndarray  # float32: where a refiner may change pixels (softened hole)
    blend_mask: np.ndarray  # float32: weight of the result when stitching (feathered hole)

    @property
    def size(self) -> tuple[int, int]:
        return self.image.shape[1], self.image.shape[0]

    def inside(self, image_size: tuple[int, int]) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
        """(slices into the image, slices into the crop) of the part of the box inside the image."""
        width, height = image_size
        x0, y0, x1, y1 = self.box
        ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        return (
            (slice(iy0, iy1), slice(ix0, ix1)),
            (slice(iy0 - y0, iy1 - y0), slice(ix0 - x0, ix1 - x0)),
        )


class Progress:
    """Where a run says what it is doing (stage start and end, refiner steps, SR
    tiles) and how it is told to stop: every report checks ``cancel`` first and
    raises Cancelled once it is set."""

    def __init__(self, listener: Callable[[dict], None] | None = None, cancel: threading.Event | None = None):
        self.listener, self.cancel = listener, cancel

    def check(self) -> None:
        """Raise Cancelled if the run was told to stop (between two long steps)."""
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled("cancelled")

    def report(self, kind: str, **fields) -> None:
        self.check()
        if self.listener is not None:
            self.listener({"type": kind, **fields})

    def steps(self, stage: str) -> Callable[[int, int], None]:
        """A ``(done, total)`` callback for a stage's inner loop."""
        return lambda done, total: self.report("progress", stage=stage, step=done, total=total)


@dataclass
class State:
    """Everything the stages read and write.

    The caller's arrays are never written to: a stage that changes ``image`` or ``mask``
    puts a new array in its place. ``image`` is the photo the fill works from: the
    input, or after the unblend stage the input with a semi-transparent mark undone
    (where ``unblended``). The stitch keeps every pixel farther than the crop's
    ``seam_reach`` from the hole identical to that ``image``: the input's own pixels
    everywhere a mark was not undone.
    """

    image: np.ndarray  # float32 H x W x 3: the input, then (unblend) the input with the mark undone
    mask: np.ndarray  # float32 H x W, the user's mask as given (1 = remove), then what unblend left to fill
    seed: int = 0
    overlay: Overlay | None = None  # a semi-transparent mark found on the image, for the unblend stage
    unblended: np.ndarray | None = None  # bool H x W: pixels recovered by undoing the overlay
    hole: np.ndarray | None = None  # bool H x W after mask preparation
    removed: np.ndarray | None = None  # full image with the hole filled by the remover
    crop: CropRecord | None = None
    working: np.ndarray | None = None  # the crop at the refiner's working size
    working_mask: np.ndarray | None = None
    refined: np.ndarray | None = None  # the refiner's output at working size
    guard: list = field(default_factory=list)  # guard scores of the refinement candidates
    guard_choice: int | None = None  # seed of the candidate kept
    output: np.ndarray | None = None  # the final image
    notes: dict[str, str] = field(default_factory=dict)  # stage name -> what it did, in words
    progress: Progress = field(default_factory=Progress)

    @property
    def size(self) -> tuple[int, int]:
        return self.image.shape[1], self.image.shape[0]


INPUTS = ("image", "mask", "seed", "overlay")  # the State fields every run starts with (overlay may be None)


class Stage(ABC):
    """One step of the pipeline. Subclasses set ``name``, the State fields they read
    (``needs``) and fill (``makes``), and implement ``run``."""

    name: ClassVar[str]
    needs: ClassVar[tuple[str, ...]] = ()
    uses: ClassVar[tuple[str, ...]] = ()  # read if an earlier stage made them (else they are None)
    makes: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def run(self, state: State) -> None:
        """Read earlier fields of ``state``, fill this stage's own; raise StageSkipped if idle."""

    def picture(self, state: State) -> np.ndarray | None:
        """The picture that shows what this stage did (for --save-stages), or None."""
        return None


@dataclass(frozen=True)
class StageRecord:
    name: str
    ran: bool
    seconds: float
    note: str = ""  # what it did, or why it was skipped


@dataclass
class Run:
    """What a pipeline run produced: the final pixels and the record of every stage."""

    output: np.ndarray
    records: list[StageRecord]
    pictures: dict[str, np.ndarray]
    state: State


class Pipeline:
    """Runs stages in order. An empty hole after mask preparation ends the run early
    with the input unchanged."""

    def __init__(self, stages: Sequence[Stage], config=None):
        names = [stage.name for stage in stages]
        if len(set(names)) != len(names):
            raise InvalidConfigError(f"stage names must be unique, got {names}")
        available, fields = set(INPUTS), {f.name for f in dataclasses.fields(State)}
        for stage in stages:
            unknown = [name for name in (*stage.needs, *stage.uses, *stage.makes) if name not in fields]
            if unknown:
                raise InvalidConfigError(f"stage {stage.name!r} names {', '.join(unknown)}, which State has not")
            missing = [field for field in stage.needs if field not in available]
            if missing:
                raise InvalidConfigError(
                    f"stage {stage.name!r} needs {' and '.join(missing)}, which no stage before it makes "
                    f"(stages: {', '.join(names)})")
            available.update(stage.makes)
        self.stages = list(stages)
        self.config = config  # the PipelineConfig it was built from, if any

    def run(self, state: State, *, keep_pictures: bool = False, picture_side: int | None = None) -> Run:
        """Run every stage over ``state``. ``keep_pictures``: keep each stage's picture,
        at most ``picture_side`` pixels long when given (previews, made as each stage
        ends, so a large photo's full-size pictures are never all held at once)."""
        records: list[StageRecord] = []
        pictures: dict[str, np.ndarray] = {}
        for stage in self.stages:
            if state.hole is not None and not state.hole.any():
                records.append(StageRecord(stage.name, False, 0.0, "mask is empty: nothing to remove"))
                continue
            state.progress.report("stage", stage=stage.name, status="start")
            start = time.perf_counter()
            try:
                stage.run(state)
            except StageSkipped as skipped:
                records.append(StageRecord(stage.name, False, time.perf_counter() - start, str(skipped)))
            else:
                records.append(StageRecord(stage.name, True, time.perf_counter() - start,
                                           state.notes.get(stage.name, "")))
            record = records[-1]
            state.progress.report("stage", stage=stage.name, status="end", ran=record.ran,
                                  seconds=round(record.seconds, 4), note=record.note)
            if keep_pictures and record.ran:
                picture = self._picture(stage, state, picture_side)
                if picture is not None:
                    pictures[stage.name] = picture
        output = state.output if state.output is not None else self._fallback_output(state)
        return Run(output=output, records=records, pictures=pictures, state=state)

    def pictures(self, run: Run, side: int | None = None) -> dict[str, np.ndarray]:
        """Each stage's picture made after the run, from its final state (the same as
        made when the stage ended: a stage only fills its own fields, and what unblend
        replaces, image and mask, no later stage touches), so a caller can hand the
        output over first."""
        ran = {record.name for record in run.records if record.ran}
        made = {stage.name: self._picture(stage, run.state, side) for stage in self.stages if stage.name in ran}
        return {name: picture for name, picture in made.items() if picture is not None}

    @staticmethod
    def _picture(stage: Stage, state: State, side: int | None) -> np.ndarray | None:
        picture = stage.picture(state)
        return picture if picture is None or side is None else shrunk(picture, side)

    @staticmethod
    def _fallback_output(state: State) -> np.ndarray:
        """Without a stitch stage, the removed image (inside the hole only), else the input."""
        if state.removed is not None and state.hole is not None:
            return composite(state.image, state.removed, state.hole.astype(np.float32))
        return state.image.copy()
