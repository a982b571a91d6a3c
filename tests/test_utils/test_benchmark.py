"""vkd_mmdet.utils.benchmark: interleaved rounds, warm-up excluded, peaks of known allocations."""
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
    calls = []

    def sleeper(name, seconds):
        def step():
            calls.append(name)
            time.sleep(seconds)
        return step

    results = interleaved_measurements(
        dict(short=sleeper('short', 0.01), long=sleeper('long', 0.05)), iters=3, warmup=2,
        memory=PeakMemory(CPU), verbose=False)
    assert calls == ['short', 'long'] * 5
    for name, seconds in (('short', 0.01), ('long', 0.05)):
        result = results[name]
        assert len(result['times_s']) == 3
        assert min(result['times_s']) >= seconds  # sleep never returns early
        assert result['median_s'] == sorted(result['times_s'])[1]
        assert result['spread_s'] == pytest.approx(max(result['times_s']) - min(result['times_s']))
    assert results['long']['median_s'] > results['short']['median_s']


def test_no_timed_round_is_an_error():
    with pytest.raises(ValueError, match='iters=0'):
        interleaved_measurements(dict(step=lambda: None), iters=0, warmup=1,
                                 memory=PeakMemory(CPU))
