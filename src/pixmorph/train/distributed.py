"""Data-parallel training across processes started by ``torchrun`` (one per GPU, or several on a CPU).

Every process holds a full copy of the method. Each one trains on its own shard of every global
batch; after each backward the gradients of the optimizer being stepped are averaged across the
processes, so all copies take the same step and stay identical.

Why not wrap the networks in ``DistributedDataParallel``: a GAN step runs the discriminator inside
the generator's update with the discriminator frozen, and the discriminator twice (real, fake)
before its own backward. DDP's reducer expects each wrapped module's parameters to receive
gradients exactly once per forward, so GAN code under DDP needs per-phase ``no_sync`` calls that
the method would have to make. Averaging in the loop's ``update`` keeps methods unaware of
distribution; NVlabs' StyleGAN3 trainer averages its gradients the same way (its predecessor StyleGAN2-ADA
wrapped each network in DDP and switched synchronisation per phase).

Per process: the random numbers a step draws (two-step's z, DeepSIM's warps, dropout). Every process
starts from the run's seed, so the weights start identical; then before each step every process but the
first reseeds from (seed, its rank, step), so each shard gets noise of its own. The first process's stream
is a one-process run's, which the checkpoint holds; the others' follow from the step, so a resume draws
what the uninterrupted run drew. CycleGAN's history pools of generated images (each holds its own process's fakes, as each
GPU's would in the reference). Identical on every process, since they follow from identical weights: the
weights, optimizer states and FUNIT's EMA generator. Batch norm (pix2pix, two-step) is synchronised on
GPUs (``SyncBatchNorm``: the statistics of the global batch, as one process would compute them); torch
has no CPU ``SyncBatchNorm``, so CPU processes normalise over their own shard.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import nn

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init(device: torch.device) -> tuple[World, torch.device]:
    """Join the process group torchrun describes in the environment; returns this process's device
    (``cuda:LOCAL_RANK`` on GPUs). A single process gets ``World()`` and ``device`` unchanged."""
    if not launched_by_torchrun():
        return World(), device
    world = torchrun_world()
    stop_with_the_launcher()
    if device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return world, device


def torchrun_world() -> World:
    """This process's place in the run torchrun describes in the environment."""
    return World(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", "0")))


def stop_with_the_launcher() -> None:
    """SIGTERM to this process once the process that started it (torchrun) is gone: a launcher killed with
    kill -9, or its terminal closed, otherwise leaves its processes training unseen and unstoppable by
    Ctrl-C. SIGTERM makes them save at the end of the step and stop, as Ctrl-C does. A thread watches the
    parent process id (once a second) rather than Linux's PR_SET_PDEATHSIG, which fires when the parent
    *thread* that started the process ends: torchrun starts its processes from a thread that ends early."""
    if os.name != "posix":
        return
    import signal
    import threading
    import time

    parent = os.getppid()  # (1 when the launcher is a container's first process: not a sign of its death)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="pixmorph-launcher-watch", daemon=True).start()


def backend() -> str:
    return dist.get_backend() if dist.is_initialized() else "none"


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def sync_batch_norm(nets: nn.ModuleDict, device: torch.device) -> None:
    """Batch norm over the global batch on GPUs: each network's BatchNorm layers become ``SyncBatchNorm``
    in place (the same parameters, so optimizers and checkpoints are unchanged)."""
    if device.type != "cuda":
        return
    from pixmorph.nn.norm import to_sync_batch_norm

    for name, net in nets.items():
        nets[name] = to_sync_batch_norm(net)


def seed_process(world: World, seed: int, step: int) -> None:
    """Give every process but the first its own random numbers for ``step``: a function of (``seed``, rank,
    ``step``), reseeded before each step (cheap: a few microseconds), so nothing of it needs saving."""
    if world.rank == 0:
        return
    import random

    import numpy as np

    mixed = (seed * 1_000_003 + world.rank) * 1_000_033 + step
    torch.manual_seed(mixed % 2**63)
    np.random.seed(mixed % 2**32)
    random.seed(mixed)


def broadcast_weights(module: nn.Module) -> None:
    """Make every process start from rank 0's weights and buffers."""
    for tensor in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(tensor.data, src=0)


def average_gradients(optimizer: torch.optim.Optimizer, world: World) -> None:
    """Average the gradients of ``optimizer``'s parameters across processes, in one flat all-reduce."""
    # Every process runs the same code on same-shaped data, so the same parameters have gradients.
    grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world.size
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def average_scalars(values: torch.Tensor, world: World) -> torch.Tensor:
    if world.distributed:
        values = values.clone()
        dist.all_reduce(values)
        values /= world.size
    return values


def gather_to_main(obj, world: World) -> list | None:
    """``obj`` of every process, in rank order, on the first process (None on the others); ``[obj]`` alone."""
    if not world.distributed:
        return [obj]
    gathered = [None] * world.size if world.is_main else None
    dist.gather_object(obj, gathered, dst=0)
    return gathered


def as_main_sees(value: T, world: World) -> T:
    """The first process's ``value`` on every process: a decision read from the run folder, which the others
    may not see as it does (a folder on the first machine's own disk), must be the same everywhere."""
    if not world.distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_values(value: T, world: World) -> list[T]:
    """``value`` of every process, in rank order, on every process."""
    if not world.distributed:
        return [value]
    values: list = [None] * world.size
    dist.all_gather_object(values, value)
    return values


def any_rank(flag: bool, world: World) -> bool:
    """True on every process when ``flag`` is true on any: all must stop at the same step."""
    if not world.distributed:
        return flag
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
    value = torch.tensor([float(flag)], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


@contextmanager
def failing_together(world: World) -> Iterator[Callable[[], None]]:
    """An error that some processes raise before the first collective reaches every process, instead of the
    others waiting in that collective until it times out (NCCL: ten minutes; a run folder or a checkpoint on
    one machine's own disk is seen by its processes only). The block is given ``agreed``, to call just before
    its first collective: there, and at the block's end if the block ends first, every process says whether it
    failed, and if any did, every one raises the error of the first that did (its type and message; another
    process's named), which the CLI prints once. Errors after ``agreed`` pass through unchanged. Before
    ``agreed`` the block must run no collective: a process that failed would not reach it. A block that the first
    process alone runs (its writing of a file, which the others skip) ends in the same agreement: the others wait
    there for it, as in a barrier, and stop with its error. An error raised for another process's records that
    process in ``raised_by`` (:func:`raised_by`)."""
    said = False

    def agree(error: BaseException | None = None) -> None:
        nonlocal said
        said = True
        if not world.distributed:
            return
        failures: list = [None] * world.size
        try:
            if not any_rank(error is not None, world):  # (one small all-reduce, where none failed)
                return
            dist.all_gather_object(failures, None if error is None else _portable(error))
        except Exception:
            if error is not None:  # the others are gone: this process's own error is the one to say
                raise error from None
            raise
        _raise_the_first_failure(failures, error, world)

    try:
        yield agree
    except BaseException as error:
        if said:
            raise
        agree(error)
        raise  # (not distributed)
    else:
        if not said:
            agree()


def _raise_the_first_failure(failures: list, error: BaseException | None, world: World) -> None:
    """Raise, on every process, the error of the first process whose entry of ``failures`` (one per rank, in rank
    order: None, or what :func:`_portable` made of its error) is not None; ``error`` is this process's own."""
    rank, failure = next(((r, f) for r, f in enumerate(failures) if f is not None), (None, None))
    if failure is None:
        return
    if error is not None and rank == 0 == world.rank:
        raise error
    kind, message = failure
    if rank != 0:
        message = f"{message} (process {rank} of {world.size})"
    try:
        same = kind(message)
    except Exception:  # a class that takes other arguments
        same = RuntimeError(message)
    same = same if str(same) == message else RuntimeError(message)
    if rank != world.rank:
        same.raised_by = rank
    raise same from error


# Agreements before joining, counted so that each one's keys in the store are its own (every process makes the
# same ones, in the same order); the store, kept so that the first process's server outlives the agreement.
_rounds_before_joining = 0
_store_before_joining: dist.Store | None = None


@contextmanager
def failing_together_before_joining() -> Iterator[None]:
    """:func:`failing_together` for the work a process does before it joins the process group (the command's
    options and files, its device): an error there that other machines do not meet (a --config file, a run folder
    or a GPU one machine lacks) stopped that machine's processes before they joined, and the others waited in
    ``init_process_group`` until its timeout (30 minutes; torchrun stops a failed process's siblings on its own
    machine only). Every process says through torchrun's store (the launcher's, or the first process's as
    ``init_process_group`` makes it, which it then shares) whether the block failed; if any did, every one raises
    the error of the first that did. Without torchrun's environment it does nothing."""
    global _rounds_before_joining
    if not launched_by_torchrun() or not os.environ.get("MASTER_ADDR") or not os.environ.get("MASTER_PORT"):
        yield
        return
    world = torchrun_world()
    _rounds_before_joining += 1
    prefix = f"pixmorph/before-joining/{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}/{_rounds_before_joining}/"
    try:
        yield
    except BaseException as error:
        _agree_before_joining(world, prefix, error)
        raise
    _agree_before_joining(world, prefix, None)


def _agree_before_joining(world: World, prefix: str, error: BaseException | None) -> None:
    import datetime
    import time

    global _store_before_joining
    wait = datetime.timedelta(minutes=30)  # init_process_group's own for gloo: as long as one would wait there
    try:
        if _store_before_joining is None:
            by_the_launcher = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
            _store_before_joining = dist.TCPStore(
                os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world.size,
                is_master=world.rank == 0 and not by_the_launcher, timeout=wait, multi_tenant=True,
                wait_for_workers=False)
        store = dist.PrefixStore(prefix, _store_before_joining)
        store.set(f"said/{world.rank}", pickle.dumps(None if error is None else _portable(error)))
        names = [f"said/{rank}" for rank in range(world.size)]
        store.wait(names)
        failures = [pickle.loads(said) for said in store.multi_get(names)]
        store.add("read", 1)
        failed = any(f is not None for f in failures)
        if failed and world.rank == 0:  # its store may be the one they read: it stays until every one has read
            deadline = time.monotonic() + 60
            while store.add("read", 0) < world.size and time.monotonic() < deadline:
                time.sleep(0.05)
    except Exception:
        if error is not None:  # no agreement to be had: this process's own error is the one to say
            raise error from None
        raise
    _raise_the_first_failure(failures, error, world)


def raised_by(error: BaseException, world: World) -> int:
    """The rank of the process whose error ``error`` is: another's where :func:`failing_together` raised that
    process's error here, else this process's."""
    return getattr(error, "raised_by", world.rank)


def _portable(error: BaseException) -> tuple[type, str]:
    """What another process rebuilds ``error`` from: its class (RuntimeError for one defined where another
    process cannot import it) and its message."""
    kind = type(error)
    try:
        pickle.loads(pickle.dumps(kind))
    except Exception:
        kind = RuntimeError
    return kind, str(error)
