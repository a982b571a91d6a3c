"""Export a distiller checkpoint's student, convert it to ONNX for ONNX Runtime, check it.

    python tools/deploy_student.py CONFIG CHECKPOINT WORK_DIR [--images IMG ...]

Writes ``WORK_DIR/student/`` (the plain mmdet config and checkpoint, as tools/export_student.py)
and ``WORK_DIR/onnx/end2end.onnx`` (mmdeploy, our deploy config
configs/_deploy_/mmdet/detection_onnxruntime_dynamic.py unless ``--deploy-cfg``), then runs ONNX
Runtime and plain mmdet on the same images and prints how closely they agree (matched
detections, largest box and score differences). Exits with 1 when they disagree beyond the
tolerances. Needs the [deploy] extra (mmdeploy 1.3.1, onnxruntime, onnx). CHECKPOINT is
unpickled fully (as ``--resume`` does): pass only checkpoints you trust.
"""
import argparse
import sys
from typing import Optional, Sequence

from mmengine.config import Config, DictAction

from vkd_mmdet.apis.deploy_student import StudentDeployment, deploy_student
from vkd_mmdet.apis.detection_agreement import merge_agreements

#: Where mmdeploy 1.3.1's end-to-end graph differs from mmdet (README, "Deploy the student").
DIFFERENCES_BY_DESIGN = """Where mmdeploy's graph differs from mmdet by design (README):
  - boxes are clipped to the padded batch, not to each image (RTMDet's are not clipped at all);
  - boxes of zero width or height are kept (mmdet drops them when test_cfg.min_bbox_size >= 0);
  - nms_pre keeps the best priors, mmdet the best (prior, class) pairs;
  - the RPN runs one NMS over all levels, mmdet one per level;
  - a two-stage head gives each RoI the box of its best class, for every class."""


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Deploy a distiller's student to ONNX")
    parser.add_argument('config', help='the distiller config file')
    parser.add_argument('checkpoint', help='a checkpoint written by the distiller run')
    parser.add_argument('work_dir', help='folder for the student export and the ONNX model')
    parser.add_argument('--images', nargs='+',
                        help='images to convert and check on (default: the first --num-images '
                        "of the config's test dataset)")
    parser.add_argument('--num-images', type=int, default=3)
    parser.add_argument('--deploy-cfg', help='mmdeploy deploy config (default: ours, ONNX '
                        'Runtime, dynamic batch and image size)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--batch-size', type=int, default=1, help='images per batch in the check')
    parser.add_argument('--box-atol', type=float, default=1e-2,
                        help='largest box coordinate difference accepted, in pixels')
    parser.add_argument('--score-atol', type=float, default=1e-4,
                        help='largest score difference accepted')
    parser.add_argument('--min-matched', type=float, default=1.0,
                        help='fraction of the detections that must be matched (README, "Deploy '
                        'the student", lists where mmdeploy\'s graph differs from mmdet by design)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override some settings in the used config (xxx=yyy), as in tools/train.py')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> StudentDeployment:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    deployment = deploy_student(cfg, args.checkpoint, args.work_dir, args.images,
                                args.num_images, args.deploy_cfg, args.device, args.batch_size)
    print(f'student config: {deployment.config}\nstudent checkpoint: {deployment.checkpoint}\n'
          f'ONNX model: {deployment.onnx}')
    print(f'ONNX Runtime vs mmdet (tolerances: box {args.box_atol:g} px, score '
          f'{args.score_atol:g}, matched >= {args.min_matched:g}):')
    for i, agreement in enumerate(deployment.agreements):
        print(f'  image {i}: {agreement}')
    total = merge_agreements(deployment.agreements)
    agrees = total.agrees(args.box_atol, args.score_atol, args.min_matched)
    print(f'  all: {total}: {"AGREE" if agrees else "DISAGREE"}')
    if not agrees:
        print(DIFFERENCES_BY_DESIGN)
        sys.exit(1)
    return deployment


if __name__ == '__main__':
    main()
