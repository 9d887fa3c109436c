"""trainlab: make neural networks train well — optimizers, schedules, initialization,
normalization, regularization, search and the lab that shows why each choice works.

``trainlab.fit`` trains your own model on your own data; ``trainlab.compare`` runs variants
over seeds; ``register_model`` / ``register_dataset`` make names a config can use. They load
on first use, so ``import trainlab`` (and ``trainlab --help``) stays fast.
"""

from typing import Any

from trainlab.errors import ConfigError
from trainlab.targets import register_dataset, register_model

__version__ = "0.1.0"
__all__ = ["ConfigError", "__version__", "compare", "fit", "register_dataset", "register_model"]


def __getattr__(name: str) -> Any:
    if name == "fit":
        from trainlab.train.fit import fit

        return fit
    if name == "compare":
        import importlib

        return importlib.import_module("trainlab.compare")  # a module that is also callable: compare(...)
    raise AttributeError(f"module 'trainlab' has no attribute {name!r}")
