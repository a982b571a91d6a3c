"""vkd_mmdet.utils.benchmark: interleaved rounds, peaks of known allocations, paired intervals of
ratios, and the adaptive stop rule (driven by a fake clock: deterministic, no sleeps)."""
import math
import random
import statistics
import time
from typing import Dict, List

import pytest
import scipy.stats
import torch

from vkd_mmdet.utils.benchmark import (
    PeakMemory,
    StopRule,
    interleaved_measurements,
    paired_ratio_interval,
    peak_memory_pass,
    round_ratios,
)

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
        dict(short=sleeper('short', 0.01), long=sleeper('long', 0.03)), rounds=iters,
        warmup=warmup, verbose=False)
    assert calls == ['short', 'long'] * (warmup + iters)
    assert results['rounds'] == iters and results['stop_reason'] == 'iters'
    for name, base in (('short', 0.01), ('long', 0.03)):
        times = results['steps'][name]['times_s']
        assert len(times) == iters
        for k, elapsed in enumerate(times):  # the timed rounds, in order, warm-up excluded
            assert elapsed >= base * (warmup + k + 1), (name, k, elapsed)
        assert results['steps'][name]['median_s'] == statistics.median(times)
        assert results['steps'][name]['spread_s'] == pytest.approx(max(times) - min(times))


def test_before_step_runs_before_every_step_untimed():
    # A fake clock that only the steps and before_step advance: a time that included
    # before_step's 100 s would show it.
    now = [0.0]
    calls = []

    def before():
        calls.append('before')
        now[0] += 100.0

    def step(name):
        def run():
            calls.append(name)
            now[0] += 1.0
        return run

    results = interleaved_measurements(
        dict(a=step('a'), b=step('b')), rounds=2, warmup=1, verbose=False,
        clock=lambda: now[0], before_step=before)
    assert calls == ['before', 'a', 'before', 'b'] * 3
    assert results['steps']['a']['times_s'] == results['steps']['b']['times_s'] == [1.0, 1.0]


def test_memory_apart_from_the_timed_rounds():
    # The timing measures no memory; the memory pass runs each step once, after before_step,
    # and sees each step's own allocation.
    timed = interleaved_measurements(dict(a=lambda: None), rounds=2, warmup=0, verbose=False)
    assert 'peak_mib' not in timed['steps']['a']
    calls = []

    def allocate(mib):
        def step():
            calls.append(mib)
            block = torch.ones(mib * 2**18)  # mib MiB of float32, written (resident)
            del block
        return step

    peaks = peak_memory_pass(dict(small=allocate(16), large=allocate(64)), PeakMemory(CPU),
                             before_step=lambda: calls.append('before'))
    assert calls == ['before', 16, 'before', 64]
    assert 12 <= peaks['small'] <= 24 and 56 <= peaks['large'] <= 80


def test_no_timed_round_is_an_error():
    with pytest.raises(ValueError, match='iters=0'):
        interleaved_measurements(dict(step=lambda: None), rounds=0, warmup=1)


# Two-sided 95 % / 90 % Student-t quantiles from a printed table (independent of scipy).
T_975 = {4: 2.776445105, 9: 2.262157163}
T_95 = {4: 2.131846786}


@pytest.mark.parametrize('confidence, quantiles', [(0.95, T_975), (0.90, T_95)])
def test_ratio_interval_is_the_t_interval_of_the_per_round_ratios(confidence, quantiles):
    numerator = [1.9, 2.3, 2.0, 2.6, 2.1]
    denominator = [2.0, 2.2, 2.1, 2.5, 2.4]
    ratios = [n / d for n, d in zip(numerator, denominator)]
    mean = sum(ratios) / 5
    sd = math.sqrt(sum((r - mean) ** 2 for r in ratios) / 4)
    half = quantiles[4] * sd / math.sqrt(5)
    got = paired_ratio_interval(numerator, denominator, confidence)
    assert got['rounds'] == 5 and got['per_round'] == pytest.approx(ratios)
    assert got['mean'] == pytest.approx(mean)
    assert got['half_width'] == pytest.approx(half, rel=1e-8)
    assert (got['low'], got['high']) == pytest.approx((mean - half, mean + half))


def test_the_interval_is_paired_a_drift_common_to_a_round_cancels():
    # The machine slows down by up to 3x from round to round, the same for both steps: each
    # time alone spreads widely, their per-round ratio does not move at all.
    drift = [1.0, 3.0, 1.5, 2.2, 1.1, 2.9, 1.3, 2.0, 1.7, 2.5]
    times = dict(a=[0.5 * f for f in drift], b=[0.3 * f for f in drift],
                 c=[0.72 * f for f in drift])
    got = round_ratios(times, dict(ratio=(('c',), ('a', 'b'))))['ratio']
    assert got['mean'] == pytest.approx(0.9)
    assert got['half_width'] < 1e-12
    # Unpaired, the same data gives a wide interval (what pairing removes).
    assert statistics.stdev(times['c']) / statistics.mean(times['c']) > 0.3


def test_round_ratios_sums_steps_per_round_and_names_unknown_steps():
    times = dict(a=[1.0, 2.0, 4.0], b=[1.0, 1.0, 0.0], c=[3.0, 6.0, 8.0])
    got = round_ratios(times, dict(r=(('c',), ('a', 'b'))), confidence=0.95)['r']
    assert got['per_round'] == pytest.approx([1.5, 2.0, 2.0])
    with pytest.raises(KeyError, match="'d'"):
        round_ratios(times, dict(r=(('d',), ('a',))))


@pytest.mark.parametrize('numerator, denominator, match', [
    ([1.0], [1.0], 'at least 2'), ([1.0, 2.0], [1.0], 'one of each per round')])
def test_ratio_interval_refuses_what_it_cannot_estimate(numerator, denominator, match):
    with pytest.raises(ValueError, match=match):
        paired_ratio_interval(numerator, denominator)


class FakeMachine:
    """Steps that take scripted durations on a fake clock: ``script[name][i]`` in round ``i``."""

    def __init__(self, script: Dict[str, List[float]]) -> None:
        self.now = 0.0
        self.script = script
        self.calls = dict.fromkeys(script, 0)

    def clock(self) -> float:
        return self.now

    def steps(self):
        def step(name):
            def run():
                self.now += self.script[name][self.calls[name]]
                self.calls[name] += 1
            return run
        return {name: step(name) for name in self.script}


def _noisy_script(rounds: int, seed: int = 0) -> Dict[str, List[float]]:
    """Rounds of 3 s each (a + c), whose ratio c / a wanders around 2 by +-20 %. Durations are
    multiples of 2^-10 s: the fake clock's differences give them back exactly."""
    rng = random.Random(seed)
    a = [round(3.0 / (3 + rng.uniform(-0.4, 0.4)) * 1024) / 1024 for _ in range(rounds)]
    return dict(a=a, c=[3.0 - t for t in a])


def _half_width(ratios: List[float]) -> float:
    n = len(ratios)
    return scipy.stats.t.ppf(0.975, n - 1) * statistics.stdev(ratios) / math.sqrt(n)


def _measure(machine: FakeMachine, rule, warmup: int = 1):
    return interleaved_measurements(machine.steps(), rule, warmup, verbose=False,
                                    clock=machine.clock)


def test_rounds_stop_at_the_first_round_whose_intervals_reach_the_target():
    script = _noisy_script(400)
    warmup, min_iters, target = 1, 5, 0.05
    ratios = [c / a for a, c in zip(script['a'], script['c'])][warmup:]
    expected = next(n for n in range(min_iters, 400) if _half_width(ratios[:n]) <= target)
    assert expected > min_iters  # the target takes more than the fewest rounds
    rule = StopRule(dict(r=(('c',), ('a',))), target, time_limit_s=1e9, min_iters=min_iters)
    result = _measure(FakeMachine(script), rule, warmup)
    assert (result['rounds'], result['stop_reason']) == (expected, 'target')
    assert result['steps']['c']['times_s'] == script['c'][warmup:warmup + expected]
    assert result['elapsed_s'] == pytest.approx(3.0 * (warmup + expected))


def test_rounds_stop_at_the_time_limit_and_say_so():
    # Rounds of 3 s, warm-up included in the 20 s budget: 6 whole rounds fit (18 s), a 7th
    # would end at 21 s; the target (1e-6) is out of reach.
    rule = StopRule(dict(r=(('c',), ('a',))), 1e-6, time_limit_s=20.0, min_iters=3)
    result = _measure(FakeMachine(_noisy_script(50)), rule, warmup=1)
    assert (result['rounds'], result['stop_reason']) == (5, 'time_limit')
    assert result['elapsed_s'] == pytest.approx(18.0)


def test_the_time_limit_still_leaves_two_rounds_for_an_interval():
    rule = StopRule(dict(r=(('c',), ('a',))), 1e-6, time_limit_s=1.0, min_iters=5)
    result = _measure(FakeMachine(_noisy_script(50)), rule, warmup=2)
    assert (result['rounds'], result['stop_reason']) == (2, 'time_limit')


def test_rounds_stop_at_max_iters():
    rule = StopRule(dict(r=(('c',), ('a',))), 1e-6, time_limit_s=1e9, min_iters=2, max_iters=7)
    result = _measure(FakeMachine(_noisy_script(50)), rule)
    assert (result['rounds'], result['stop_reason']) == (7, 'max_iters')


def test_every_ratio_must_reach_the_target():
    # r1 is exact from the start (c = 2 a every round), r2 is noisy: r2 decides when to stop.
    script = _noisy_script(400)
    script['b'] = [2.0 * a for a in script['a']]
    ratios = [c / a for a, c in zip(script['a'], script['c'])][1:]
    expected = next(n for n in range(5, 400) if _half_width(ratios[:n]) <= 0.05)
    rule = StopRule(dict(r1=(('b',), ('a',)), r2=(('c',), ('a',))), 0.05, 1e9, min_iters=5)
    assert _measure(FakeMachine(script), rule)['rounds'] == expected


@pytest.mark.parametrize('kwargs, match', [
    (dict(ratios={}), 'no ratio'), (dict(target_half_width=0.0), 'half-width'),
    (dict(time_limit_s=-1.0), 'time limit'), (dict(min_iters=1), 'min_iters=1'),
    (dict(min_iters=9, max_iters=8), 'min_iters=9')])
def test_stop_rule_refuses_bad_settings(kwargs, match):
    settings = dict(ratios=dict(r=(('c',), ('a',))), target_half_width=0.03, time_limit_s=60.0)
    with pytest.raises(ValueError, match=match):
        StopRule(**{**settings, **kwargs})
