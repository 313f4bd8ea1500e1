"""One loaded model that classifies prepared 28x28 images in milliseconds.

Used by the CLI ``predict``, the Predict page (held in ``st.cache_resource``) and the benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from . import head as photo_head
from . import ood
from .preprocess import DEFAULT_TOLERANCE, Prepared, prepare_any
from .registry import (
    ModelError,
    ModelRef,
    input_scale,
    load_model,
    model_class_names,
    resolve,
    shipped_head_name,
    shipped_key,
)
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
    # Set when a photo head answered: its "none of the ten" output, its name, and the backbone's
    # own answer (the CNN taught on Fashion-MNIST only) for comparison.
    none_probability: float | None = None
    head: str | None = None
    fashion_mnist_only: Prediction | None = field(default=None, repr=False)

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
        if self.head is not None:
            out.update(head=self.head, none_of_the_ten=self.none_probability)
        if self.fashion_mnist_only is not None:
            own = self.fashion_mnist_only.as_dict()
            own.pop("items", None)
            own["probabilities"] = dict(zip(self.class_names, map(float, self.fashion_mnist_only.probs), strict=True))
            out["probabilities"] = dict(zip(self.class_names, map(float, self.probs), strict=True))
            out["fashion_mnist_only"] = own
        return out


class Predictor:
    """A model loaded once (safe mode) with a compiled single-batch function."""

    def __init__(self, ref: ModelRef, head: str | None = "auto") -> None:
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
        self.head: photo_head.PhotoHead | None = None
        self.head_name: str | None = None
        # Where the head reads its features: fine-tuned copies (side by side) or the backbone.
        self._head_models: tuple[Any, ...] = (self.model,)
        self._feature_models: dict[Path, Any] = {}
        self.head_error: str | None = None  # why the shipped head could not be used (None: fine)
        self.use_head(head)

    def use_head(self, name: str | None) -> None:
        """Pick the photo head that answers photos: ``"auto"`` the one shipped beside this backbone
        (if any; a damaged one is skipped and said in ``head_error``), ``None``/``"none"`` the
        backbone alone, or a head name (``head.resolve_head``; raises ``HeadError``)."""
        self.head, self.head_name, self.head_error, self._head_models = None, None, None, (self.model,)
        if name is None or name == "none" or not ood.has_feature_layer(self.model):
            return
        if name == "auto":
            name = shipped_head_name(self.ref)
            if name is None:
                return
            try:
                self._set_head(name)
            except photo_head.HeadError as exc:
                self.head_error = str(exc)
            return
        self._set_head(name)

    def _set_head(self, name: str) -> None:
        head = photo_head.load_head(photo_head.resolve_head(name))
        models = self._models_of(head)
        dim = int(self._features_of(models, np.zeros((1, 28, 28), np.uint8)).shape[1])
        backbone = head.card.get("backbone")
        if head.n_features != dim or (backbone and backbone not in (self.ref.key, shipped_key(self.ref))):
            raise photo_head.HeadError(
                f"head {name!r} was taught on {backbone or 'another model'} ({head.n_features} features), "
                f"not on {self.ref.key} ({dim}); pick a head of this model or use --head none"
            )
        self.head, self.head_name, self._head_models = head, name, models

    def _models_of(self, head: photo_head.PhotoHead) -> tuple[Any, ...]:
        """The networks ``head`` reads its features from (``head.feature_model_paths``), each loaded once."""
        paths = photo_head.feature_model_paths(head.card)
        if not paths:
            return (self.model,)
        for path in paths:
            if path not in self._feature_models:
                try:
                    self._feature_models[path] = load_model(path)
                except ModelError as exc:
                    raise photo_head.HeadError(f"the head's feature model cannot be used: {exc}") from None
        return tuple(self._feature_models[path] for path in paths)

    def _features_of(self, models: tuple[Any, ...], images_u8: np.ndarray) -> np.ndarray:
        """The ``fc`` features of each network, side by side."""
        return np.concatenate([photo_head.head_features(m, images_u8, self._scale) for m in models], axis=1)

    def _fc(self, images_u8: np.ndarray) -> np.ndarray:
        """The backbone's own ``fc`` features (its distance rule's space)."""
        return photo_head.head_features(self.model, images_u8, self._scale)

    def head_features(self, images_u8: np.ndarray, head: photo_head.PhotoHead | None = None) -> np.ndarray:
        """``fc`` features as a photo head reads them (``head``, default the one in use): from the fine-tuned
        feature models its card names (side by side), else from this backbone."""
        return self._features_of(self._head_models if head is None else self._models_of(head), images_u8)

    @classmethod
    def from_spec(cls, spec: str | None = None, head: str | None = "auto") -> Predictor:
        """Load the model named by ``spec`` (see ``registry.resolve``) and its photo ``head`` (``use_head``)."""
        return cls(resolve(spec), head)

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
        return self._distances(self._features(images_u8), classes)

    def _distances(self, features: np.ndarray, classes: np.ndarray) -> np.ndarray:
        classes = np.asarray(classes)
        return self.stats.distance(features, classes) / self.stats.limits[classes]

    def predict_prepared(self, prepared: Prepared, top_k: int = 3) -> Prediction:
        """Model and reject rule, for an input that has been through ``preprocess`` already.

        A photo (upload, camera shot) is answered by the photo head when there is one; the
        backbone's own answer is then kept beside it in ``fashion_mnist_only``.
        """
        probs = self.probabilities(prepared.image[None])[0]
        distance, reason, feats = None, None, None
        # Only segmented photos can be "none of the ten": drawings and dataset images are judged as before.
        if prepared.segmentation is not None:
            if self.stats is not None:
                feats = self._fc(prepared.image[None])
                distance = float(self._distances(feats, np.array([int(np.argmax(probs))]))[0])
            reason = reject_reason(probs, distance, self.class_names)
        own = Prediction(probs, self.class_names, top_k, prepared, reason, distance)
        if self.head is None or not prepared.photo:
            return own
        # A head on the backbone's own features reuses them; one on fine-tuned copies reads their own.
        own_space = feats is not None and self._head_models == (self.model,)
        p11 = self.head.probabilities(feats if own_space else self.head_features(prepared.image[None]))[0]
        distance = None
        if feats is not None:  # the backbone's features of a segmented photo: its distance rule's space
            distance = float(self._distances(feats, np.array([int(np.argmax(p11[: photo_head.NONE]))]))[0])
        # As for the CNN's own rule: only a segmented photo can be "none of the ten"; a product shot
        # on a plain background is the dataset's own kind of picture.
        head_reason = self.head.reason(p11, distance) if prepared.segmentation is not None else None
        return Prediction(
            p11[: photo_head.NONE],
            self.class_names,
            top_k,
            prepared,
            head_reason,
            distance,
            float(p11[photo_head.NONE]),
            self.head_name,
            own,
        )

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
