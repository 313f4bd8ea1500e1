"""Fine-tune the photo CNN on the dev photos (issue 22), every choice by stratified k-fold CV inside clothing-dev.

The photo head of ``photo_head_cv`` is a linear model on the frozen CNN's ``fc`` features. Here the
CNN itself learns from the photos: per fold, ``models/fashion_cnn_photo.keras`` is fine-tuned on
the training folds' photos (photo augmentation: flip, rotation, shift, zoom, brightness) mixed with
Fashion-MNIST training images (so the ten classes and product shots are kept: Bag, Sandal and Ankle
boot have no dev folder), then the 11-way head is fitted on the tuned model's features exactly as
``photo_head_cv`` fits it, and the held-out fold is scored with the same ``metrics``. Variants:

* ``block3``: the last conv block (conv31, conv32) + ``fc`` + ``probs`` learn; BatchNorm frozen;
* ``dense``: only ``fc`` + ``probs`` learn;
* ``out11``: as ``block3`` but the last layer has 11 outputs (the 11th, "none of the ten", taught
  by the hats, skirts and shorts), scored by its own output and by a head on its features;
* ``dense11``: as ``dense`` with the 11-way last layer.

A choice counts only if the photo-like validation renderings (of Fashion-MNIST *training* images,
never the test renderings) stay >= ``photo_head_cv.VAL_FLOOR``; each fold's renderings are scored
by that fold's tuned model and head. ``overall`` (in-scope photos strictly right + out-of-scope
photos rejected) is the number maximised::

    python -m scripts.photo_finetune_cv /work/shared/photos/clothing-dev --cache /work/exp/ft22

Several shipped wide_cnns can be tuned the same way on the same folds (``--base NAME --keep-features``
keeps every fold's tuned features) and one head read their features side by side (``--combine
--bases A,B``): the shipped head reads the tuned photo CNN's and the tuned ``best`` CNN's
(``CHOSEN_BASES``); ``--ship --bases A,B`` tunes each on every photo and writes them and the head.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402 - after the thread settings

from fmnist_core import head as photo_head  # noqa: E402
from fmnist_core.machine import this_machine  # noqa: E402
from scripts.finetune_nets import (  # noqa: E402
    BATCH,
    ELEVEN,
    Base,
    Variant,
    features,
    fine_tune,
    keras_clear,
    last_layer,
    ten_class,
    trainable,
)
from scripts.foldfeatures import kept_features, kept_path, padded_prior, side_by_side  # noqa: E402
from scripts.photo_head_cv import (  # noqa: E402
    VAL_FLOOR,
    backbone_features,
    dev_labels,
    fold_metrics,
    header,
    mix_and_validation_draws,
    photo_like_sets,
    prepare_all,
    row,
    write_dev_features,
)

BASE = "fashion_cnn_photo"
# The head of photo_head_cv's CV (models/fashion_cnn_photo_head.json): fitted the same way on every tuned model.
HEAD = {"C": 0.1, "class_weight": None, "extra_weight": 0.1}
PRIOR_WEIGHT = 1.0
THRESHOLDS = (0.3, 0.4, 0.5)


CHOSEN = Variant("dense11", 1e-3, 8, 1.0)  # by CV (docs/PHOTOS.md, top section): best overall with val >= floor
CHOSEN_THRESHOLD = 0.4
# The head reads these shipped CNNs' tuned copies side by side (docs/PHOTOS.md, top section).
CHOSEN_BASES = ("fashion_cnn_photo", "fashion_cnn_best")


def fm_pool() -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST training images to mix in: every training image except the sources of the
    photo-like validation renderings (``photo_head_cv.photo_like_sets``' draws, repeated)."""
    from fmnist_core.data import load_dataset

    ds = load_dataset("fashion")
    _, val, _ = mix_and_validation_draws(ds.y_train)
    keep = np.setdiff1d(np.arange(len(ds.y_train)), val)
    return ds.x_train[keep], ds.y_train[keep].astype(int)


def decide(probs: np.ndarray, threshold: float) -> np.ndarray:
    """Answers 0-9, or 10 where "none" has at least ``threshold`` probability."""
    return np.where(probs[:, photo_head.NONE] >= threshold, photo_head.NONE, probs[:, : photo_head.NONE].argmax(1))


class FineTuneCV:
    """The dev photos, their teaching labels, the photo-like sets and the Fashion-MNIST pool: runs one
    variant over the folds and scores it."""

    def __init__(self, dev: dict, sets: dict, base_feats: dict, k: int, base: str = BASE) -> None:
        self.x = dev["images"]
        self.folders = dev["folders"]
        self.y = dev_labels(self.folders, base_feats["dev_p"])  # shoes: the shipped CNN's likeliest shoe class
        self.sets = sets
        self.k = k
        self.base = Base.parse(base)  # the labels (and so the folds) stay the photo CNN's
        self.weights = self.base.weights()
        self.architecture = self.base.architecture()
        self.pool = fm_pool()
        self.extra_weight = HEAD["extra_weight"]  # of each Fashion-MNIST row in the head's fit
        self.fm_backbone = float(np.mean(base_feats["fmnist_test_p"].argmax(1) == sets["fmnist_test_y"]))

    def run(self, variant: Variant, seed: int = 0, keep: Path | None = None) -> dict:
        """Out-of-fold probabilities of the head (and of the 11-way output) and each fold's validation
        renderings, for every threshold. ``keep``: also write every fold's tuned features of all the dev
        photos and the photo-like sets, its training rows and its prior there (npz), so that heads on
        them (or on them beside another model's) can be chosen without tuning again."""
        import keras
        from sklearn.model_selection import StratifiedKFold

        from fmnist_core.model import with_flip_tta

        n = len(self.y)
        oof = {"head": np.zeros((n, 11)), "out11": np.zeros((n, 11))}
        folds = np.zeros(n, int)
        val = {"head": [], "out11": []}
        kept: dict[str, np.ndarray] = {}
        t0 = time.perf_counter()
        for i, (tr, te) in enumerate(StratifiedKFold(self.k, shuffle=True, random_state=seed).split(self.x, self.y)):
            keras.backend.clear_session()
            net = fine_tune(
                self.weights,
                variant,
                self.x[tr],
                self.y[tr],
                self.pool,
                self.base.seed(seed * 10 + i),
                self.architecture,
            )
            net = with_flip_tta(net)  # as shipped: answers and features are the mean over the image and its mirror
            # Every dev photo's features at once: the training rows, the held-out ones, and what ``keep`` writes.
            f = features(net, {"dev": self.x, "mix": self.sets["mix_x"], "val": self.sets["val_x"]})
            prior = last_layer(net)
            h = self.fit_head(f["dev"][tr], self.y[tr], f["mix"], prior)
            oof["head"][te] = h.probabilities(f["dev"][te])
            val["head"].append(h.probabilities(f["val"]))
            if variant.layers in ELEVEN:
                oof["out11"][te] = net.predict(self.x[te][..., None] / 255.0, verbose=0, batch_size=512)
                val["out11"].append(net.predict(self.sets["val_x"][..., None] / 255.0, verbose=0, batch_size=512))
            folds[te] = i
            if keep is not None:
                test = photo_head.head_features(net, self.sets["test_x"])
                kept.update({f"{k}_f{i}": f[k] for k in f})
                kept.update({f"test_f{i}": test, f"prior_w{i}": prior[0], f"prior_b{i}": prior[1]})
            print(f"    fold {i + 1}/{self.k} done ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
        if keep is not None:
            keep.parent.mkdir(parents=True, exist_ok=True)
            np.savez(keep, folds=folds, labels=self.y, **kept)
        return {"oof": oof, "val": val, "folds": folds, "seconds": time.perf_counter() - t0}

    def fit_head(self, x: np.ndarray, y: np.ndarray, mix: np.ndarray, prior: tuple, **choices) -> photo_head.PhotoHead:
        """The 11-way head on photo rows ``x``, ``y`` and the Fashion-MNIST rows' features ``mix``, as
        ``photo_head_cv`` fits it (``HEAD``, this run's Fashion-MNIST weight, the CNN's prior);
        ``choices`` replace any of those."""
        return photo_head.fit_head(
            x,
            y,
            extra_features=mix,
            extra_labels=self.sets["mix_y"],
            prior=prior,
            **{**HEAD, "extra_weight": self.extra_weight, "prior_weight": PRIOR_WEIGHT, **choices},
        )

    def score(self, res: dict, how: str, threshold: float) -> dict:
        """Fold mean and sd of every metric, and the mean over folds of the validation renderings
        (every rendering is segmented, so "none" counts wrong)."""
        fm = fold_metrics(self.folders, decide(res["oof"][how], threshold), res["folds"])
        v = [float(np.mean(decide(p, threshold) == self.sets["val_y"])) for p in res["val"][how]]
        return {"cv": fm, "val": (float(np.mean(v)), float(np.std(v)))}


def grid() -> list[Variant]:
    """The grid of the first pass (fold seed 0), as run on 2026-12-04: the shipped CNN, then what learns
    x lr x epochs x Fashion-MNIST mix (docs/PHOTOS.md, top section). Then, with ``--variants``: dense11 at
    8 and 12 epochs, out11 and dense11 with the head's Fashion-MNIST weight 0.3 and 1.0 (``--extra-weight``),
    and fold seeds 1 and 2 for the shipped CNN and the dense recipes that kept the validation renderings."""
    b3, dn = "block3", "dense"
    return [
        Variant("none"),
        *(Variant(b3, 1e-3, ep, m) for ep, m in ((2, 1.0), (5, 1.0), (2, 3.0), (5, 3.0))),
        Variant(b3, 3e-4, 5, 1.0),
        *(Variant(dn, lr, ep, m) for lr, ep, m in ((1e-3, 5, 1.0), (1e-3, 10, 1.0), (3e-3, 5, 1.0), (1e-3, 5, 0.5))),
        Variant("out11", 1e-3, 5, 1.0),
        *(Variant("dense11", 1e-3, ep, 1.0) for ep in (5, 8, 12)),
    ]


def cv_summary(cache: Path, variant: Variant, threshold: float, bases: list[str] | None = None) -> dict:
    """The chosen recipe's CV figures from every fold seed's results file (``combined-seed*.json`` for a
    head on several tuned copies): mean over seeds of the fold means and of the spreads (sd over the
    folds), and the validation renderings."""
    runs = []
    several = bases is not None and list(bases) != [BASE]
    for f in sorted(cache.glob("combined-seed*.json" if several else "finetune-seed*.json")):
        runs += [
            r
            for r in json.loads(f.read_text())
            if r["variant"] == asdict(variant)
            and r["by"] == "head"
            and r["threshold"] == threshold
            and (not several or r["bases"] == list(bases))
        ]
    seeds = sorted({r["seed"] for r in runs})
    runs = [next(r for r in runs if r["seed"] == s) for s in seeds]
    if not runs:
        raise SystemExit(f"no CV results for {variant} at threshold {threshold} in {cache}")
    mean = {m: float(np.mean([r["cv"][m][0] for r in runs])) for m in runs[0]["cv"]}
    spread = {m: float(np.mean([r["cv"][m][1] for r in runs])) for m in runs[0]["cv"]}
    val = float(np.mean([r["val"][0] for r in runs]))
    return {"fold_seeds": seeds, "mean": mean, "spread_over_folds": spread, "photo_like_val": val}


def combined_cv(
    cv: FineTuneCV, cache: Path, variant: Variant, bases: list[str], seed: int, choices: dict | None = None
) -> list[dict]:
    """CV of the head on the features of every base's tuned copy side by side, from the kept fold
    features (each fold's copies were tuned on the same training folds: the labels and folds are the
    photo CNN's whatever the base), fitted as ``run`` fits it, the prior from the first base;
    ``choices`` replace the head's (``C``, ``class_weight``, ``extra_weight``, ``prior_weight``)."""
    parts = [kept_features(cache, b, variant, seed) for b in bases]
    folds = parts[0]["folds"]
    if any(not np.array_equal(p["folds"], folds) for p in parts):
        raise SystemExit("the kept features of these bases were not tuned on the same folds")
    probs, val = np.zeros((len(cv.y), photo_head.N_OUTPUTS)), []
    for i in range(cv.k):
        tr, te = folds != i, folds == i
        x = side_by_side(parts, "dev", i)
        prior = padded_prior(parts[0][f"prior_w{i}"], parts[0][f"prior_b{i}"], x.shape[1])
        h = cv.fit_head(x[tr], cv.y[tr], side_by_side(parts, "mix", i), prior, **(choices or {}))
        probs[te] = h.probabilities(x[te])
        val.append(h.probabilities(side_by_side(parts, "val", i)))
    res = {"oof": {"head": probs}, "val": {"head": val}, "folds": folds}
    out = []
    for t in THRESHOLDS:
        sc = cv.score(res, "head", t)
        print(
            row(
                f"{' + '.join(bases)}: {variant.label}, {choices or 'head as shipped'}, {t}",
                sc["cv"],
                f" {sc['val'][0]:.1%} ± {sc['val'][1]:.1%} |",
            )
        )
        which = {"variant": asdict(variant), "bases": bases, "head_choices": choices or {}}
        out.append({**which, "by": "head", "threshold": t, "seed": seed, "machine": this_machine(), **sc})
    return out


def ship(cv: FineTuneCV, variant: Variant, threshold: float, bases: list[str], cache: Path, models_dir: Path) -> int:
    """Fine-tune every base on every dev photo with the chosen recipe; write each tuned network to
    ``models/feature_models/BASE_tuned.keras`` (flip-TTA wrapped, as the shipped CNN is) with its card,
    the head fitted on their features side by side beside the shipped photo CNN (its card names the
    feature models, in order) and the dev photos' features."""
    from fmnist_core import registry
    from fmnist_core.machine import machine_info
    from fmnist_core.model import with_flip_tta

    t0 = time.perf_counter()
    summary = cv_summary(cache, variant, threshold, bases)
    sets = cv.sets
    folders, counts = np.unique(cv.folders, return_counts=True)
    by = "an 11th output while tuning, then the head's" if variant.layers in ELEVEN else "only the head's"
    taught = (
        f"{len(cv.y)} phone photos of shared/photos/clothing-dev (CC0; the {int((cv.y == photo_head.NONE).sum())} hats, "
        f"skirts and shorts teach {by} 'none of the ten') with photo augmentation, mixed with "
        f"{variant.mix:g} Fashion-MNIST training image(s) per photo per epoch"
    )
    common = {
        "taught_on": taught,
        "photos": int(len(cv.y)),
        "photos_per_folder": {str(a): int(b) for a, b in zip(folders, counts, strict=True)},
        "cv": {
            "k": cv.k,
            "feature_models_side_by_side": [Base.parse(b).tuned_name for b in bases],
            **summary,
            "note": "stratified k-fold inside clothing-dev; a rejected in-scope photo counts wrong",
        },
        "command": f"python -m scripts.photo_finetune_cv /work/shared/photos/clothing-dev --cache DIR --ship "
        f"--bases {','.join(bases)}",
        "created": time.strftime("%Y-%m-%d"),
    }
    named = {
        "dev": cv.x,
        "mix": sets["mix_x"],
        "val": sets["val_x"],
        "test": sets["test_x"],
        "fm": sets["fmnist_test_x"],
    }
    parts, prior, fm_own = [], None, {}
    for spec in bases:
        t_base = time.perf_counter()
        base = Base.parse(spec)
        weights, arch = base.weights(), base.architecture()
        tuned = fine_tune(weights, variant, cv.x, cv.y, cv.pool, base.seed(0), arch)
        prior = prior or last_layer(tuned)  # the first base's: the photo CNN's opinion
        net = with_flip_tta(ten_class(tuned, weights, arch))
        t_tune = time.perf_counter() - t_base
        path = models_dir / photo_head.FEATURE_MODELS / f"{base.tuned_name}.keras"
        path.parent.mkdir(parents=True, exist_ok=True)
        net.save(path)
        parts.append(features(net, named))
        own = net.predict(sets["fmnist_test_x"][..., None] / 255.0, verbose=0, batch_size=500)
        fm_own[spec] = float(np.mean(own[:, :10].argmax(1) == sets["fmnist_test_y"]))
        card = {
            "kind": "feature model of the photo head: a shipped CNN with its last layers fine-tuned on real photos",
            "started_from": f"shipped:{base.name}",
            "tuning_seed": base.tune_seed,
            "recipe": {
                **asdict(variant),
                "trainable": [*trainable(variant, arch), *(("probs11",) if variant.layers in ELEVEN else ())],
                "batch": BATCH,
                "optimizer": "Adam, cosine decay",
                "batchnorm": "frozen",
            },
            **common,
            "fashion_mnist_test_own_output": fm_own[spec],
            "train_seconds": round(t_tune, 1),
            "machine": machine_info(),
            "note": f"not a model to pick: the head reads its fc features; the CNN's own answer stays shipped:{BASE}",
        }
        path.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
        keras_clear()
    f = {k: np.concatenate([p[k] for p in parts], axis=1) for k in named}
    prior = padded_prior(*prior, f["dev"].shape[1])
    h = cv.fit_head(f["dev"], cv.y, f["mix"], prior, extra_weight=HEAD["extra_weight"], none_threshold=threshold)
    val = float(np.mean(h.decide(h.probabilities(f["val"])) == sets["val_y"]))
    test_p = h.probabilities(f["test"])
    test = float(np.mean(np.where(sets["test_seg"], h.decide(test_p), test_p[:, :10].argmax(1)) == sets["test_y"]))
    fm_head = float(np.mean(h.probabilities(f["fm"])[:, :10].argmax(1) == sets["fmnist_test_y"]))
    names = [Base.parse(b).tuned_name for b in bases]
    head_card = {
        "backbone": f"shipped:{BASE}",
        "feature_model": names if len(names) > 1 else names[0],
        **common,
        "fashion_mnist_images": int(len(sets["mix_y"])),
        "photo_like_val_300": val,
        "photo_like_test_300": test,
        "fashion_mnist_test_through_head": fm_head,
        "fashion_mnist_test_backbone": cv.fm_backbone,
        "measured_on": this_machine(),
    }
    head_name = BASE + registry.HEAD_SUFFIX
    photo_head.save_head(replace_card(h, head_card), models_dir / f"{head_name}.npz")
    dev_file = models_dir / f"{head_name}.devfeatures.npz"
    write_dev_features(dev_file, f["dev"], cv.y, cv.folders, f["mix"], sets["mix_y"], HEAD["extra_weight"])
    print(
        json.dumps(
            {
                "val": val,
                "test": test,
                "fm_head": fm_head,
                "fm_own_tuned": fm_own,
                "seconds": time.perf_counter() - t0,
                "cv": summary,
            },
            indent=1,
        )
    )
    return 0


def replace_card(h: photo_head.PhotoHead, card: dict) -> photo_head.PhotoHead:
    """The head with ``card`` added to its own (the fit's choices and row counts stay)."""
    return replace(h, card={**h.card, **card})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/photo-finetune-cv"))
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0, help="fold seed")
    ap.add_argument("--variants", type=str, default="", help="JSON list of Variant fields (default: the grid)")
    ap.add_argument("--out", type=Path, default=None, help="results JSON (default: CACHE/finetune-seedN.json)")
    ap.add_argument(
        "--extra-weight", type=float, default=HEAD["extra_weight"], help="Fashion-MNIST row weight in the head"
    )
    ap.add_argument(
        "--base", default=BASE, help="the shipped wide_cnn to fine-tune (labels and folds stay the photo CNN's)"
    )
    ap.add_argument(
        "--keep-features", action="store_true", help="write each fold's tuned features to CACHE/foldfeat-*.npz"
    )
    ap.add_argument(
        "--combine",
        action="store_true",
        help="CV of the head on --bases' kept fold features side by side (each run with --keep-features first)",
    )
    ap.add_argument(
        "--head-choices", default="{}", help='with --combine: JSON head choices, e.g. {"class_weight": "balanced"}'
    )
    ap.add_argument(
        "--bases", default=",".join(CHOSEN_BASES), help="comma-separated shipped CNNs for --combine and --ship"
    )
    ap.add_argument("--ship", action="store_true", help="fine-tune on all photos with the chosen recipe and write it")
    ap.add_argument("--choice", type=str, default=json.dumps(asdict(CHOSEN)), help="JSON Variant to --ship")
    ap.add_argument("--threshold", type=float, default=CHOSEN_THRESHOLD, help="the head's none threshold to --ship")
    ap.add_argument("--models-dir", type=Path, default=Path(__file__).resolve().parent.parent / "models")
    args = ap.parse_args()
    t0 = time.perf_counter()
    dev = prepare_all(args.root, args.cache)
    sets = photo_like_sets(args.cache)
    base = backbone_features(BASE, dev, sets, args.cache)
    cv = FineTuneCV(dev, sets, base, args.k, args.base)
    cv.extra_weight = args.extra_weight
    bases = args.bases.split(",")
    if args.ship:
        return ship(cv, Variant(**json.loads(args.choice)), args.threshold, bases, args.cache, args.models_dir)
    if args.combine:
        out = args.out or args.cache / f"combined-seed{args.seed}.json"
        variants = [Variant(**v) for v in json.loads(args.variants)] if args.variants else [CHOSEN]
        choices = json.loads(args.head_choices)
        again = [(bases, asdict(v), choices) for v in variants]  # results of this run replace earlier ones
        old = json.loads(out.read_text()) if out.is_file() else []
        kept = [r for r in old if (r["bases"], r["variant"], r.get("head_choices", {})) not in again]
        print(header(f"bases, variant, threshold (fold seed {args.seed})", " photo-like val |"))
        for v in variants:
            kept += combined_cv(cv, args.cache, v, bases, args.seed, choices)
        out.write_text(json.dumps(kept, indent=1))
        return 0
    variants = [Variant(**v) for v in json.loads(args.variants)] if args.variants else grid()
    out = args.out or args.cache / f"finetune-seed{args.seed}.json"
    results = json.loads(out.read_text()) if out.is_file() else []
    print(f"## Fine-tuning, {args.k}-fold, fold seed {args.seed} (validation floor {VAL_FLOOR:.0%})\n")
    print(header("variant, answered by, threshold", " photo-like val |"))
    for v in variants:
        res = cv.run(v, args.seed, kept_path(args.cache, args.base, v, args.seed) if args.keep_features else None)
        for how in ("head", "out11") if v.layers in ELEVEN else ("head",):
            for t in THRESHOLDS:
                s = cv.score(res, how, t)
                print(row(f"{v.label}, {how}, {t}", s["cv"], f" {s['val'][0]:.1%} ± {s['val'][1]:.1%} |"), flush=True)
                results.append(
                    {
                        "variant": asdict(v),
                        "by": how,
                        "threshold": t,
                        "seed": args.seed,
                        "machine": this_machine(),
                        "head_extra_weight": cv.extra_weight,
                        **s,
                    }
                )
        print(f"    ({res['seconds']:.0f} s for the {args.k} folds)", file=sys.stderr, flush=True)
        out.write_text(json.dumps(results, indent=1))
    print(f"\n{time.perf_counter() - t0:.0f} s; results in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
