"""Interleaved timing and peak memory of a few callables (what ``tools/benchmark.py`` measures).

Model-agnostic: the variants come in as callables, so this stays below ``models`` in the layering.
"""
import contextlib
import ctypes
import os.path as osp
import statistics
import sys
import time
from typing import Callable, Dict, Iterator, List

import torch


class PeakMemory:
    """Peak memory of a block above what was in use when it started, in MiB.

    CUDA: ``torch.cuda.max_memory_allocated``. CPU: the peak resident set (``VmHWM``), reset to
    the current one before each block through ``/proc/self/clear_refs`` (Linux).
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cpu_reset = device.type == 'cpu' and osp.exists('/proc/self/clear_refs')
        if device.type == 'cpu':
            # Freed tensors go back to the OS (glibc keeps large freed blocks otherwise and the
            # next block would look free): mmap every allocation >= 64 KiB.
            with contextlib.suppress(OSError, AttributeError):
                ctypes.CDLL('libc.so.6').mallopt(-3, 64 * 1024)  # M_MMAP_THRESHOLD

    @contextlib.contextmanager
    def measure(self, record: List[float]) -> Iterator[None]:
        """Append the block's peak (MiB above the memory in use before it) to ``record``."""
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            before = torch.cuda.memory_allocated(self.device)
            yield
            torch.cuda.synchronize(self.device)
            record.append((torch.cuda.max_memory_allocated(self.device) - before) / 2**20)
            return
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL('libc.so.6').malloc_trim(0)
        if self.cpu_reset:
            with open('/proc/self/clear_refs', 'w') as f:
                f.write('5')  # reset the peak RSS (VmHWM) to the current RSS
        before = _proc_status_kib('VmRSS')
        yield
        record.append((_proc_status_kib('VmHWM') - before) / 1024)


def _proc_status_kib(key: str) -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1])
    raise RuntimeError(f'/proc/self/status has no {key}')


def interleaved_measurements(steps: Dict[str, Callable[[], None]], iters: int, warmup: int,
                             memory: PeakMemory, verbose: bool = True
                             ) -> Dict[str, Dict[str, object]]:
    """Time and measure every step once per round, ``warmup + iters`` rounds, interleaved.

    Interleaving spreads slow drifts of a shared machine (other jobs, thermal limits) over every
    step alike, so ratios between steps are more trustworthy than absolute times. Each call is
    timed alone, an accelerator synchronised around it (``torch.utils.benchmark.Timer`` does
    not fit here: its ``timeit`` runs two untimed calls before every timed one, tripling the
    cost of multi-second steps, and its ``blocked_autorange`` times one statement at a time).

    Returns:
        dict: step name -> ``times_s`` (the timed rounds, seconds), ``median_s``, ``spread_s``
        (max - min) and ``peak_mib`` (the largest peak over the timed rounds).
    """
    if iters < 1:
        raise ValueError(f'iters={iters}: time at least one iteration')
    times: Dict[str, List[float]] = {name: [] for name in steps}
    peaks: Dict[str, List[float]] = {name: [] for name in steps}
    for i in range(warmup + iters):
        for name, step in steps.items():
            record: List[float] = []
            with memory.measure(record):
                _synchronize(memory.device)
                start = time.perf_counter()
                step()
                _synchronize(memory.device)
                elapsed = time.perf_counter() - start
            if i >= warmup:
                times[name].append(elapsed)
                peaks[name].extend(record)
        if verbose:
            done = 'warm-up' if i < warmup else ', '.join(
                f'{name} {1000 * times[name][-1]:.0f} ms' for name in steps)
            print(f'round {i + 1}/{warmup + iters}: {done}', file=sys.stderr, flush=True)
    return {name: dict(times_s=values, median_s=statistics.median(values),
                       spread_s=max(values) - min(values), peak_mib=max(peaks[name]))
            for name, values in times.items()}


def _synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
