"""scalinglaws: the scaling laws of composing specialists, on small LMs trained from scratch.

Layers (ARCHITECTURE.md): `core` (base), `data` and `models`, the shared machinery (`training`,
`evaluation`, `merge`, `laws`, `fitting`), one package per study under `studies/`, and the CLI.
Notebooks only call into this package.
"""
import warnings

# transformers imports tqdm.auto, which in a Jupyter kernel without ipywidgets warns once at import;
# the book's chapters show no progress bars, so the warning would only leak into the pages.
warnings.filterwarnings("ignore", message="IProgress not found")

__version__ = "0.1.0"
