"""Write the seeded synthetic COCO-format shapes set (see vkd_mmdet.testing.synthetic_coco).

Example::

    python tools/make_synthetic_coco.py data/synthetic_coco --num-train 800 --num-val 200
"""
import argparse
import json

from vkd_mmdet.testing import coco_summary, make_synthetic_coco


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Generate a synthetic COCO-format detection set')
    parser.add_argument('out_dir', nargs='?', default='data/synthetic_coco',
                        help='output folder (default: data/synthetic_coco)')
    parser.add_argument('--num-train', type=int, default=800, help='training images')
    parser.add_argument('--num-val', type=int, default=200, help='validation images')
    parser.add_argument('--image-size', type=int, nargs=2, default=(128, 192),
                        metavar=('MIN', 'MAX'), help='side length range in pixels')
    parser.add_argument('--max-objects', type=int, default=6, help='objects per image, at most')
    parser.add_argument('--object-size', type=float, nargs=2, default=(0.08, 0.5),
                        metavar=('MIN', 'MAX'), help='object extent / shorter image side')
    parser.add_argument('--max-occlusion', type=float, default=0.5,
                        help='largest hidden fraction of a shape')
    parser.add_argument('--seed', type=int, default=0, help='data set seed')
    parser.add_argument('--overwrite', action='store_true',
                        help='regenerate even when a set with the same arguments exists')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    ann_files = make_synthetic_coco(
        args.out_dir, num_train=args.num_train, num_val=args.num_val,
        image_size=tuple(args.image_size), max_objects=args.max_objects,
        object_size=tuple(args.object_size), max_occlusion=args.max_occlusion, seed=args.seed,
        overwrite=args.overwrite, progress=True)
    for split, path in ann_files.items():
        print(f'{split}: {path} {json.dumps(coco_summary(path))}')


if __name__ == '__main__':
    main()
