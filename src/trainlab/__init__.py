"""trainlab: make neural networks train well — optimizers, schedules, initialization,
normalization, regularization, search and the lab that shows why each choice works.

``trainlab.fit`` trains your own model on your own data; ``trainlab.compare`` runs variants
over seeds; ``register_model`` / ``register_dataset`` make names a config can use;
``Callback`` is the base of a run's hooks. They load on first use, as the subpackages do
(``trainlab.optim``, ``trainlab.train``, …), so ``import trainlab`` (and ``trainlab --help``)
stays fast.
"""

import importlib
import importlib.util
from typing import Any

from trainlab.errors import ConfigError
from trainlab.targets import register_dataset, register_model

__version__ = "0.1.0"
__all__ = ["Callback", "ConfigError", "__version__", "compare", "fit", "register_dataset", "register_model"]


def __getattr__(name: str) -> Any:
    if name == "fit":
        from trainlab.train.fit import fit

        return fit
    if name == "Callback":
        from trainlab.callbacks import Callback

        return Callback
    if not name.startswith("_") and importlib.util.find_spec(f"trainlab.{name}") is not None:
        # a subpackage on first use: trainlab.optim.Adam, and trainlab.compare (callable: compare(...))
        return importlib.import_module(f"trainlab.{name}")
    raise AttributeError(f"module 'trainlab' has no attribute {name!r}")
