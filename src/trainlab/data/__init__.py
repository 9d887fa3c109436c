"""Data: built-in data sets and file loaders (``load``), the in-memory batch iterator,
preprocessing (``trainlab.data.preprocessing``) and batched augmentation (``trainlab.data.augment``)."""

from trainlab.data.datasets import DATASETS, Dataset, load, read_cifar10_binary, read_idx
from trainlab.data.loader import BatchIterator

__all__ = ["DATASETS", "BatchIterator", "Dataset", "load", "read_cifar10_binary", "read_idx"]
