"""trainlab: make neural networks train well — optimizers, schedules, initialization,
normalization, regularization, search and the lab that shows why each choice works."""

from trainlab.errors import ConfigError

__version__ = "0.1.0"
__all__ = ["ConfigError", "__version__"]
