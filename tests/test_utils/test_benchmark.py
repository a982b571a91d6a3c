"""vkd_mmdet.utils.benchmark: interleaved rounds, warm-up excluded, peaks of known allocations."""
import statistics
import time

import pytest
import torch

from vkd_mmdet.utils.benchmark import PeakMemory, interleaved_measurements

CPU = torch.device('cpu')


def test_peak_memory_sees_a_known_allocation_and_nothing_else():
    memory = PeakMemory(CPU)
    record = []
    with memory.measure(record):
        block = torch.ones(16 * 2**20)  # 64 MiB of float32, written (resident)
        del block
    with memory.measure(record):
        pass
    allocated, empty = record
    assert 60 <= allocated <= 80
    assert empty < 8


def test_rounds_interleave_the_steps_and_time_only_the_timed_rounds():
    # Each step sleeps longer in every round (round r: (r + 1) * base seconds), so a time can
    # only be reported for its own round or a later one: sleep never returns early.
    calls = []

    def sleeper(name, base):
        def step():
            calls.append(name)
            time.sleep(base * calls.count(name))
        return step

    warmup, iters = 2, 3
    results = interleaved_measurements(
        dict(short=sleeper('short', 0.01), long=sleeper('long', 0.03)), iters=iters,
        warmup=warmup, memory=PeakMemory(CPU), verbose=False)
    assert calls == ['short', 'long'] * (warmup + iters)
    for name, base in (('short', 0.01), ('long', 0.03)):
        times = results[name]['times_s']
        assert len(times) == iters
        for k, elapsed in enumerate(times):  # the timed rounds, in order, warm-up excluded
            assert elapsed >= base * (warmup + k + 1), (name, k, elapsed)
        assert results[name]['median_s'] == statistics.median(times)
        assert results[name]['spread_s'] == pytest.approx(max(times) - min(times))


def test_no_timed_round_is_an_error():
    with pytest.raises(ValueError, match='iters=0'):
        interleaved_measurements(dict(step=lambda: None), iters=0, warmup=1,
                                 memory=PeakMemory(CPU))
