"""Take the model home: one .zip with the ``.keras`` file, its JSON and a short README.

The archive needs nothing of this project to use: ``keras.models.load_model("NAME.keras")``
loads it with plain Keras 3; the JSON holds the config, class names, input range and test
metrics. Built in memory (a model is a few MB) for ``st.download_button`` and the CLI.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path
from typing import Any

from .registry import ModelRef

README = """{name}
{underline}

A Fashion-MNIST classifier trained with Fashion-MNIST CNN Studio.

Files:
  {name}.keras   the model (Keras 3 format)
  {name}.json    its metadata: config, class names, test accuracy, confusion matrix, history

Load it with plain Keras (no other code needed):

  import keras, numpy as np
  model = keras.models.load_model("{name}.keras")
  # images: float32, shape (N, 28, 28, 1), pixels in [0, 1], a light garment on black
  probs = model.predict(np.zeros((1, 28, 28, 1), "float32"))
  print(probs.argmax(axis=1))

Class names, in output order: {classes}
Test accuracy on the 10,000 Fashion-MNIST test images: {accuracy}
"""


def archive_name(ref: ModelRef) -> str:
    """A file-system-safe base name: the shipped model's name or the run id."""
    return ref.key.split(":", 1)[1] if ":" in ref.key else Path(ref.path).stem


def pack(members: list[tuple[str, bytes | str]]) -> bytes:
    """A zip (bytes) of ``(path inside, content)`` members, dated now.

    Members that are zips already (``.keras``) are stored, the rest deflated.
    """
    buf = io.BytesIO()
    stamp = time.localtime()[:6]
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for path, content in members:
            info = zipfile.ZipInfo(path, date_time=stamp)
            # ZIP_STORED for a .keras file: it is a zip already, deflating it again gains nothing.
            info.compress_type = zipfile.ZIP_STORED if path.endswith(".keras") else zipfile.ZIP_DEFLATED
            z.writestr(info, content)
    return buf.getvalue()


def model_archive(
    ref: ModelRef, extra: list[tuple[str, bytes | str]] | None = None, meta: dict[str, Any] | None = None
) -> bytes:
    """The zip (bytes) holding ``NAME.keras``, ``NAME.json`` and ``README.txt`` for ``ref``.

    ``extra``: more ``(file name, content)`` members in the same folder (the export's
    preprocessing contract and example script); ``meta``: the JSON to store (default the model's).
    """
    name = archive_name(ref)
    meta = ref.meta() if meta is None else meta
    acc = meta.get("test_accuracy")
    readme = README.format(
        name=name,
        underline="=" * len(name),
        classes=", ".join(meta.get("class_names") or []) or "see the JSON",
        accuracy=f"{acc:.2%}" if isinstance(acc, (int, float)) else "not recorded",
    )
    members: list[tuple[str, bytes | str]] = [
        (f"{name}.keras", Path(ref.path).read_bytes()),
        (f"{name}.json", json.dumps(meta, indent=1)),
        ("README.txt", readme),
        *(extra or []),
    ]
    return pack([(f"{name}/{path}", content) for path, content in members])
