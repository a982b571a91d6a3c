"""The README's TensorBoard snippet: mmengine's TensorboardVisBackend writes event files with our
loss keys (the [tensorboard] extra; both pinned stacks install it)."""
import glob

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from .conftest import NO_VAL, REPO, run_python

#: The snippet as the README gives it.
TENSORBOARD = """visualizer = dict(
    type='DetLocalVisualizer', name='visualizer',
    vis_backends=[dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')])
"""


def test_tensorboard_snippet_writes_our_loss_keys(tiny_run, tmp_path):
    config = tmp_path / 'tensorboard.py'
    config.write_text(f"_base_ = ['{tiny_run['config']}']\n{TENSORBOARD}")
    work_dir = tmp_path / 'work'
    # A fresh process: here, an earlier test's visualizer instance would take the name.
    run_python([str(REPO / 'tools' / 'train.py'), str(config), '--work-dir', str(work_dir),
                '--cfg-options', 'custom_hooks=[]', *NO_VAL])
    (events,) = glob.glob(f'{work_dir}/*/vis_data/events.out.tfevents.*')
    tags = EventAccumulator(events).Reload().Tags()['scalars']
    assert {'loss', 'loss_cls', 'loss_vkd_p3'} <= set(tags)
