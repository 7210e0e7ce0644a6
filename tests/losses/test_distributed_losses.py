"""gather_batch and global_mean in two gloo processes: the loss and the parameter gradients (averaged as DDP does)
equal one process's on the global batch."""

from __future__ import annotations

import os
import socket
import traceback

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from mmquant.losses.contrastive import max_hinge_loss
from mmquant.losses.distributed import gather_batch, global_mean, is_distributed


def _batch():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(8, 6, generator=g), torch.randn(8, 6, generator=g)
    tokens = torch.randint(0, 5, (8, 7), generator=g)
    tokens[:3, 4:] = 0  # padding (id 0): the rows hold different numbers of real tokens
    return x, y, tokens


def _loss(weight, x, y, tokens, gather):
    image, text = x @ weight, y @ weight
    pair = gather_batch(image, text) if gather else (image, text)
    logits = torch.stack([image] * 7, 1)[..., :5]  # (B, 7, 5) a caption head
    nll = F.cross_entropy(logits.flatten(0, 1), tokens.flatten(), ignore_index=0)
    if gather:
        nll = global_mean(nll, (tokens != 0).sum())
    return max_hinge_loss(*pair) + nll


def _worker(rank, port, queue):
    try:
        _work(rank, port, queue)
    except BaseException:
        queue.put((rank, traceback.format_exc(), None))


def _work(rank, port, queue):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        weight = torch.eye(6, requires_grad=True)
        x, y, tokens = _batch()
        rows = slice(rank * 4, rank * 4 + 4)
        loss = _loss(weight, x[rows], y[rows], tokens[rows], gather=True)
        loss.backward()
        grad = weight.grad.clone()
        dist.all_reduce(grad)
        losses = torch.stack([loss.detach()])
        dist.all_reduce(losses)
        queue.put((rank, float(losses) / 2, (grad / 2).tolist()))  # plain lists: the worker exits next
    finally:
        dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_identity_without_a_process_group():
    assert not is_distributed()
    x = torch.randn(3, 2)
    assert gather_batch(x)[0] is x
    loss = torch.tensor(1.5)
    assert global_mean(loss, 4) is loss


@pytest.mark.slow  # two processes
def test_two_processes_match_one_on_the_global_batch():
    weight = torch.eye(6, requires_grad=True)
    loss = _loss(weight, *_batch(), gather=False)
    loss.backward()
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_worker, args=(r, port, queue)) for r in range(2)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=600) for _ in procs]  # a loaded CPU starts torch slowly
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    for _, two_loss, two_grad in results:
        assert two_grad is not None, two_loss  # a worker's traceback
        assert two_loss == pytest.approx(float(loss), rel=1e-5)
        torch.testing.assert_close(torch.tensor(two_grad), weight.grad, rtol=1e-5, atol=1e-6)
