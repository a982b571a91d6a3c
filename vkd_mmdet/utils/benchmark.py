"""Interleaved timing and peak memory of a few callables (what ``tools/benchmark.py`` measures),
with paired confidence intervals of ratios between them and rounds taken until they are narrow.

Model-agnostic: the variants come in as callables, so this stays below ``models`` in the layering.
"""
import contextlib
import ctypes
import dataclasses
import os.path as osp
import statistics
import sys
import time
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch

from .paired_interval import paired_interval


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


#: A ratio of per-round time sums: (numerator steps, denominator steps).
Ratio = Tuple[Tuple[str, ...], Tuple[str, ...]]


def paired_ratio_interval(numerator: Sequence[float], denominator: Sequence[float],
                          confidence: float = 0.95) -> Dict[str, object]:
    """Student-t confidence interval of the mean of the per-round ratios ``num_i / den_i``.

    Paired by round: the steps of one round ran back to back, so a slow spell of a shared machine
    scales numerator and denominator of that round alike and largely cancels in its ratio, where
    it would widen the spread of each time on its own. The interval is
    ``mean(r) +- t_{(1 + confidence) / 2, n - 1} * stdev(r) / sqrt(n)`` over the ``n`` per-round
    ratios ``r`` (the rounds taken as independent draws of one ratio).

    Returns:
        dict: ``mean``, ``low``, ``high``, ``half_width``, ``confidence``, ``rounds`` and
        ``per_round`` (the ratios, in round order).
    """
    if len(numerator) != len(denominator):
        raise ValueError(f'paired_ratio_interval: {len(numerator)} numerators and '
                         f'{len(denominator)} denominators; one of each per round expected')
    if len(numerator) < 2:
        raise ValueError(f'paired_ratio_interval: {len(numerator)} round(s); a confidence '
                         'interval needs at least 2')
    if not 0 < confidence < 1:
        raise ValueError(f'confidence={confidence}: expected a probability in (0, 1)')
    ratios = [num / den for num, den in zip(numerator, denominator)]
    interval = paired_interval(ratios, confidence)
    return dict(mean=interval.mean, low=interval.low, high=interval.high,
                half_width=interval.half_width, confidence=confidence, rounds=len(ratios),
                per_round=ratios)


def round_ratios(times: Dict[str, List[float]], ratios: Dict[str, Ratio],
                 confidence: float = 0.95) -> Dict[str, Dict[str, object]]:
    """:func:`paired_ratio_interval` of each ratio of ``ratios``: sums of step times per round."""
    intervals = {}
    for name, (numerator, denominator) in ratios.items():
        unknown = sorted(set(numerator + denominator) - set(times))
        if unknown:
            raise KeyError(f'ratio {name!r}: no step named {unknown} (steps: {sorted(times)})')
        per_round = list(zip(*(times[step] for step in numerator + denominator)))
        intervals[name] = paired_ratio_interval(
            [sum(row[:len(numerator)]) for row in per_round],
            [sum(row[len(numerator):]) for row in per_round], confidence)
    return intervals


@dataclasses.dataclass
class StopRule:
    """Adaptive rounds: stop once every ratio is known to ``target_half_width``, within a time.

    After each timed round from the ``min_iters``-th on, measuring stops when every ratio's
    confidence interval (:func:`paired_ratio_interval`) has a half-width at most
    ``target_half_width`` (``'target'``); else when ``max_iters`` rounds are done
    (``'max_iters'``); else, from the second timed round on, when one more round of the mean
    duration so far would end past ``time_limit_s`` after the start of the first (warm-up)
    round (``'time_limit'``: the intervals then fall short of the target, and say by how much).

    Stopping when the interval is narrow enough (optional stopping) makes its coverage slightly
    lower than nominal; ``min_iters`` keeps the standard deviation from being judged on a few
    lucky rounds. For a claim on the edge of a target, re-run with that many fixed rounds.

    Args:
        ratios (dict[str, Ratio]): name -> (numerator steps, denominator steps).
        target_half_width (float): the wanted half-width, in units of the ratio.
        time_limit_s (float): wall-clock budget of all rounds, warm-up included, seconds.
        min_iters (int): timed rounds before the target is checked. Defaults to 5.
        max_iters (int): timed rounds at most. Defaults to 1000.
        confidence (float): the intervals' confidence level. Defaults to 0.95.
    """

    ratios: Dict[str, Ratio]
    target_half_width: float
    time_limit_s: float
    min_iters: int = 5
    max_iters: int = 1000
    confidence: float = 0.95

    def __post_init__(self) -> None:
        if not self.ratios:
            raise ValueError('StopRule: no ratio to resolve')
        if not self.target_half_width > 0:
            raise ValueError(f'target half-width {self.target_half_width}: expected > 0')
        if not self.time_limit_s > 0:
            raise ValueError(f'time limit {self.time_limit_s} s: expected > 0')
        if not 2 <= self.min_iters <= self.max_iters:
            raise ValueError(f'min_iters={self.min_iters}, max_iters={self.max_iters}: expected '
                             '2 <= min_iters <= max_iters (an interval needs two rounds)')

    def reason(self, times: Dict[str, List[float]], elapsed_s: float,
               round_s: float) -> Optional[str]:
        """Why to stop after the timed rounds of ``times`` (None: go on). ``elapsed_s``: since
        the start; ``round_s``: the mean duration of a round so far."""
        done = len(next(iter(times.values())))
        if done >= self.min_iters and all(
                interval['half_width'] <= self.target_half_width
                for interval in round_ratios(times, self.ratios, self.confidence).values()):
            return 'target'
        if done >= self.max_iters:
            return 'max_iters'
        if done >= 2 and elapsed_s + round_s > self.time_limit_s:
            return 'time_limit'
        return None


def interleaved_measurements(steps: Dict[str, Callable[[], None]],
                             rounds: Union[int, StopRule], warmup: int, *,
                             verbose: bool = True,
                             clock: Callable[[], float] = time.perf_counter,
                             before_step: Optional[Callable[[], None]] = None,
                             device: Optional[torch.device] = None) -> Dict[str, object]:
    """Time and measure every step once per round, interleaved: ``warmup`` untimed rounds, then
    ``rounds`` timed rounds, or as many as a :class:`StopRule` asks for.

    Interleaving spreads slow drifts of a shared machine (other jobs, thermal limits) over every
    step alike, so ratios between steps are more trustworthy than absolute times. Each call is
    timed alone, an accelerator synchronised around it (``torch.utils.benchmark.Timer`` does
    not fit here: its ``timeit`` runs two untimed calls before every timed one, tripling the
    cost of multi-second steps, and its ``blocked_autorange`` times one statement at a time).

    Args:
        steps (dict[str, Callable]): name -> argument-free step, run in this order each round.
        rounds (int | StopRule): the number of timed rounds, or when to stop (adaptive).
        warmup (int): untimed rounds first. Memory is measured apart
            (:func:`peak_memory_pass`): on the CPU, :class:`PeakMemory` turns every large
            allocation into a fresh ``mmap``, whose page faults a timing should not pay.
        verbose (bool): print each round to stderr. Defaults to True.
        clock (Callable): seconds, monotonic. Defaults to ``time.perf_counter``.
        before_step (Callable, optional): run before every step, neither timed nor measured
            (``tools/benchmark.py`` restores the weights there, so that every round repeats one
            computation).
        device (torch.device, optional): synchronised around each step when CUDA.

    Returns:
        dict: ``steps``: step name -> ``times_s`` (the timed rounds, seconds), ``median_s``,
        ``spread_s`` (max - min);
        ``rounds`` (timed rounds), ``stop_reason`` (``'iters'`` for a fixed number, else
        :meth:`StopRule.reason`'s) and ``elapsed_s`` (all rounds, warm-up included).
    """
    stop = rounds if isinstance(rounds, StopRule) else None
    if stop is None and rounds < 1:
        raise ValueError(f'iters={rounds}: time at least one iteration')
    times: Dict[str, List[float]] = {name: [] for name in steps}
    start = clock()
    reason = None
    i = 0
    while reason is None:
        round_start = clock()
        for name, step in steps.items():
            if before_step is not None:
                before_step()
            _synchronize(device)
            step_start = clock()
            step()
            _synchronize(device)
            elapsed = clock() - step_start
            if i >= warmup:
                times[name].append(elapsed)
        i += 1
        timed = i - warmup
        if timed > 0:
            if stop is None:
                reason = 'iters' if timed >= rounds else None
            else:
                now = clock()
                reason = stop.reason(times, now - start, (now - start) / i)
        if verbose:
            _print_round(i, warmup, times, stop, round_start, clock)
    return dict(steps={name: dict(times_s=values, median_s=statistics.median(values),
                                  spread_s=max(values) - min(values))
                       for name, values in times.items()},
                rounds=len(next(iter(times.values()))), stop_reason=reason,
                elapsed_s=clock() - start)


def _print_round(i: int, warmup: int, times: Dict[str, List[float]], stop: Optional[StopRule],
                 round_start: float, clock: Callable[[], float]) -> None:
    if i <= warmup:
        print(f'round {i} (warm-up): {clock() - round_start:.1f} s', file=sys.stderr, flush=True)
        return
    line = ', '.join(f'{name} {1000 * values[-1]:.0f} ms' for name, values in times.items())
    if stop is not None and i - warmup >= 2:
        intervals = round_ratios(times, stop.ratios, stop.confidence)
        line += '; ' + ', '.join(f"{name} {interval['mean']:.3f} ± {interval['half_width']:.3f}"
                                 for name, interval in intervals.items())
    print(f'round {i - warmup} (timed): {line}', file=sys.stderr, flush=True)


def _synchronize(device: Optional[torch.device]) -> None:
    if device is not None and device.type == 'cuda':
        torch.cuda.synchronize(device)


def peak_memory_pass(steps: Dict[str, Callable[[], None]], memory: PeakMemory,
                     before_step: Optional[Callable[[], None]] = None) -> Dict[str, float]:
    """Each step run once under ``memory``: its peak (MiB above what was in use before it).

    Apart from the timed rounds of :func:`interleaved_measurements`, after them: measuring a
    CPU peak this way changes the allocator's behaviour (see :class:`PeakMemory`).
    """
    peaks = {}
    for name, step in steps.items():
        if before_step is not None:
            before_step()
        record: List[float] = []
        with memory.measure(record):
            step()
        peaks[name] = record[0]
    return peaks
