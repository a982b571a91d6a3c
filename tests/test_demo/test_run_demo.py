"""The demo pipeline (vkd_mmdet.benchmarks, tools/run_demo.py), shortened: generation -> teacher
-> student, distilled -> COCO eval."""
import argparse
import json
import os.path as osp

import pytest
import torch
from mmcv.transforms import Compose
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from tool_scripts import TOOLS, load_tool, run_python

from vkd_mmdet import install_safe_loading
from vkd_mmdet.benchmarks import (
    add_data_args,
    data_kwargs,
    read_scalars,
    split_digests,
    startup_lines,
    train_teacher,
    with_data_root,
)
from vkd_mmdet.testing import make_synthetic_coco

from .tiny_pipelines import TINY_PIPELINES

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

DEMO = osp.join(REPO, 'configs', 'demo')
# Every prediction is kept so that COCO evaluation has results after 3 iterations.
KEEP_ALL = 'dict(score_thr=0.0, max_per_img=20)'


def _write_configs(tmp_path):
    """The demo configs at 64 px, batch 2, no loader workers (each inherits the shipped one)."""
    paths = dict(teacher=tmp_path / 'teacher.py', student=tmp_path / 'student.py',
                 vkd=tmp_path / 'vkd_tiny.py')
    paths['teacher'].write_text(f"_base_ = ['{DEMO}/teacher_fcos_r18-w32.py']\n"
                                f'{TINY_PIPELINES}model = dict(test_cfg={KEEP_ALL})\n')
    paths['student'].write_text(f"_base_ = ['{DEMO}/student_fcos_r18-w16.py']\n"
                                f'{TINY_PIPELINES}model = dict(test_cfg={KEEP_ALL})\n')
    paths['vkd'].write_text(f"_base_ = ['{DEMO}/vkd_fcos_r18-w32_r18-w16.py']\n"
                            f'{TINY_PIPELINES}model = dict(student=dict(test_cfg={KEEP_ALL}))\n')
    return {k: str(v) for k, v in paths.items()}


@pytest.fixture(scope='module')
def demo_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp('demo')
    cfgs = _write_configs(tmp_path)
    argv = ['--work-dir', str(tmp_path / 'work'), '--data-root', str(tmp_path / 'data'),
            '--num-train', '6', '--num-val', '4', '--image-size', '48', '64',
            '--teacher-config', cfgs['teacher'], '--student-config', cfgs['student'],
            '--distill-configs', cfgs['vkd'], '--teacher-iters', '3', '--student-iters', '3',
            '--markdown', str(tmp_path / 'docs' / 'accuracy.md')]
    # end to end, as `make demo` runs it
    result = run_python([str(TOOLS / 'run_demo.py'), *argv], timeout=600)
    (tmp_path / 'stdout.txt').write_text(result.stdout)
    rows = json.loads((tmp_path / 'work' / 'results.json').read_text())['rows']
    return tmp_path, argv, rows, cfgs


def test_pipeline_evaluates_all_three_with_coco_metric(demo_run):
    tmp_path, _, rows, _ = demo_run
    assert [r['name'] for r in rows] == ['teacher', 'student', 'student+vkd']
    records = {r['name']: r for r in json.loads(
        (tmp_path / 'work' / 'results.json').read_text())['runs']}
    for row in rows:
        assert 0 < records[row['name']]['train_time'] < records[row['name']]['wall_time']
    work = tmp_path / 'work'
    assert (work / 'demo.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    table = (work / 'results.md').read_text()
    assert table in (tmp_path / 'docs' / 'accuracy.md').read_text()
    for row in rows:
        assert f"| {row['name']} | `" in table
        assert f"| {100 * row['AP']:.1f} | {100 * row['AP50']:.1f} |" in table


def test_a_rerun_rewrites_its_section_and_keeps_the_rest_of_the_page(demo_run):
    tmp_path, argv, _, _ = demo_run
    page = tmp_path / 'docs' / 'accuracy.md'
    first = page.read_text()
    assert first.startswith('<!-- demo-report:begin -->\n# Accuracy of the CPU demo')
    page.write_text(first + '\n## How the demo setting was chosen\n\nwritten by hand\n')
    run_python([str(TOOLS / 'run_demo.py'), *argv, '--reuse-runs'], timeout=600)
    again = page.read_text()
    assert again.endswith('## How the demo setting was chosen\n\nwritten by hand\n')
    assert again.count('# Accuracy of the CPU demo') == 1
    table = (tmp_path / 'work' / 'results.md').read_text()
    assert again.count(table) == 1


def test_reported_ap_is_what_mmdet_test_gives_for_the_saved_checkpoint(demo_run):
    """The AP of the record (read from mmengine's scalars.json) against an independent
    evaluation: mmdet's test loop on the run's last checkpoint."""
    tmp_path, _, rows, cfgs = demo_run
    work = tmp_path / 'work' / 'student_s0'
    cfg = Config.fromfile(cfgs['student'])
    cfg.merge_from_dict(with_data_root(None, str(tmp_path / 'data') + '/'))
    cfg.work_dir = str(tmp_path / 'retest')
    cfg.load_from = (work / 'last_checkpoint').read_text().strip()
    cfg.experiment_name = 'retest'
    cfg.visualizer.name = 'retest_visualizer'
    # A training checkpoint (message hub included) loads the way our tools/test.py loads it;
    # without this the test passed only after another test had built a distiller in-process.
    install_safe_loading()
    metrics = Runner.from_cfg(cfg).test()
    student = next(r for r in rows if r['name'] == 'student')
    assert metrics['coco/bbox_mAP'] == pytest.approx(student['AP'], abs=1e-4)
    assert metrics['coco/bbox_mAP_50'] == pytest.approx(student['AP50'], abs=1e-4)


def test_distilled_run_logs_vkd_per_level_in_mmengine_scalars(demo_run):
    tmp_path, _, _, _ = demo_run
    student = json.loads((tmp_path / 'work' / 'student_s0' / 'record.json').read_text())
    distilled = json.loads((tmp_path / 'work' / 'student+vkd_s0' / 'record.json').read_text())
    student_log, _ = read_scalars(student['scalars'])
    distilled_log, _ = read_scalars(distilled['scalars'])
    assert not any('vkd' in key for entry in student_log for key in entry)
    # 3 iterations: the logging interval shrinks to 3, one window of every loss
    assert len(distilled_log) == 1 and distilled_log[0]['step'] == 3
    assert {k for k in distilled_log[0] if 'vkd' in k} == \
        {'loss_vkd_p3', 'loss_vkd_p4', 'loss_vkd_p5'}
    for key in ('loss_cls', 'loss_bbox', 'loss_centerness'):
        assert key in distilled_log[0] and key in student_log[0]
    assert student['seed'] == distilled['seed'] and student['iters'] == distilled['iters'] == 3
    # VkD compares standardised features: a few steps in, the loss is a small positive number.
    assert 0 < distilled_log[0]['loss_vkd_p3'] < 10


def test_distilled_run_prints_its_start_up_report_summary(demo_run):
    tmp_path, _, _, _ = demo_run
    records = [json.loads((tmp_path / 'work' / run / 'record.json').read_text())
               for run in ('teacher', 'student_s0', 'student+vkd_s0')]
    report = json.loads((tmp_path / 'work' / 'student+vkd_s0' / 'startup_report.json')
                        .read_text())
    assert report['summary'].startswith('start-up report (iter 0): teacher ')
    assert set(report['terms']) == {'vkd'}
    # Only the distilled run reports; the demo prints its line after the tables.
    assert startup_lines(records) == [f'student+vkd seed 0: {report["summary"]}']
    assert f'student+vkd seed 0: {report["summary"]}\n' in (tmp_path / 'stdout.txt').read_text()


def test_teacher_checkpoint_is_a_plain_state_dict_and_is_reused(demo_run):
    tmp_path, argv, _, cfgs = demo_run
    ckpt = tmp_path / 'work' / 'teacher' / 'teacher.pth'
    state = torch.load(ckpt, map_location='cpu', weights_only=True)['state_dict']
    init_default_scope('mmdet')
    teacher = MODELS.build(Config.fromfile(cfgs['teacher']).model)
    teacher.load_state_dict(state, strict=True)
    mtime = osp.getmtime(ckpt)
    # what the demo's --teacher-iters 3 and data options made
    options = with_data_root(None, str(tmp_path / 'data') + '/')
    train_set, eval_set = split_digests(str(tmp_path / 'data'))
    record = train_teacher(cfgs['teacher'], str(tmp_path / 'work' / 'teacher'), 3,
                           dict(train_set=train_set), options, eval_set)
    assert record['checkpoint'] == str(ckpt)
    assert osp.getmtime(ckpt) == mtime


def test_vis_features_on_the_distilled_demo_student(demo_run, tmp_path):
    vis_features = load_tool('analysis/vis_features.py')
    run_dir, _, _, cfgs = demo_run
    config = tmp_path / 'vkd_vis.py'
    config.write_text(f"_base_ = ['{cfgs['vkd']}']\n"
                      f"model = dict(teacher_ckpt='{run_dir}/work/teacher/teacher.pth')\n")
    work = run_dir / 'work' / 'student+vkd_s0'
    checkpoint = (work / 'last_checkpoint').read_text().strip()
    out = tmp_path / 'features.png'
    cosines = vis_features.main([str(config), checkpoint,
                                 str(run_dir / 'data' / 'val' / '000000.png'),
                                 '--out', str(out)])
    assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    # Independently: the trained student and projectors, the teacher, the test pipeline's image.
    init_default_scope('mmdet')
    distiller = MODELS.build(Config.fromfile(str(config)).model).eval()
    distiller.load_state_dict(torch.load(checkpoint, map_location='cpu',
                                         weights_only=False)['state_dict'])
    pipeline = [t for t in Config.fromfile(cfgs['vkd']).test_dataloader.dataset.pipeline
                if t['type'] != 'LoadAnnotations']
    data = pseudo_collate([Compose(pipeline)(dict(
        img_path=str(run_dir / 'data' / 'val' / '000000.png'), img_id=0))])
    expected = []
    with torch.no_grad():
        student = distiller.student.extract_feat(
            distiller.student.data_preprocessor(data, False)['inputs'])
        teacher = distiller.teacher.extract_feat(
            distiller.teacher.data_preprocessor(data, False)['inputs'])
        for level, loss in enumerate(distiller.distill_losses['vkd']):
            projected = torch.einsum('oc,nchw->nohw', loss.projector.weight, student[level])[0]
            z = [(f - f.mean((1, 2), keepdim=True)) / (f.std((1, 2), keepdim=True) + 1e-5)
                 for f in (projected, teacher[level][0])]
            expected.append(((z[0] * z[1]).sum(0) / (z[0].norm(dim=0) * z[1].norm(dim=0)))
                            .mean().item())
    assert cosines == pytest.approx(expected, abs=1e-4)


def test_data_options_reach_the_generator_and_identify_the_training_set(tmp_path):
    parser = argparse.ArgumentParser()
    add_data_args(parser)
    args = parser.parse_args(['--num-train', '4', '--num-val', '2', '--image-size', '64', '80',
                              '--max-objects', '2', '--object-size', '0.3', '0.4'])
    kwargs = data_kwargs(args)
    make_synthetic_coco(str(tmp_path), **kwargs)
    coco = json.loads((tmp_path / 'annotations' / 'instances_train.json').read_text())
    per_image = {}
    for ann in coco['annotations']:
        per_image[ann['image_id']] = per_image.get(ann['image_id'], 0) + 1
    assert 1 <= max(per_image.values()) <= 2
    for ann in coco['annotations']:
        image = coco['images'][ann['image_id'] - 1]
        # visible boxes never exceed the drawn extent (a rotated shape: up to sqrt(2) x it)
        assert max(ann['bbox'][2:]) <= 1.5 * 0.4 * min(image['height'], image['width']) + 2
    # Another generator argument, other training annotations: a cached teacher is not reused.
    make_synthetic_coco(str(tmp_path / 'other'), **dict(kwargs, max_objects=1))
    assert split_digests(str(tmp_path / 'other'))[0] != split_digests(str(tmp_path))[0]
