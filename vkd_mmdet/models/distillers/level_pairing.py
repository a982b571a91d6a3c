"""Which neck levels of student and teacher a feature loss matches: the outputs of equal stride."""
import copy
from typing import List, Mapping, NamedTuple, Sequence

from ..utils import NeckLevel


class LevelPair(NamedTuple):
    """A student and a teacher neck output of one stride, distilled together."""
    student: int  # index into the student's neck outputs
    teacher: int  # index into the teacher's neck outputs
    stride: int
    student_channels: int
    teacher_channels: int

    @property
    def name(self) -> str:
        """``p<k>`` with ``2^k = stride``: the suffix of the level's log keys."""
        return f'p{self.stride.bit_length() - 1}'


def pair_levels(name: str, cfg: dict, student: Sequence[NeckLevel],
                teacher: Sequence[NeckLevel]) -> List[LevelPair]:
    """The level pairs loss ``name`` distils; pops its ``levels`` / ``strides`` from ``cfg``.

    ``levels`` names student neck output indices, ``strides`` strides in pixels (give at most one);
    without either, every stride both necks have is distilled.

    Raises:
        ValueError: naming ``distill_losses.<name>``: no common stride, both keys given, an index
            out of range or given twice, a stride one side lacks, or a side with two outputs of
            one stride.
    """
    key = f'distill_losses.{name}'
    strides = {side: [level.stride for level in levels]
               for side, levels in (('student', student), ('teacher', teacher))}
    summary = f'student strides {strides["student"]}, teacher strides {strides["teacher"]}'
    for side, values in strides.items():
        twice = sorted({stride for stride in values if values.count(stride) > 1})
        if twice:
            raise ValueError(f'{key}: the {side} neck has several outputs of stride {twice} '
                             f'({summary}); levels pair by stride')
    common = [stride for stride in strides['student'] if stride in strides['teacher']]
    if not common:
        raise ValueError(f'{key}: the necks have no common stride ({summary}); levels pair by '
                         'stride')
    if 'levels' in cfg and 'strides' in cfg:
        raise ValueError(f'{key}: give `levels` (student neck output indices) or `strides` '
                         f'(pixels), not both ({summary})')
    if 'levels' in cfg:
        levels = list(cfg.pop('levels'))
        bad = [level for level in levels
               if not isinstance(level, int) or not 0 <= level < len(student)]
        if not levels or bad:
            raise ValueError(f'{key}.levels={levels}: expected student neck output indices '
                             f'0..{len(student) - 1} ({summary})')
        for level in levels:
            if student[level].stride not in strides['teacher']:
                raise ValueError(f'{key}.levels: level {level} (stride '
                                 f'{student[level].stride}) is missing from the teacher neck '
                                 f'({summary}); levels pair by stride')
        wanted = [student[level].stride for level in levels]
    elif 'strides' in cfg:
        wanted = list(cfg.pop('strides'))
        if not wanted:
            raise ValueError(f'{key}.strides: empty; give strides both necks have ({summary})')
        for stride in wanted:
            for side, values in strides.items():
                if stride not in values:
                    raise ValueError(f'{key}.strides: stride {stride} is missing from the '
                                     f'{side} neck ({summary})')
    else:
        wanted = common
    repeated = sorted({stride for stride in wanted if wanted.count(stride) > 1})
    if repeated:
        raise ValueError(f'{key}: stride {repeated} is listed more than once (`levels` / '
                         f'`strides`), which would distil it several times ({summary})')
    for stride in wanted:
        if stride & (stride - 1):
            raise ValueError(f'{key}: stride {stride} is not a power of two; log keys name '
                             f'levels loss_{name}_p<k> with 2^k = stride ({summary})')
    pairs = []
    for stride in wanted:
        s, t = strides['student'].index(stride), strides['teacher'].index(stride)
        pairs.append(LevelPair(s, t, stride, student[s].channels, teacher[t].channels))
    return pairs


def level_loss_cfg(name: str, cfg: dict, pairs: Sequence[LevelPair],
                   channel_args: Mapping[str, str]) -> dict:
    """``cfg`` with the loss's ``channel_args`` (e.g. ``in_channels`` -> the student's width) set
    from the probed widths of ``pairs``.

    A value the config gives must equal the probed width; one module for several ``pairs`` needs
    one width per side.

    Raises:
        ValueError: naming ``distill_losses.<name>.<key>``, the neck's width and the stride.
    """
    cfg = copy.deepcopy(cfg)
    for key, side in channel_args.items():
        widths = {getattr(pair, f'{side}_channels'): pair.stride for pair in pairs}
        if key in cfg:
            for width, stride in widths.items():
                if cfg[key] != width:
                    raise ValueError(f'distill_losses.{name}.{key}={cfg[key]} but '
                                     f'{side}.neck.out_channels={width} (stride {stride})')
        else:
            if len(widths) > 1:
                raise ValueError(f'distill_losses.{name}: one module for strides '
                                 f'{[pair.stride for pair in pairs]} needs one {side} width, '
                                 f'the neck gives {sorted(widths)}; split the entry into entries '
                                 'of one width each (`strides=[...]`)')
            cfg[key] = next(iter(widths))
    return cfg
