"""Inside the CNN: what each layer sees of one input, what a channel looks for, a map of the test set.

- ``Inside(model).view(x28)``: each convolution block's activation maps for one 28x28 input (the
  strongest channels first, the layer's name and shape, the share of units that fired), the dense
  layer's strongest units and the ten outputs. One traced forward pass: milliseconds.
- ``Inside(model).filters()``: the first layer's 3x3 filters as small images.
- ``compute_map(model, x_test)``: one pass over the test images that keeps, per image, every
  block's per-channel maxima (so "the 16 test images that excite channel c most" is an argsort),
  the penultimate (``fc``) features, the probabilities, and a 2-D map of the features (t-SNE,
  chosen by measurement: docs/INSIDE.md). ``load_or_compute_map`` keeps it on disk beside the
  model's cached test scores, keyed by the model file's SHA-256.
- ``TestMap.place(features)``: where a new input lands on that map, from its nearest neighbours in
  feature space (t-SNE cannot transform new points); a test image lands exactly on its own point.

A block's activations are the last ReLU output before its pooling layer (``conv1`` in the paper's
CNN, ``relu12`` in the VGG-style nets), so "fired" means "> 0" after the non-linearity. For the
flip-TTA wrapper the layers are the backbone's on the unflipped image (as Grad-CAM shows them);
features and probabilities are the mean over the image and its mirror, as the model's answer is.
"""

from __future__ import annotations

import os
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .evaluate import file_fingerprint, load_scores, save_scores, scores_cache_dir
from .explain import backbone_of
from .ood import FEATURE_LAYER

MAP_METHOD = "tsne"  # chosen by measured quality and time: docs/INSIDE.md
MAP_VERSION = 1  # bump when the file's contents change meaning: old files are then recomputed
NEIGHBOURS = 10  # a new input lands at the distance-weighted mean of this many neighbours' points
TOP_CHANNELS = 16

Progress = Callable[[float, str], None]  # (fraction done in [0, 1], what is happening)


@dataclass(frozen=True)
class LayerView:
    """One convolution block's activations for one input, strongest channels first."""

    name: str  # the Keras layer whose output this is
    block: int  # 1-based
    shape: tuple[int, int, int]  # (height, width, channels) of the whole layer
    fired: float  # share of the layer's units with an activation > 0
    channels: np.ndarray  # (k,) channel numbers, strongest (highest maximum) first
    strength: np.ndarray  # (k,) each shown channel's maximum activation
    maps: np.ndarray  # (k, height, width) float32 activation maps of those channels


@dataclass(frozen=True)
class InsideView:
    """Everything the page shows about one input, from one forward pass."""

    layers: list[LayerView]
    dense_name: str
    dense_size: int
    dense_fired: float
    dense_units: np.ndarray  # (k,) unit numbers, strongest first
    dense_values: np.ndarray  # (k,) their activations
    probs: np.ndarray  # (10,) the model's output
    features: np.ndarray  # (D,) the ``fc`` features (flip-averaged for a TTA model): for ``TestMap.place``


def block_layers(model) -> list:
    """The last ReLU-activated layer before each MaxPooling2D: one per convolution block."""
    import keras

    found, last = [], None
    for layer in backbone_of(model).layers:
        if isinstance(layer, keras.layers.Conv2D):
            # A linear convolution (VGG-style, BN before the ReLU): its block's activation comes later.
            last = layer if layer.get_config().get("activation") == "relu" else None
        elif isinstance(layer, keras.layers.ReLU) or layer.get_config().get("activation") == "relu":
            last = layer
        elif isinstance(layer, keras.layers.MaxPooling2D) and last is not None:
            found.append(last)
            last = None
    if not found:
        raise ValueError(f"model {model.name!r} has no ReLU convolution blocks to show")
    return found


class Inside:
    """One model, probed at every block, the ``fc`` layer and the output in a single traced call."""

    def __init__(self, model, scale: float = 1.0 / 255.0) -> None:
        import keras
        import tensorflow as tf

        self.model = model
        self.scale = scale
        net = backbone_of(model)
        self.tta = net is not model
        self.blocks = block_layers(model)
        self.layer_names = [layer.name for layer in self.blocks]
        dense = net.get_layer(FEATURE_LAYER)
        self.dense_name = dense.name
        probe = keras.Model(net.inputs, [*(b.output for b in self.blocks), dense.output, net.outputs[0]])
        n = len(self.blocks)

        @tf.function(input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32)], reduce_retracing=True)
        def full(x):  # one input: every map
            return [tf.cast(t, tf.float32) for t in probe(x, training=False)]

        @tf.function(input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32)], reduce_retracing=True)
        def summary(x):  # many inputs: per-channel maxima only (the maps themselves would be GBs)
            out = [tf.cast(t, tf.float32) for t in probe(x, training=False)]
            maxima = [tf.reduce_max(t, axis=(1, 2)) for t in out[:n]]
            feats, probs = out[n], out[n + 1]
            if self.tta:  # the model's answer is the mean over the image and its mirror
                flipped = probe(tf.reverse(x, axis=[2]), training=False)
                feats = (feats + tf.cast(flipped[n], tf.float32)) / 2
                probs = (probs + tf.cast(flipped[n + 1], tf.float32)) / 2
            return [*maxima, feats, probs]

        self._full, self._summary = full, summary

    def _x(self, images_u8: np.ndarray) -> np.ndarray:
        return np.asarray(images_u8, np.float32).reshape(-1, 28, 28, 1) * self.scale

    def view(self, image_u8: np.ndarray, top: int = TOP_CHANNELS, top_units: int = TOP_CHANNELS) -> InsideView:
        """Every block's strongest ``top`` channel maps, the dense layer's ``top_units`` and the outputs."""
        x = self._x(image_u8)
        outs = [np.asarray(t)[0] for t in self._full(x)]
        n = len(self.blocks)
        layers = []
        for i, (layer, act) in enumerate(zip(self.blocks, outs[:n], strict=True), start=1):
            peak = act.max(axis=(0, 1))
            order = np.argsort(-peak, kind="stable")[:top]
            layers.append(
                LayerView(
                    name=layer.name,
                    block=i,
                    shape=tuple(int(s) for s in act.shape),
                    fired=float(np.mean(act > 0)),
                    channels=order,
                    strength=peak[order],
                    maps=np.moveaxis(act[:, :, order], -1, 0).astype(np.float32),
                )
            )
        dense = outs[n]
        if self.tta:  # features and output as the model answers: mean over the image and its mirror
            feats, probs = (np.asarray(t)[0] for t in self._summary(x)[n:])
        else:
            feats, probs = dense, outs[n + 1]
        units = np.argsort(-dense, kind="stable")[:top_units]
        return InsideView(
            layers=layers,
            dense_name=self.dense_name,
            dense_size=int(dense.shape[0]),
            dense_fired=float(np.mean(dense > 0)),
            dense_units=units,
            dense_values=dense[units],
            probs=np.asarray(probs, np.float32),
            features=np.asarray(feats, np.float32),
        )

    def features(self, images_u8: np.ndarray) -> np.ndarray:
        """(N, D) ``fc`` features of uint8 images (flip-averaged for a TTA model)."""
        return np.asarray(self._summary(self._x(images_u8))[len(self.blocks)], np.float32)

    def summarise(
        self, images_u8: np.ndarray, batch: int = 500, progress: Callable[[int, int], None] | None = None
    ) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
        """Per-block (N, C) channel maxima, (N, D) features and (N, 10) probabilities of many images."""
        n = len(self.blocks)
        parts: list[list[np.ndarray]] = [[] for _ in range(n + 2)]
        for i in range(0, len(images_u8), batch):
            for store, t in zip(parts, self._summary(self._x(images_u8[i : i + batch])), strict=True):
                store.append(np.asarray(t, np.float32))
            if progress is not None:
                progress(min(i + batch, len(images_u8)), len(images_u8))
        joined = [np.concatenate(p) for p in parts]
        return joined[:n], joined[n], joined[n + 1]

    def filters(self) -> np.ndarray:
        """The first convolution's kernels as (C, kh, kw) float32 images (input channel 0)."""
        import keras

        first = next(layer for layer in backbone_of(self.model).layers if isinstance(layer, keras.layers.Conv2D))
        kernel = np.asarray(first.get_weights()[0], np.float32)  # (kh, kw, 1, C)
        return np.moveaxis(kernel[:, :, 0, :], -1, 0)


def mosaic(maps: np.ndarray, cols: int = 4, gap: int = 1) -> np.ndarray:
    """(k, h, w) maps as one (rows*(h+gap)-gap, cols*(w+gap)-gap) float32 image, row by row; gaps are NaN.

    Each map keeps its own values (no per-tile scaling), so tiles compare like for like; NaN gaps
    draw as blank in Plotly and matplotlib.
    """
    maps = np.asarray(maps, np.float32)
    k, h, w = maps.shape
    rows = max(1, -(-k // cols))
    out = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), np.nan, np.float32)
    for i in range(k):
        r, c = divmod(i, cols)
        out[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = maps[i]
    return out


def tile_centres(k: int, h: int, w: int, cols: int = 4, gap: int = 1) -> np.ndarray:
    """(k, 2) (x, y) pixel centres of the tiles of ``mosaic``: where a click on a tile lands."""
    r, c = np.divmod(np.arange(k), cols)
    return np.stack([c * (w + gap) + (w - 1) / 2, r * (h + gap) + (h - 1) / 2], axis=1)


# ---------------------------------------------------------------- the map of the test set


@dataclass(frozen=True)
class TestMap:
    """The test set as the model sees it: per-channel maxima, features, probabilities and a 2-D map."""

    method: str
    xy: np.ndarray  # (N, 2) float32 map positions
    features: np.ndarray  # (N, D) float32 ``fc`` features
    probs: np.ndarray  # (N, 10) float32
    layer_names: tuple[str, ...]
    channel_max: tuple[np.ndarray, ...]  # per block, (N, C) float16: each image's peak per channel
    seconds: float = 0.0  # how long computing it took (0 when loaded)

    def top_images(self, layer: str, channel: int, k: int = 16) -> np.ndarray:
        """Indices of the ``k`` test images whose maximum in ``channel`` of ``layer`` is highest, highest first."""
        column = self.channel_max[self.layer_names.index(layer)][:, channel].astype(np.float32)
        return np.argsort(-column, kind="stable")[:k]

    def place(self, features: np.ndarray, k: int = NEIGHBOURS) -> np.ndarray:
        """(M, 2) map positions of new feature rows (M, D).

        The inverse-distance-weighted mean of the ``k`` nearest test images' positions in feature
        space; a row equal to a test image's features lands exactly on that image's point.
        """
        q = np.atleast_2d(np.asarray(features, np.float32))
        ref = self.features
        # |q - r|^2 = |q|^2 - 2 q.r + |r|^2: one matrix product for all 10,000 reference rows.
        d2 = (q * q).sum(1)[:, None] - 2 * q @ ref.T + (ref * ref).sum(1)[None, :]
        d2 = np.maximum(d2, 0)
        k = min(k, len(ref))
        near = np.argpartition(d2, k - 1, axis=1)[:, :k]
        out = np.empty((len(q), 2), np.float32)
        size = float(np.sqrt(np.mean((ref * ref).sum(1)))) + 1e-12  # a typical feature vector's length
        for row, idx in enumerate(near):
            # Exact distances for the candidates: the expansion above cancels badly near 0 in float32.
            d = np.linalg.norm(ref[idx] - q[row], axis=1)
            if d.min() <= 1e-4 * size:  # the same image (up to the rounding of another batch size)
                out[row] = self.xy[idx[np.argmin(d)]]
            else:
                w = 1 / d
                out[row] = (self.xy[idx] * w[:, None]).sum(0) / w.sum()
        return out

    def neighbours(self, k: int = NEIGHBOURS, space: str = "map") -> np.ndarray:
        """(N, k) indices of each test image's ``k`` nearest others, on the map or in feature space."""
        from sklearn.neighbors import NearestNeighbors

        data = self.xy if space == "map" else self.features
        return NearestNeighbors(n_neighbors=k + 1).fit(data).kneighbors(data, return_distance=False)[:, 1:]


def embed(features: np.ndarray, method: str = MAP_METHOD, seed: int = 0) -> np.ndarray:
    """(N, 2) float32 map of feature rows: ``tsne`` (PCA to 50 dims first, PCA initialisation) or ``pca``."""
    from sklearn.decomposition import PCA

    f = np.asarray(features, np.float32)
    if method == "pca":
        return PCA(2, random_state=seed).fit_transform(f).astype(np.float32)
    if method != "tsne":
        raise ValueError(f"unknown map method {method!r}; choose 'tsne' or 'pca'")
    from sklearn.manifold import TSNE

    if f.shape[1] > 50:  # the usual step before t-SNE: faster neighbours, little lost (measured: docs/INSIDE.md)
        f = PCA(50, random_state=seed).fit_transform(f)
    perplexity = min(30.0, max(2.0, (len(f) - 1) / 3.5))  # t-SNE needs perplexity < N
    # angle 0.8 (Barnes-Hut's coarser approximation, default 0.5): a quarter less time, same map quality
    # (docs/INSIDE.md); 500 iterations: 1,000 keep barely more neighbours for twice the time.
    tsne = TSNE(2, perplexity=perplexity, init="pca", random_state=seed, max_iter=500, angle=0.8, n_jobs=os.cpu_count())
    return tsne.fit_transform(f).astype(np.float32)


def compute_map(
    model,
    images_u8: np.ndarray,
    method: str = MAP_METHOD,
    progress: Progress | None = None,
    scale: float = 1.0 / 255.0,
    inside: Inside | None = None,
    xy: np.ndarray | None = None,
) -> TestMap:
    """One pass of the model over ``images_u8`` (channel maxima, features, probabilities), then the map.

    ``xy``: the map's positions when they are known already (shipped with the model,
    ``load_shipped_xy``): only the model pass is then run, not the embedding.
    """
    t0 = time.perf_counter()
    say = progress or (lambda _f, _t: None)
    probe = inside or Inside(model, scale)
    total = len(images_u8)

    def passed(done: int, n: int) -> None:
        say(0.4 * done / n, f"Running the model over the test images: {done:,} of {n:,}")

    maxima, feats, probs = probe.summarise(images_u8, progress=passed)
    if xy is None:
        say(0.4, f"Placing {total:,} images on a 2-D map ({method}, the slow part: about a minute) ...")
        xy = embed(feats, method)
        say(1.0, "Map ready")
    else:
        say(1.0, "Map ready (its positions were shipped with the model)")
    return TestMap(
        method=method,
        xy=xy,
        features=feats,
        probs=probs,
        layer_names=tuple(probe.layer_names),
        channel_max=tuple(m.astype(np.float16) for m in maxima),
        seconds=time.perf_counter() - t0,
    )


def map_path(fingerprint: str, dataset: str = "fashion") -> Path:
    """Where the map of the model with this SHA-256 is kept: beside its cached test scores."""
    if not fingerprint or not all(c in "0123456789abcdef" for c in fingerprint) or not dataset.isalnum():
        raise ValueError("fingerprint must be hex and dataset alphanumeric")
    return scores_cache_dir() / f"{fingerprint}-{dataset}.inside.npz"


def save_map(test_map: TestMap, path: Path) -> None:
    """Write the map atomically (temp file + rename); uncompressed, so it loads in a fraction of a second."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"max_{i}": m for i, m in enumerate(test_map.channel_max)}
    fd, tmp = tempfile.mkstemp(prefix=".inside.", suffix=".npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(
                f,
                version=np.int32(MAP_VERSION),
                method=np.str_(test_map.method),
                layers=np.array(test_map.layer_names, dtype=np.str_),
                xy=test_map.xy,
                features=test_map.features,
                probs=test_map.probs,
                **arrays,
            )
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_map(path: Path, n: int | None = None) -> TestMap | None:
    """The map saved at ``path``, or None when it is absent, damaged, of an older version or of another size."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if int(z["version"]) != MAP_VERSION:
                return None
            layers = tuple(str(s) for s in z["layers"])
            tm = TestMap(
                method=str(z["method"]),
                xy=z["xy"],
                features=z["features"],
                probs=z["probs"],
                layer_names=layers,
                channel_max=tuple(z[f"max_{i}"] for i in range(len(layers))),
            )
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    size = len(tm.xy)
    shapes_ok = len(tm.features) == size == len(tm.probs) and all(len(m) == size for m in tm.channel_max)
    return tm if shapes_ok and (n is None or size == n) else None


def shipped_map_path(model_path: Path) -> Path:
    """Where a shipped model's map positions live: ``models/NAME.map.npz`` beside ``NAME.keras``."""
    return Path(model_path).with_suffix(".map.npz")


def save_shipped_xy(test_map: TestMap, model_path: Path, dataset: str = "fashion") -> Path:
    """Write the map's positions beside the model file, keyed by its SHA-256 (about 75 KB).

    Positions are the slow part of a map (t-SNE: about a minute here, more on a slower CPU); the
    rest is one pass of the model, so a shipped model's first map then opens in seconds.
    """
    path = shipped_map_path(model_path)
    np.savez_compressed(
        path,
        version=np.int32(MAP_VERSION),
        method=np.str_(test_map.method),
        fingerprint=np.str_(file_fingerprint(Path(model_path))),
        dataset=np.str_(dataset),
        xy=np.asarray(test_map.xy, np.float32),
    )
    return path


def load_shipped_xy(
    model_path: Path, n: int, dataset: str = "fashion", fingerprint: str | None = None
) -> np.ndarray | None:
    """The (n, 2) positions shipped beside ``model_path``, or None if absent, damaged or not this file's.

    ``fingerprint``: the file's SHA-256 when the caller has it already (else it is computed)."""
    try:
        with np.load(shipped_map_path(model_path), allow_pickle=False) as z:
            ok = (
                int(z["version"]) == MAP_VERSION
                and str(z["method"]) == MAP_METHOD
                and str(z["dataset"]) == dataset
                and str(z["fingerprint"]) == (fingerprint or file_fingerprint(Path(model_path)))
            )
            xy = z["xy"].astype(np.float32)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    return xy if ok and xy.shape == (n, 2) and bool(np.isfinite(xy).all()) else None


def load_or_compute_map(
    model_path: Path,
    images_u8: np.ndarray,
    load_model: Callable[[], object],
    progress: Progress | None = None,
    dataset: str = "fashion",
    scale: float = 1.0 / 255.0,
) -> TestMap:
    """The model file's map of ``images_u8`` from the cache, else computed (``load_model()``), saved and returned.

    Positions shipped beside the model (``load_shipped_xy``) are used when they are this file's,
    so only the model pass runs. The probabilities of the same pass are saved as the model's test
    scores too when none are cached (the Evaluate page then opens without scoring again).
    """
    fp = file_fingerprint(Path(model_path))
    path = map_path(fp, dataset)
    cached = load_map(path, len(images_u8))
    if cached is not None:
        return cached
    if progress:
        progress(0.0, "First look inside this model: loading it ...")
    shipped = load_shipped_xy(model_path, len(images_u8), dataset, fp)
    tm = compute_map(load_model(), images_u8, progress=progress, scale=scale, xy=shipped)
    try:
        save_map(tm, path)
    except OSError:
        pass  # a read-only cache only costs the next open a recomputation
    if load_scores(fp, dataset, len(images_u8)) is None:
        save_scores(fp, dataset, tm.probs)
    return tm
