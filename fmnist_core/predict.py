"""One loaded model that classifies prepared 28x28 images in milliseconds.

Used by the CLI ``predict``, the Predict page (held in ``st.cache_resource``) and the benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .preprocess import DEFAULT_TOLERANCE, Prepared, prepare_any
from .registry import ModelRef, load_model, model_class_names, resolve


@dataclass
class Prediction:
    """Class probabilities for one input, with the prepared image they came from."""

    probs: np.ndarray
    class_names: tuple[str, ...]
    top_k: int = 3
    prepared: Prepared | None = field(default=None, repr=False)

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
        return {"label": self.label, "index": self.index, "probability": self.probability, "top": self.top()}


class Predictor:
    """A model loaded once (safe mode) with a compiled single-batch function."""

    def __init__(self, ref: ModelRef) -> None:
        import tensorflow as tf

        self.ref = ref
        self.model = load_model(ref.path)
        self.class_names = model_class_names(ref)
        self.meta = ref.meta()
        lo, hi = self.meta.get("input_range", [0, 1])
        self._scale = 1.0 / 255.0 if hi == 1 else 1.0
        # A traced function for any batch size: skips model.predict's per-call pipeline set-up.
        self._fn = tf.function(
            lambda x: self.model(x, training=False),
            input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32)],
            reduce_retracing=True,
        )

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

    def predict_prepared(self, prepared: Prepared, top_k: int = 3) -> Prediction:
        """Model only, for an input that has been through ``preprocess`` already."""
        probs = self.probabilities(prepared.image[None])[0]
        return Prediction(probs, self.class_names, top_k, prepared)

    def predict_image(
        self, img: Image.Image, invert: str = "auto", tolerance: float = DEFAULT_TOLERANCE, top_k: int = 3
    ) -> Prediction:
        """Photo pipeline + model, for one PIL image."""
        return self.predict_prepared(prepare_any(img, invert, tolerance), top_k)

    def heatmap(self, image_u8: np.ndarray, class_index: int | None = None) -> np.ndarray:
        """Grad-CAM map (28x28 in [0, 1]) of ``class_index`` (default: the predicted class)."""
        from .explain import grad_cam

        return grad_cam(self.model, image_u8, class_index, scale=self._scale)
