"""The OptVQ assignment: transport-plan marginals, full code usage where nearest neighbour collapses, global
marginals across processes, chunked mode, and Sinkhorn inside a residual quantizer."""

import multiprocessing as mp
import socket

import pytest
import torch
import torch.distributed as dist

from mmquant.quantizers import (
    SinkhornQuantizer,
    VectorQuantizer,
    build_quantizer,
    sinkhorn,
    sinkhorn_assign,
    sinkhorn_plan,
)
from mmquant.quantizers.functional import _default_block_rows, nearest_code


@pytest.mark.parametrize("n,k", [(512, 128), (2048, 64), (300, 300)])
def test_plan_marginals_are_uniform(n, k):
    x, c = torch.randn(n, 8), torch.randn(k, 8) * 0.5

    def errors(plan):  # largest deviation of a token's mass from 1 and of a code's mass from N/K (relative)
        return float((plan.sum(1) - 1).abs().max()), float(((plan.sum(0) * k / n) - 1).abs().max())

    # Each iteration ends by normalising tokens, as the reference; with the reference's +1e-8 guards a token far
    # from every code keeps less than its mass until the codes have moved mass toward it, so both marginals
    # converge together as the iterations go on.
    history = [errors(sinkhorn_plan(x, c, n_iters=n_iters)) for n_iters in (1, 5, 20, 80)]
    token_err, code_err = zip(*history)
    assert all(a >= b for a, b in zip(code_err, code_err[1:])), history
    assert all(a >= b - 1e-5 for a, b in zip(token_err, token_err[1:])), history
    assert token_err[-1] < 1e-3 and code_err[-1] < 1e-3, history  # converged: uniform within 1e-3
    assert torch.equal(sinkhorn_plan(x, c, n_iters=80).argmax(1), sinkhorn_assign(x, c, n_iters=80))


def test_plan_argmax_is_the_assignment():
    x, c = torch.randn(1000, 16), torch.randn(256, 16)
    assert torch.equal(sinkhorn_plan(x, c).argmax(1), sinkhorn_assign(x, c))


def _clustered(k, per_cluster, dim, offset):
    centers = torch.randn(k, dim) * 3 + offset
    return (centers[:, None] + 0.1 * torch.randn(k, per_cluster, dim)).reshape(-1, dim)


def test_one_assignment_uses_more_codes_than_nearest_neighbour():
    k, dim = 64, 8
    data = _clustered(k, 32, dim, offset=3.0)  # off-centre of the codebook's N(0, 1) initialisation
    vq = VectorQuantizer(dim=dim, codebook_size=k)
    ot = SinkhornQuantizer(dim=dim, codebook_size=k)
    ot.load_state_dict(vq.state_dict())  # the same poor initialisation
    nn_usage, ot_usage = float(vq(data).usage), float(ot(data).usage)
    assert nn_usage < 0.5, nn_usage  # the nearest codes are the few on the side of the data
    assert ot_usage > max(0.6, 2 * nn_usage), (nn_usage, ot_usage)  # one step already spreads over the codebook


def test_training_keeps_every_code_alive():
    """Codebook training on clustered data from a poor initialisation, with the paper's shared affine transform:
    OptVQ ends at ~100% usage, nearest neighbour stays collapsed."""
    k, dim = 32, 4
    data = _clustered(k, 16, dim, offset=3.0)
    usages = {}
    for qtype in ("vq", "sinkhorn"):
        torch.manual_seed(1)
        q = build_quantizer(qtype, dim=dim, codebook_size=k, use_affine=True)
        opt = torch.optim.Adam(q.parameters(), lr=0.05)
        for _ in range(150):
            opt.zero_grad()
            out = q(data)
            out.loss.backward()
            opt.step()
        q.eval()
        usages[qtype] = (float(out.usage), float(q(data).usage))  # (training assignment, nearest code)
    assert usages["sinkhorn"][0] >= 0.95 and usages["sinkhorn"][1] >= 0.9, usages
    assert usages["vq"][0] < 0.5 and usages["vq"][1] < 0.5, usages


@pytest.mark.parametrize(
    "n,k,d,scale,offset",
    [(512, 128, 8, 1.0, 0.0), (3000, 700, 16, 2.0, 1.0), (8192, 1024, 2, 1.0, 0.0), (2000, 300, 2, 3.0, 2.0)],
)
def test_kernel_gives_the_readable_reference_indices(n, k, d, scale, offset):
    """The fast kernel against the oracle, ``sinkhorn(...).argmax(1)``, including the tiny heads (D=2) of the
    ``optvq-mnist`` model."""
    g = torch.Generator().manual_seed(n + k + d)
    x, c = torch.randn(n, d, generator=g) * scale + offset, torch.randn(k, d, generator=g)
    oracle = sinkhorn(x, c).argmax(1)
    assert torch.equal(sinkhorn_assign(x, c), oracle)
    assert torch.equal(sinkhorn_assign(x, c, max_buffer_elements=n * k // 3, block_rows=97), oracle)


def test_chunked_mode_matches_buffered_mode():
    x, c = torch.randn(3000, 16) * 2 + 1, torch.randn(700, 16)
    dense = sinkhorn_assign(x, c)
    assert torch.equal(sinkhorn_assign(x, c, max_buffer_elements=10_000, block_rows=97), dense)
    assert torch.equal(sinkhorn_assign(x, c, block_rows=1), dense)
    # a GPU's default blocks (256 MiB: here the whole matrix in one block) give the same indices
    gpu_rows = _default_block_rows(700, torch.device("cuda"))
    assert gpu_rows >= 3000 > _default_block_rows(700, torch.device("cpu"))
    assert torch.equal(sinkhorn_assign(x, c, block_rows=gpu_rows), dense)
    assert torch.equal(nearest_code(x, c, block_rows=gpu_rows), nearest_code(x, c))


def test_sinkhorn_only_in_training_by_default():
    q = SinkhornQuantizer(dim=4, codebook_size=16)
    x = torch.randn(200, 4) + 3
    q.eval()
    nearest = VectorQuantizer(dim=4, codebook_size=16)
    nearest.load_state_dict(q.state_dict())
    assert torch.equal(q(x).indices, nearest.eval()(x).indices)
    q.sinkhorn_at_inference = True
    assert float(q(x).usage) > float(nearest(x).usage)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world, port, x, c, sizes, queue):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        torch.set_num_threads(1)
        start = sum(sizes[:rank])
        local = x[start : start + sizes[rank]]
        idx = sinkhorn_assign(local, c)  # distributed is detected from the process group
        q = SinkhornQuantizer(dim=x.shape[1], codebook_size=c.shape[0])
        with torch.no_grad():
            q.embedding.weight.copy_(c)
        qidx = q(local).indices
        # plain lists, not tensors: a tensor in a torch.multiprocessing queue is shared through a file descriptor
        # that the parent fetches from this process, which may already have exited (flaky under load)
        queue.put((rank, idx.tolist(), qidx.tolist()))
    finally:
        dist.destroy_process_group()


def test_two_processes_give_the_one_process_assignment():
    """Marginals are global: each process holds part of the batch (unequal parts), the result is the whole batch's."""
    x, c = torch.randn(700, 8) * 2, torch.randn(64, 8)
    sizes = [300, 400]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_worker, args=(r, 2, port, x, c, sizes, queue)) for r in range(2)]
    for p in procs:
        p.start()
    results = {r: (torch.tensor(i), torch.tensor(qi)) for r, i, qi in (queue.get(timeout=120) for _ in procs)}
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    whole = sinkhorn_assign(x, c, distributed=False)
    assert torch.equal(torch.cat([results[0][0], results[1][0]]), whole)
    assert torch.equal(torch.cat([results[0][1], results[1][1]]), whole)
    # and it differs from what each process would pick alone (the marginals really are global)
    alone = torch.cat([sinkhorn_assign(x[:300], c, distributed=False), sinkhorn_assign(x[300:], c, distributed=False)])
    assert not torch.equal(alone, whole)


def test_residual_sinkhorn_trains_without_diverging():
    torch.manual_seed(0)
    dim = 8
    data = torch.randn(1024, dim) @ torch.randn(dim, dim)
    encoder, decoder = torch.nn.Linear(dim, dim), torch.nn.Linear(dim, dim)
    rq = build_quantizer("residual", dim=dim, codebook_size=32, num_stages=3, stage_type="sinkhorn", use_affine=True)
    params = [*encoder.parameters(), *decoder.parameters(), *rq.parameters()]
    opt = torch.optim.Adam(params, lr=3e-3)
    losses = []
    for step in range(300):
        batch = data[torch.randint(0, len(data), (256,))]
        out = rq(encoder(batch))
        recon = torch.nn.functional.mse_loss(decoder(out.quantized), batch)
        opt.zero_grad()
        (recon + out.loss).backward()
        opt.step()
        losses.append(float(recon.detach()))
        assert torch.isfinite(out.loss), f"diverged at step {step}"
    first, last = sum(losses[:20]) / 20, sum(losses[-20:]) / 20
    assert last < 0.3 * first, (first, last)
    rq.eval()
    out = rq(encoder(data))
    per_stage = [len(out.indices[:, s].unique()) / 32 for s in range(3)]
    assert min(per_stage) > 0.9, per_stage  # deep stages keep using their codebooks


def _codebook_worker(rank, world, port, queue):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        torch.set_num_threads(1)
        torch.manual_seed(rank)  # different data and different random picks on each process
        q = build_quantizer("vq", dim=4, codebook_size=16, kmeans_init=True, ema_decay=0.9, dead_code_threshold=2.0)
        for step in range(5):
            x = torch.randn(2, 20, 4) + 3 * rank
            mask = torch.ones(2, 20, dtype=torch.bool)
            if rank == 1 and step < 2:
                mask[:] = False  # this process holds only padding for two steps
            q(x, mask=mask)
        # plain lists (exact for float32): see _worker
        queue.put((rank, q.embedding.weight.detach().tolist(), q.ema_cluster_size.tolist()))
    finally:
        dist.destroy_process_group()


def test_codebook_updates_stay_identical_across_processes():
    """k-means init, EMA and dead-code restarts under two processes, one of them seeing only padding at first:
    no hang, and both processes end with the same codebook."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_codebook_worker, args=(r, 2, port, queue)) for r in range(2)]
    for p in procs:
        p.start()
    results = {r: (torch.tensor(w), torch.tensor(n)) for r, w, n in (queue.get(timeout=120) for _ in procs)}
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert torch.equal(results[0][0], results[1][0])
    assert torch.equal(results[0][1], results[1][1])


def test_cpu_workspace_is_reused_and_released():
    from mmquant.quantizers import sinkhorn_kernel

    x, c = torch.randn(300, 4), torch.randn(50, 4)
    sinkhorn_kernel.release_workspace()
    first = sinkhorn_assign(x, c)
    buffer = sinkhorn_kernel._workspace.buffer
    assert buffer is not None and buffer.numel() >= 300 * 50
    assert torch.equal(sinkhorn_assign(x, c), first)  # the same buffer, overwritten: the same answer
    assert sinkhorn_kernel._workspace.buffer is buffer
    assert torch.equal(sinkhorn_assign(x[:100], c), sinkhorn(x[:100], c).argmax(1))  # a smaller view of it
    assert sinkhorn_kernel._workspace.buffer is buffer
    plan = sinkhorn_plan(x, c)  # returned to the caller: never the shared workspace
    assert plan.untyped_storage().data_ptr() != buffer.untyped_storage().data_ptr()
    sinkhorn_kernel.release_workspace()
    assert sinkhorn_kernel._workspace.buffer is None
    assert torch.equal(sinkhorn_assign(x, c), first)
