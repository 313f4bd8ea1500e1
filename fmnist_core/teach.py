"""Teach a photo head from a class's own labelled photos, and show what it changes.

Teachable Machine's move on a real CNN: the photos go through the product's own photo pipeline
(``preprocess.prepare_any``: segmentation, the dataset's steps), the backbone turns each into its
``fc`` features, and ``head.fit_head`` fits a head on them -- together with the shipped dev
photos' features unless the user asks for "only mine". What it changes is measured honestly on
the class's photos: *before* is the CNN taught on Fashion-MNIST only (with the product's "none of
the ten" rule) and the shipped photo head; *after* is k-fold cross-validation, each photo judged
by a head that never saw it. The photos it still gets wrong are listed.

Labels: a folder names one class (``dress``, ``Sneaker``), "none of the ten" (``hat``,
``none``), or several (``shoes``: Sandal, Sneaker or Ankle boot). A photo of a folder with
several classes is labelled with the one of them the CNN finds most likely, and an answer counts
as right if it is any of the folder's classes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import access, head, heads
from .preprocess import ImageError, load_image, prepare_any
from .teach_input import Collected, TeachError, class_of

MIN_PER_CLASS = 3  # k-fold needs each class in every training split
K_FOLDS = 5
NONE = 10  # the head's 11th output: "none of the ten"
LABELS = head.output_names()
PREP_THREADS = 2  # GrabCut and Pillow release the GIL: two threads use both cores of these machines
DEV_SUFFIX = "_head.devfeatures.npz"  # models/<backbone>_head.devfeatures.npz (shipped by the head branch)

Progress = Callable[[float, str], None]  # (fraction done 0-1, what is happening)


@dataclass
class Prepared:
    """The photos that made it through the pipeline, as 28x28 inputs, with their names and folders."""

    x28: np.ndarray  # (n, 28, 28) uint8
    names: list[str]
    folders: list[str]
    skipped: list[tuple[str, str]]
    segmented: np.ndarray  # (n,) bool: the photo went through segmentation (the distance rule applies)


@dataclass
class TeachResult:
    """What teaching did: counts, accuracy before and after per class, the photos still wrong."""

    name: str
    counts: dict[str, int]
    per_class: dict[str, dict[str, Any]]
    overall: dict[str, float | None]
    wrong: list[dict[str, Any]]
    skipped: list[tuple[str, str]]
    unknown_folders: list[str]
    only_mine: bool
    dev_photos: int
    k: int
    backbone: str
    seconds: dict[str, float]
    # The fine-tuned CNN(s) the features come from (head.feature_model_paths): a name or a list of names.
    feature_model: str | list[str] | None = None
    wrong_images: np.ndarray = field(default_factory=lambda: np.zeros((0, 28, 28), np.uint8), repr=False)
    info: heads.HeadInfo | None = None

    def card(self) -> dict[str, Any]:
        """The JSON card stored beside the head (and printed by ``teach --json``)."""
        return {
            "kind": "taught photo head",
            "backbone": self.backbone,
            "feature_model": self.feature_model,
            "classes": sorted(self.counts),
            "counts": self.counts,
            "photos": sum(self.counts.values()),
            "only_mine": self.only_mine,
            "dev_photos": self.dev_photos,
            "cv": f"{self.k}-fold on the taught photos; dev photos in every training split"
            if not self.only_mine
            else f"{self.k}-fold on the taught photos",
            "overall": self.overall,
            "per_class": self.per_class,
            "wrong": self.wrong,
            "skipped": [{"file": n, "why": w} for n, w in self.skipped],
            "unknown_folders": self.unknown_folders,
            "seconds": self.seconds,
        }


def _prepare_one(photo) -> tuple[Any, str | None]:
    try:
        return prepare_any(load_image(photo.read())), None
    except ImageError as exc:
        return None, str(exc)
    except Exception as exc:  # noqa: BLE001 - one hostile file must not stop the other 99
        return None, f"cannot prepare it ({type(exc).__name__})"


def prepare(collected: Collected, progress: Progress | None = None, share: float = 1.0) -> Prepared:
    """Every photo through the product's photo pipeline; unreadable ones are skipped and named."""
    n = len(collected.photos)
    images, names, folders, segmented, skipped = [], [], [], [], list(collected.skipped)
    with ThreadPoolExecutor(PREP_THREADS) as pool:
        for i, (photo, (x, why)) in enumerate(
            zip(collected.photos, pool.map(_prepare_one, collected.photos), strict=True)
        ):
            if x is None:
                skipped.append((photo.name, why or "unreadable"))
            else:
                images.append(x.image)
                segmented.append(x.segmentation is not None)
                names.append(photo.name)
                folders.append(photo.folder)
            if progress:
                progress(share * (i + 1) / max(n, 1), f"preparing photo {i + 1} of {n}")
    x28 = np.stack(images) if images else np.zeros((0, 28, 28), np.uint8)
    return Prepared(x28, names, folders, skipped, np.array(segmented, bool))


def check_classes(folders: list[str], only_mine: bool, skipped: int = 0) -> dict[str, int]:
    """Photos per class folder; TeachError for too few photos or a single class (with only mine)."""
    counts = {f: folders.count(f) for f in sorted(set(folders))}
    hint = f" ({skipped} file(s) were skipped: see the list)" if skipped else ""
    if not counts:
        raise TeachError(f"no usable photos: give class folders (dress/, pants/, hat/ ...) with photos in them{hint}")
    few = [f"{f} has {n}" for f, n in counts.items() if n < MIN_PER_CLASS]
    if few:
        raise TeachError(
            f"{', '.join(few)} photo(s); give at least {MIN_PER_CLASS} per class (each is judged by a head "
            f"taught on the others){hint}"
        )
    if len(counts) == 1 and only_mine:
        raise TeachError(
            f"only one class ({next(iter(counts))}): a head tells classes apart, so give a second class "
            "folder, or leave 'only mine' off so the dev photos' classes join"
        )
    return counts


@dataclass
class DevSet:
    """What teaches beside the class's photos: the dev photos' features, and the Fashion-MNIST
    rows the shipped head mixes in (so classes without photos keep their answer)."""

    features: np.ndarray
    labels: np.ndarray
    mix_features: np.ndarray | None = None
    mix_labels: np.ndarray | None = None
    mix_weight: float | None = None  # the weight of each Fashion-MNIST row, as the shipped head was fitted

    @classmethod
    def empty(cls, d: int) -> DevSet:
        return cls(np.zeros((0, d), np.float32), np.zeros(0, int))


def dev_features_path(backbone_path: Path) -> Path:
    """Where the dev photos' features of a backbone are shipped: ``models/<backbone>_head.devfeatures.npz``."""
    return Path(backbone_path).with_name(Path(backbone_path).stem + DEV_SUFFIX)


def _first(z: Any, keys: tuple[str, ...]) -> np.ndarray | None:
    return next((np.asarray(z[k]) for k in keys if k in z.files), None)


def load_dev_features(path: Path) -> DevSet:
    """The dev photos' features and labels (0..10); TeachError with one line if missing or damaged."""
    try:
        with np.load(path, allow_pickle=False) as z:
            f, y = _first(z, ("features", "dev_f", "x")), _first(z, ("labels", "dev_y", "y"))
            mix_f = _first(z, ("fashion_features", "mix_features", "mix_f"))
            mix_y = _first(z, ("fashion_labels", "mix_labels", "mix_y"))
            mix_w = _first(z, ("fashion_weight",))
    except (OSError, ValueError, EOFError) as exc:
        raise TeachError(
            f"the dev photos' features {path.name} are missing or damaged ({type(exc).__name__}); "
            "teach with 'only mine', or restore models/ from the repository"
        ) from None
    if f is None or y is None or f.ndim != 2 or len(f) != len(y):
        raise TeachError(f"the dev photos' features {path.name} are damaged (no features and labels of one length)")
    mix_ok = mix_f is not None and mix_y is not None and mix_f.ndim == 2 and len(mix_f) == len(mix_y)
    if not mix_ok:
        return DevSet(f.astype(np.float32), y.astype(int))
    weight = None if mix_w is None else float(mix_w)
    return DevSet(f.astype(np.float32), y.astype(int), mix_f.astype(np.float32), mix_y.astype(int), weight)


def labels_for(folders: list[str], cnn_probs: np.ndarray) -> np.ndarray:
    """One label 0..10 per photo: the folder's class, 10 for none, the CNN's likeliest of several."""
    out = np.zeros(len(folders), int)
    for i, folder in enumerate(folders):
        strict = (class_of(folder) or ((), ()))[0]
        out[i] = NONE if not strict else strict[int(np.argmax(cnn_probs[i, list(strict)]))]
    return out


def right(folders: list[str], answers: np.ndarray) -> np.ndarray:
    """True where the answer is one of the folder's classes (10 for a none-of-the-ten folder)."""
    ok = []
    for folder, a in zip(folders, answers, strict=True):
        strict = (class_of(folder) or ((), ()))[0]
        ok.append(int(a) == NONE if not strict else int(a) in strict)
    return np.array(ok, bool)


def folds(folders: list[str], k: int, seed: int) -> list[np.ndarray]:
    """k stratified folds of photo indices (each class spread over all folds), seeded."""
    rng = np.random.default_rng(seed)
    out: list[list[int]] = [[] for _ in range(k)]
    offset = 0
    for f in sorted(set(folders)):
        idx = [i for i, g in enumerate(folders) if g == f]
        rng.shuffle(idx)
        for j, i in enumerate(idx):
            out[(j + offset) % k].append(i)
        offset += len(idx)
    return [np.array(sorted(o), int) for o in out if o]


def _accuracy(folders: list[str], ok: np.ndarray | None) -> tuple[dict[str, float | None], float | None]:
    if ok is None:
        return dict.fromkeys(sorted(set(folders))), None
    per = {f: float(np.mean([o for o, g in zip(ok, folders, strict=True) if g == f])) for f in sorted(set(folders))}
    return per, float(np.mean(ok)) if len(ok) else None


def cnn_answers(predictor: Any, x28: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(10-class probabilities, answers with the product's "none of the ten" rule) of the CNN alone."""
    from .predict import reject_reason

    probs = predictor.probabilities(x28)
    top = probs.argmax(1)
    dist = predictor.distances(x28, top)
    answers = [
        NONE if reject_reason(p, None if dist is None else float(dist[i]), predictor.class_names) else int(top[i])
        for i, p in enumerate(probs)
    ]
    return probs, np.array(answers, int)


def class_distances(predictor: Any, feats: np.ndarray, segmented: np.ndarray) -> np.ndarray | None:
    """(n, 10) feature distance of each photo to every class as a multiple of its limit; 0 where the
    photo was not segmented (the distance rule is for segmented photos only); None without statistics."""
    stats = getattr(predictor, "stats", None)
    if stats is None:
        return None
    d = np.stack([stats.distance(feats, np.full(len(feats), c)) / stats.limits[c] for c in range(10)], 1)
    return np.where(np.asarray(segmented, bool)[:, None], d, 0.0)


def decide(photo_head: head.PhotoHead, probs: np.ndarray, dist: np.ndarray | None) -> np.ndarray:
    """The head's answers (10 = none), with its distance rule measured to the class it answers."""
    answered = None if dist is None else dist[np.arange(len(probs)), probs[:, :NONE].argmax(1)]
    return photo_head.decide(probs, answered)


def shipped_head(backbone_path: Path) -> head.PhotoHead | None:
    """The photo head shipped beside the backbone (``models/<backbone>_head.npz``), or None."""
    try:
        return head.load_head(head.resolve_head(Path(backbone_path).stem + "_head"))
    except head.HeadError:
        return None


def fit_choices(shipped: head.PhotoHead | None) -> dict[str, Any]:
    """The shipped head's choices (made by cross-validation on the dev photos), for every taught head."""
    keys = ("C", "class_weight", "extra_weight", "none_threshold", "distance_factor")
    choices = (shipped.card.get("choices") if shipped is not None else None) or {}
    return {k: choices[k] for k in keys if k in choices}


def teach(
    collected: Collected,
    name: str,
    *,
    predictor: Any,
    only_mine: bool = False,
    replace: bool = False,
    actor: access.Actor = access.ADMIN,
    progress: Progress | None = None,
    root: Path | None = None,
    dev_features: Path | None = None,
    seed: int = 0,
) -> TeachResult:
    """Prepare, check, cross-validate and fit a head on ``collected``; store it as ``name``.

    ``predictor``: the loaded backbone (``predict.Predictor``; the app keeps one cached).
    ``dev_features``: the dev photos' features (default: shipped beside the backbone).
    Raises TeachError / heads.HeadStoreError / access.AccessError with one line, before any
    work where it can (a taken name is refused first).
    """
    heads.check_free(heads.validate_name(name), replace, actor, root)
    say = progress or (lambda _f, _t: None)
    t0 = time.perf_counter()
    prep = prepare(collected, say, share=0.8)
    t_prep = time.perf_counter() - t0
    counts = check_classes(prep.folders, only_mine, len(prep.skipped))
    say(0.82, "reading the CNN's features")
    shipped = shipped_head(predictor.ref.path)
    own_feats = head.head_features(predictor.model, prep.x28)  # the backbone's: its distance rule's space
    # The shipped head's features (from its fine-tuned feature model, if it names one): the dev photos' too.
    tuned = shipped is not None and bool(head.feature_model_paths(shipped.card))
    feats = predictor.head_features(prep.x28, shipped) if tuned else own_feats
    cnn_probs, cnn = cnn_answers(predictor, prep.x28)
    dist = class_distances(predictor, own_feats, prep.segmented)
    labels = labels_for(prep.folders, cnn_probs)
    if only_mine:
        dev = DevSet.empty(feats.shape[1])
    else:
        dev = load_dev_features(dev_features or dev_features_path(predictor.ref.path))
        if dev.features.shape[1] != feats.shape[1]:
            raise TeachError(
                f"the dev photos' features have {dev.features.shape[1]} values, the photos' features "
                f"{feats.shape[1]}: the dev file belongs to another model"
            )
    choices = fit_choices(shipped)
    if dev.mix_features is not None:
        choices.update(extra_features=dev.mix_features, extra_labels=dev.mix_labels)
        if dev.mix_weight is not None:
            choices["extra_weight"] = dev.mix_weight
    else:
        choices.pop("extra_weight", None)

    def fit(rows: np.ndarray, start: head.PhotoHead | None = None) -> head.PhotoHead:
        x, y = np.concatenate([dev.features, feats[rows]]), np.concatenate([dev.labels, labels[rows]])
        if start is None or start.prior_coef is None:
            return head.fit_head(x, y, start=start, **choices)
        # A head started from the shipped one keeps its re-weighting by the CNN's own answer.
        prior = (start.prior_coef, start.prior_intercept)
        return head.fit_head(x, y, start=start, prior=prior, prior_weight=start.prior_weight, **choices)

    t1 = time.perf_counter()
    say(0.84, "fitting the head on all photos")
    # With the dev photos the shipped head is nearly the answer: start there (fit_head's start), then start
    # each fold from the head on all photos. With only the class's photos fits take milliseconds.
    final = fit(np.arange(len(labels)), None if only_mine or shipped is None else shipped)
    cv_probs = np.zeros((len(labels), head.N_OUTPUTS), np.float32)
    after = np.zeros(len(labels), int)
    parts = folds(prep.folders, min(K_FOLDS, min(counts.values())), seed)
    for j, test in enumerate(parts):
        say(0.85 + 0.1 * j / len(parts), f"cross-validating: fold {j + 1} of {len(parts)}")
        fold_head = fit(np.setdiff1d(np.arange(len(labels)), test), None if only_mine else final)
        cv_probs[test] = fold_head.probabilities(feats[test])
        after[test] = decide(fold_head, cv_probs[test], None if dist is None else dist[test])
    t_fit = time.perf_counter() - t1
    before_head = None if shipped is None else decide(shipped, shipped.probabilities(feats), dist)
    ok_after = right(prep.folders, after)
    per_cnn, all_cnn = _accuracy(prep.folders, right(prep.folders, cnn))
    per_head, all_head = _accuracy(prep.folders, None if before_head is None else right(prep.folders, before_head))
    per_after, all_after = _accuracy(prep.folders, ok_after)
    per_class = {
        f: {"photos": counts[f], "before_cnn": per_cnn[f], "before_head": per_head[f], "after": per_after[f]}
        for f in counts
    }
    wrong_idx = np.flatnonzero(~ok_after)
    wrong = [
        {
            "file": prep.names[i],
            "class": prep.folders[i],
            "answer": LABELS[after[i]],
            "probability": round(float(cv_probs[i, after[i]]), 3),
        }
        for i in wrong_idx
    ]
    result = TeachResult(
        name=name,
        counts=counts,
        per_class=per_class,
        overall={"before_cnn": all_cnn, "before_head": all_head, "after": all_after},
        wrong=wrong,
        skipped=prep.skipped,
        unknown_folders=collected.unknown_folders,
        only_mine=only_mine,
        dev_photos=len(dev.labels),
        k=len(parts),
        backbone=predictor.ref.key,
        feature_model=None if shipped is None else shipped.card.get("feature_model"),
        seconds={"prepare": round(t_prep, 2), "fit_and_cv": round(t_fit, 2)},
        wrong_images=prep.x28[wrong_idx],
    )
    result.seconds["total"] = round(time.perf_counter() - t0, 2)
    result.info = heads.save(name, final, result.card(), actor, replace, root)
    say(1.0, "done")
    return result
