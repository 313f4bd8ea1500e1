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


def model_archive(ref: ModelRef) -> bytes:
    """The zip (bytes) holding ``NAME.keras``, ``NAME.json`` and ``README.txt`` for ``ref``."""
    name = archive_name(ref)
    meta = ref.meta()
    acc = meta.get("test_accuracy")
    readme = README.format(
        name=name,
        underline="=" * len(name),
        classes=", ".join(meta.get("class_names") or []) or "see the JSON",
        accuracy=f"{acc:.2%}" if isinstance(acc, (int, float)) else "not recorded",
    )
    buf = io.BytesIO()
    stamp = time.localtime()[:6]
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        # ZIP_STORED for the .keras file: it is a zip already, deflating it again gains nothing.
        info = zipfile.ZipInfo(f"{name}/{name}.keras", date_time=stamp)
        info.compress_type = zipfile.ZIP_STORED
        z.writestr(info, Path(ref.path).read_bytes())
        z.writestr(zipfile.ZipInfo(f"{name}/{name}.json", date_time=stamp), json.dumps(meta, indent=1))
        z.writestr(zipfile.ZipInfo(f"{name}/README.txt", date_time=stamp), readme)
    return buf.getvalue()
