"""Fashion-MNIST CNN Studio core: data, model, training, evaluation, preprocessing.

Never imports streamlit; TensorFlow is imported lazily by the modules that need it, so
``import fmnist_core`` stays cheap for pages that only read run folders.
"""

__version__ = "0.1.0"
