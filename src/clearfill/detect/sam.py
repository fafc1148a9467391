"""Selecting an object with SAM 2.1 (Segment Anything 2.1, Apache-2.0) through
``transformers`` (``Sam2Model``), when its weights are present.

The image encoder is the slow half (seconds on a CPU); its embedding is kept per
image (keyed by the pixels' hash), so every further click, box or lasso on the
same image runs only the prompt decoder. A lasso is given to SAM as its bounding
box plus a positive point at the lasso's centre of mass.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from pathlib import Path

import cv2
import numpy as np

from ..errors import ModelLoadError, ModelNotAvailableError
from ..imaging import quantize
from ..models import pool
from ..models.registry import hub_source
from .select import Selection

SIDE = 1024  # SAM 2's input: the image resized to a square of this side
MEAN, STD = np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)
EMBEDDINGS_KEPT = 4  # images whose embeddings stay cached


def sam_source(model: str) -> str:
    """A registry name's Hugging Face repository, a local folder, or ``model`` as given."""
    found = hub_source(model)
    return found[0] if found else model


def sam_present(model: str = "sam2.1-hiera-tiny") -> bool:
    """Whether SAM's weights are here already (a local folder, or the Hugging Face
    cache), checked without any download."""
    found = hub_source(model)
    if found is None:
        return False  # neither a folder here nor a repository id
    source, local = found
    if local:
        return (Path(source) / "config.json").is_file()
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    return all(isinstance(try_to_load_from_cache(source, name), str) for name in ("config.json", "model.safetensors"))


class SamSelector:
    """A loaded SAM 2.1 model and the embeddings of the last few images it saw."""

    def __init__(self, source: str, device: str = "cpu"):
        try:
            import torch
            from transformers import Sam2Model
        except ImportError:
            raise ModelNotAvailableError("SAM needs the models extra: pip install 'clearfill[models]'") from None
        # Safetensors only: a pickled checkpoint is never unpickled here. The published
        # checkpoints are Sam2VideoModel's ("sam2_video"); Sam2Model is its image half and
        # takes those weights as they are. Weights it needs but the file lacks would be left
        # random, so that is an error, not a warning.
        try:
            model, loading = Sam2Model.from_pretrained(source, use_safetensors=True, output_loading_info=True)
        except OSError as exc:
            raise ModelNotAvailableError(f"SAM weights not found at {source}: {str(exc).splitlines()[0]}") from None
        except (ValueError, RuntimeError) as exc:
            raise ModelLoadError(f"cannot load SAM from {source}: {str(exc).splitlines()[0]}") from None
        if loading["missing_keys"]:
            missing = sorted(loading["missing_keys"])
            raise ModelLoadError(f"{source} is not a SAM 2 checkpoint: it lacks {len(missing)} of the model's "
                                 f"weights (e.g. {missing[0]})")
        self.model = model.to(device).eval()
        self.torch, self.device = torch, device
        self._embeddings: OrderedDict[str, list] = OrderedDict()
        self._lock = threading.Lock()
        self.encoded = 0  # how many times the image encoder ran (the expensive part)

    @classmethod
    def shared(cls, model: str = "sam2.1-hiera-tiny", device: str = "cpu") -> SamSelector:
        source = sam_source(model)
        return pool.POOL.get(("selector", source, device), lambda: cls(source, device))

    def embedding(self, rgb8: np.ndarray) -> list:
        key = hashlib.sha256(rgb8.tobytes()).hexdigest() + str(rgb8.shape)
        with self._lock:
            if key in self._embeddings:
                self._embeddings.move_to_end(key)
                return self._embeddings[key]
        square = cv2.resize(rgb8, (SIDE, SIDE), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
        tensor = self.torch.from_numpy(((square - MEAN) / STD).transpose(2, 0, 1)[None].copy()).to(self.device)
        with self.torch.inference_mode():
            embeddings = list(self.model.get_image_embeddings(tensor))
        with self._lock:
            self.encoded += 1
            self._embeddings[key] = embeddings
            while len(self._embeddings) > EMBEDDINGS_KEPT:
                self._embeddings.popitem(last=False)
        return embeddings

    def select(self, rgb: np.ndarray, selection: Selection) -> np.ndarray:
        """bool H x W: the object ``selection`` points at on ``rgb`` (float32 RGB)."""
        rgb8 = quantize(rgb)
        height, width = rgb8.shape[:2]
        scale = np.array([SIDE / width, SIDE / height], np.float32)
        box, points = _prompts(selection)
        torch = self.torch
        inputs = {}
        if points:
            inputs["input_points"] = torch.tensor([[[[x, y] for x, y, _ in points]]], dtype=torch.float32) \
                * torch.from_numpy(scale)
            inputs["input_labels"] = torch.tensor([[[1 if positive else 0 for *_, positive in points]]])
        if box is not None:
            x0, y0, x1, y1 = box
            inputs["input_boxes"] = torch.tensor([[[x0 * scale[0], y0 * scale[1], x1 * scale[0], y1 * scale[1]]]])
        with torch.inference_mode():
            output = self.model(image_embeddings=self.embedding(rgb8),
                                **{k: v.to(self.device) for k, v in inputs.items()}, multimask_output=False)
        logits = output.pred_masks[0, 0, 0].float().cpu().numpy()
        return cv2.resize(logits, (width, height), interpolation=cv2.INTER_LINEAR) > 0


def _prompts(selection: Selection):
    """(box x0, y0, x1, y1 or None, points [(x, y, positive)]) for SAM."""
    points = list(selection.points)
    box = None
    if selection.box is not None:
        x, y, w, h = selection.box
        box = (x, y, x + w, y + h)
    if selection.lasso:
        polygon = np.asarray(selection.lasso, np.float32)
        xs, ys = polygon[:, 0], polygon[:, 1]
        box = (float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()))
        moments = cv2.moments(polygon)
        if moments["m00"]:
            points.append((moments["m10"] / moments["m00"], moments["m01"] / moments["m00"], True))
    return box, points
