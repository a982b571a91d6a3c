import pytest

from vkd_mmdet.benchmarks import format_seed_ranges, parse_row_seeds


@pytest.mark.parametrize('text, expected', [
    ('ld=8-31', ('ld', list(range(8, 32)))),
    ('vkd=3', ('vkd', [3])),
    ('student=0,2-4, 9', ('student', [0, 2, 3, 4, 9])),
])
def test_parse_row_seeds(text, expected):
    assert parse_row_seeds(text) == expected


@pytest.mark.parametrize('text, message', [
    ('ld', 'expected ROW=SEEDS'), ('=3', 'expected ROW=SEEDS'), ('ld=', 'expected ROW=SEEDS'),
    ('ld=a', "'a' is not a seed"), ('ld=-3', "'-3' is not a seed"), ('ld=3-', "'3-' is not"),
    ('ld=5-4', 'runs backwards'), ('ld=1-3,2', 'a seed is given twice'),
])
def test_parse_row_seeds_refuses(text, message):
    with pytest.raises(ValueError, match=message):
        parse_row_seeds(text)


def test_format_is_the_inverse_of_parse():
    for seeds in ([8, 9, 10, 12], [0], [3, 1, 2], list(range(8, 32)) + [40, 42, 43]):
        text = format_seed_ranges(seeds)
        assert parse_row_seeds('x=' + text.replace(' ', ''))[1] == sorted(seeds)
    assert format_seed_ranges([12, 8, 9, 10]) == '8-10, 12'
