"""Exclusive wall time of nested named phases of a step, autograd backward nodes included.

Model-agnostic: callers decide what a phase is (a wrapped method, a set of backward nodes), so
this stays below ``models`` in the layering. Nothing is timed unless a caller wraps something:
training code never runs through it.
"""
import contextlib
import functools
import time
from collections import defaultdict
from typing import Callable, Dict, Iterable, Iterator, List, Set

import torch
from torch import Tensor
from torch.autograd.graph import Node
from torch.utils.hooks import RemovableHandle


class PhaseTimer:
    """Time named phases that may nest; each phase gets its *exclusive* time.

    A phase running inside another (a projector map inside the losses, an autograd node inside
    ``backward``) is subtracted from the outer one, so the phases of a step add up to its wall
    time. An accelerator is synchronised at every boundary (its queued work then counts where it
    was queued; the synchronisations themselves cost a little: use for a breakdown, not for the
    step's time).

    Args:
        device (torch.device): synchronised at phase boundaries when it is CUDA.
        clock (Callable): seconds, monotonic. Defaults to ``time.perf_counter``.

    Example:
        >>> timer = PhaseTimer(torch.device('cpu'))
        >>> with timer.phase('outer'):
        ...     with timer.phase('inner'):
        ...         pass
        >>> sorted(timer.totals)
        ['inner', 'outer']
    """

    def __init__(self, device: torch.device,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.device = device
        self.clock = clock
        self.totals: Dict[str, float] = defaultdict(float)
        self.calls: Dict[str, int] = defaultdict(int)
        # Open phases, innermost last: [name, start, time spent in nested phases].
        self._open: List[list] = []

    def start(self, name: str) -> None:
        """Open phase ``name`` (inside the innermost open phase, if any)."""
        self._synchronize()
        self._open.append([name, self.clock(), 0.0])

    def stop(self, name: str) -> None:
        """Close the innermost phase, which must be ``name``."""
        self._synchronize()
        now = self.clock()
        if not self._open or self._open[-1][0] != name:
            raise RuntimeError(f'PhaseTimer: closing {name!r}, but the innermost open phase is '
                               f'{self._open[-1][0] if self._open else None!r}')
        _, start, nested = self._open.pop()
        self.totals[name] += now - start - nested
        self.calls[name] += 1
        if self._open:
            self._open[-1][2] += now - start

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """The block is phase ``name``."""
        self.start(name)
        try:
            yield
        finally:
            self.stop(name)

    def wrap(self, fn: Callable, name: str) -> Callable:
        """``fn`` whose every call is phase ``name``."""

        @functools.wraps(fn)
        def timed(*args, **kwargs):
            with self.phase(name):
                return fn(*args, **kwargs)

        return timed

    def time_backward(self, nodes: Iterable[Node], name: str) -> List[RemovableHandle]:
        """Each run of these autograd ``nodes`` in a backward pass is phase ``name``.

        The autograd engine runs one node at a time per device (CPU nodes on the thread that
        called ``backward``), so a node's pre-hook and hook bracket its own work only.

        Returns:
            list[RemovableHandle]: remove them to stop timing (the graph's nodes are freed with
            it after a backward pass anyway).
        """
        handles = []
        for node in nodes:
            handles.append(node.register_prehook(lambda grad_outputs: self.start(name)))
            handles.append(node.register_hook(lambda grad_inputs, grad_outputs: self.stop(name)))
        return handles

    def reset(self) -> None:
        """Forget every total (no phase may be open)."""
        if self._open:
            raise RuntimeError(f'PhaseTimer.reset: phases still open: {[p[0] for p in self._open]}')
        self.totals.clear()
        self.calls.clear()

    def _synchronize(self) -> None:
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)


def graph_nodes(outputs: Iterable[Tensor], stop_at: Iterable[Node] = ()) -> List[Node]:
    """The autograd nodes that ``outputs`` were computed through, not going past ``stop_at``.

    ``stop_at`` nodes (e.g. the ``grad_fn`` of the inputs of a block) and everything only
    reachable through them are left out: what remains is the backward of the block that made
    ``outputs`` from those inputs. Leaves' ``AccumulateGrad`` nodes are included.
    """
    boundary: Set[int] = {id(node) for node in stop_at}
    found: Dict[int, Node] = {}
    pending = [out.grad_fn for out in outputs if out.grad_fn is not None]
    while pending:
        node = pending.pop()
        if id(node) in boundary or id(node) in found:
            continue
        found[id(node)] = node
        pending.extend(child for child, _ in node.next_functions if child is not None)
    return list(found.values())
