"""Class names of the supported datasets: the one place they are written down."""

FASHION_CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
DIGIT_CLASSES: tuple[str, ...] = tuple(str(d) for d in range(10))

CLASS_NAMES: dict[str, tuple[str, ...]] = {"fashion": FASHION_CLASSES, "mnist": DIGIT_CLASSES}


def class_names(dataset: str = "fashion") -> tuple[str, ...]:
    """Return the ten class names of ``dataset`` ('fashion' or 'mnist')."""
    try:
        return CLASS_NAMES[dataset]
    except KeyError:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {sorted(CLASS_NAMES)}") from None
