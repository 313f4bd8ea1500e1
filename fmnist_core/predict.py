"""One loaded model that classifies prepared 28x28 images in milliseconds.

Used by the CLI ``predict``, the Predict page (held in ``st.cache_resource``) and the benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from . import ood
from .preprocess import DEFAULT_TOLERANCE, Prepared, prepare_any
from .registry import ModelRef, input_scale, load_model, model_class_names, resolve
from .segment import DEFAULT_METHOD


@dataclass
class Prediction:
    """Class probabilities for one input, with the prepared image they came from."""

    probs: np.ndarray
    class_names: tuple[str, ...]
    top_k: int = 3
    prepared: Prepared | None = field(default=None, repr=False)
    reason: str | None = None  # why this looks like none of the ten classes (None: it does not)
    # Feature-space distance to the answered class's training images, as a multiple of the
    # distance 99% of them stay within (ood.py); None where the model has no statistics.
    distance: float | None = None

    @property
    def rejected(self) -> bool:
        """True when the input looks like none of the ten classes (see ``reject_reason``)."""
        return self.reason is not None

    @property
    def index(self) -> int:
        return int(np.argmax(self.probs))

    @property
    def label(self) -> str:
        return self.class_names[self.index]

    @property
    def probability(self) -> float:
        return float(self.probs[self.index])

    def top(self, k: int | None = None) -> list[dict[str, Any]]:
        order = np.argsort(-self.probs, kind="stable")[: k or self.top_k]
        return [{"label": self.class_names[i], "index": int(i), "probability": float(self.probs[i])} for i in order]

    def as_dict(self) -> dict[str, Any]:
        """The CLI's JSON record: label, index, probability and the top-k list."""
        out = {"label": self.label, "index": self.index, "probability": self.probability, "top": self.top()}
        out.update(rejected=self.rejected, reason=self.reason)
        if self.distance is not None:
            out["distance"] = round(self.distance, 3)
        seg = self.prepared.segmentation if self.prepared else None
        if seg is not None:
            out["items"] = seg.n_items
        return out


class Predictor:
    """A model loaded once (safe mode) with a compiled single-batch function."""

    def __init__(self, ref: ModelRef) -> None:
        import tensorflow as tf

        self.ref = ref
        self.model = load_model(ref.path)
        self.class_names = model_class_names(ref)
        self.meta = ref.meta()
        self._scale = input_scale(self.meta)
        # A traced function for any batch size: skips model.predict's per-call pipeline set-up.
        self._fn = tf.function(
            lambda x: self.model(x, training=False),
            input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32)],
            reduce_retracing=True,
        )
        self.stats, self._features = None, None
        stats_file = ood.stats_path(ref.path)
        if stats_file.is_file() and ood.has_feature_layer(self.model):
            try:
                self.stats = ood.FeatureStats.load(stats_file)
                self._features = ood.feature_function(self.model, self._scale)
            except (OSError, ValueError, KeyError):
                self.stats = None  # a damaged statistics file costs the distance rule, not the model

    @classmethod
    def from_spec(cls, spec: str | None = None) -> Predictor:
        """Load the model named by ``spec`` (see ``registry.resolve``)."""
        return cls(resolve(spec))

    @classmethod
    def from_path(cls, path: Path) -> Predictor:
        return cls(resolve(str(path)))

    def probabilities(self, images_u8: np.ndarray) -> np.ndarray:
        """(N, 10) probabilities for uint8 images (N, 28, 28) light-on-dark."""
        x = np.asarray(images_u8, dtype=np.float32).reshape(-1, 28, 28, 1) * self._scale
        return np.asarray(self._fn(x), dtype=np.float32)

    def distances(self, images_u8: np.ndarray, classes: np.ndarray) -> np.ndarray | None:
        """Feature-space distance of each image to the training images of the given class, as a
        multiple of that class's 99th-percentile limit (``ood``); None if the model has no statistics."""
        if self.stats is None or self._features is None:
            return None
        classes = np.asarray(classes)
        return self.stats.distance(self._features(images_u8), classes) / self.stats.limits[classes]

    def predict_prepared(self, prepared: Prepared, top_k: int = 3) -> Prediction:
        """Model and reject rule, for an input that has been through ``preprocess`` already."""
        probs = self.probabilities(prepared.image[None])[0]
        distance, reason = None, None
        # Only segmented photos can be "none of the ten": drawings and dataset images are judged as before.
        if prepared.segmentation is not None:
            d = self.distances(prepared.image[None], np.array([int(np.argmax(probs))]))
            distance = None if d is None else float(d[0])
            reason = reject_reason(probs, distance, self.class_names)
        return Prediction(probs, self.class_names, top_k, prepared, reason, distance)

    def predict_image(
        self,
        img: Image.Image,
        invert: str = "auto",
        tolerance: float = DEFAULT_TOLERANCE,
        top_k: int = 3,
        method: str = DEFAULT_METHOD,
        box: tuple[float, float, float, float] | None = None,
    ) -> Prediction:
        """Photo pipeline (segmentation ``method``, optional ``box``) + model + reject rule, for one PIL image."""
        return self.predict_prepared(prepare_any(img, invert, tolerance, method, box), top_k)

    def heatmap(self, image_u8: np.ndarray, class_index: int | None = None) -> np.ndarray:
        """Grad-CAM map (28x28 in [0, 1]) of ``class_index`` (default: the predicted class)."""
        from .explain import grad_cam

        return grad_cam(self.model, image_u8, class_index, scale=self._scale)


# "None of the ten", calibrated on shared/photos/clothing-dev with the photo model (docs/PHOTOS.md,
# "Fourth round", scripts/reject_calibration.py). Three tests, any of which rejects:
# - the answer's probability is under a floor;
# - the answer is Bag without the confidence the model has on photo-like renderings of real
#   Fashion-MNIST bags (5th percentile): the model files many hats, shorts and skirts under Bag;
# - the answer is a garment (not a shoe or a bag) and the photo's features lie farther from that
#   class's training images than REJECT_DISTANCE_FACTOR times the distance 99% of them stay
#   within (ood.py). Shoes are exempt: shoes photographed from above are as far from the
#   dataset's side views as a hat is, and for Bag the distance does not separate at all.
# The distance test is what let the confidence floor be this low; what each setting rejects, and
# when it was measured, is in docs/PHOTOS.md ("Fourth round").
REJECT_CONFIDENCE = 0.20  # any answer below this top probability
REJECT_BAG_CONFIDENCE = 0.85  # a Bag answer below this
REJECT_DISTANCE_FACTOR = 0.90  # a garment answer farther than this multiple of its class's limit
BAG = 8
DISTANCE_CLASSES = (0, 1, 2, 3, 4, 6)  # T-shirt/top, Trouser, Pullover, Dress, Coat, Shirt


def reject_reason(probs: np.ndarray, distance: float | None = None, class_names: tuple[str, ...] = ()) -> str | None:
    """Why a segmented photo looks like none of the ten classes, or None if it looks like one of them.

    ``distance``: the photo's feature-space distance to the answered class, as a multiple of the
    class's limit (``Predictor.distances``); None skips that test (a model without statistics).
    """
    top, index = float(np.max(probs)), int(np.argmax(probs))
    if top < REJECT_CONFIDENCE:
        return f"the model is unsure: its best guess has only {top:.0%} probability"
    if index == BAG and top < REJECT_BAG_CONFIDENCE:
        return (
            f"it reads as a Bag with only {top:.0%} probability, where hats, shorts and skirts "
            "(no class of their own) usually end up"
        )
    if distance is not None and index in DISTANCE_CLASSES and distance > REJECT_DISTANCE_FACTOR:
        name = class_names[index] if index < len(class_names) else f"class {index}"
        return (
            f"it lies far from every {name} the model trained on: {distance:.2f}x the feature-space "
            f"distance that 99% of them stay within, where beyond {REJECT_DISTANCE_FACTOR:.2f}x counts as none"
        )
    return None
