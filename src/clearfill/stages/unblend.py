"""Undo a semi-transparent mark (``detect.marks.Overlay``) where the photo under it
can be recovered, and leave only the rest of the mask to the fill."""

from __future__ import annotations

import numpy as np

from ..pipeline import Stage, StageSkipped, State


class UnblendStage(Stage):
    name = "unblend"
    needs = ("image", "mask", "overlay")
    makes = ("image", "mask", "unblended")

    def run(self, state: State) -> None:
        overlay = state.overlay
        if overlay is None:
            raise StageSkipped("no semi-transparent mark to undo")
        recovered, unreliable = overlay.undo(state.image)
        state.image = recovered  # its faint edge too, below what counts as visible: else a dotted outline stays
        state.unblended = overlay.reach & ~unreliable
        state.mask = np.where(state.unblended, 0.0, state.mask).astype(np.float32)
        state.notes[self.name] = (f"undid {overlay.describe()} over {int(state.unblended.sum())} px; "
                                  f"{int(unreliable.sum())} px left to the fill")

    def picture(self, state: State) -> np.ndarray:
        """The image with the mark undone, the pixels left to the fill in red."""
        shown = state.image.copy()
        shown[state.mask >= 0.5] = (1.0, 0.15, 0.15)
        return shown
