"""From a distiller's checkpoint to an ONNX model for ONNX Runtime, checked against mmdet.

Three steps, each usable alone:

1. :func:`~vkd_mmdet.apis.export_student` writes the student as a plain mmdet config and
   checkpoint (no teacher, no plugin types);
2. :func:`convert_to_onnx` converts it with mmdeploy's ``torch2onnx`` and a deploy config
   (default: ours, ``configs/_deploy_/mmdet/detection_onnxruntime_dynamic.py``: end-to-end
   detection with the detector's own post-processing, dynamic batch and image size), under
   :func:`~vkd_mmdet.compat.mmdeploy.torchscript_onnx_export` so that it also runs on torch >= 2.9;
3. :func:`check_onnx` runs the ONNX model (mmdeploy's ONNX Runtime wrapper) and plain mmdet on
   the same preprocessed batches and measures how closely the detections agree.

mmdeploy, onnx and onnxruntime are the ``[deploy]`` extra; they are imported only here, when
called.
"""
import copy
import os
import os.path as osp
from typing import List, NamedTuple, Optional, Sequence, Union

import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

from ..compat.mmdeploy import torchscript_onnx_export
from ..utils.configs_dir import configs_dir
from .detection_agreement import DetectionAgreement, compare_detections
from .export_student import export_student

#: Our deploy config, relative to the configs folder.
DEPLOY_CFG = osp.join('_deploy_', 'mmdet', 'detection_onnxruntime_dynamic.py')


class StudentDeployment(NamedTuple):
    """What :func:`deploy_student` wrote and measured."""
    config: str
    checkpoint: str
    onnx: str
    agreements: List[DetectionAgreement]


def default_deploy_cfg() -> str:
    """Path of the deploy config we ship (ONNX Runtime, dynamic shapes)."""
    return osp.join(configs_dir(), DEPLOY_CFG)


def _require_mmdeploy() -> None:
    try:
        import mmdeploy  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as error:
        raise ImportError(f'{error.name} is not installed: deploying needs the [deploy] extra, '
                          '`pip install "vkd_mmdet[deploy]"` (README, "Deploy the student")'
                          ) from error


def _load(cfg: Union[str, Config]) -> Config:
    return Config.fromfile(cfg) if isinstance(cfg, str) else cfg


def convert_to_onnx(model_cfg: Union[str, Config],
                    checkpoint: str,
                    work_dir: str,
                    image: str,
                    deploy_cfg: Optional[Union[str, Config]] = None,
                    device: str = 'cpu') -> str:
    """Convert an mmdet model to ONNX with mmdeploy; returns the path of the ``.onnx`` file.

    Args:
        model_cfg (str | Config): a plain mmdet config (e.g. the exported student's).
        checkpoint (str): its checkpoint.
        work_dir (str): output folder (created).
        image (str): an image the model is traced on (any size: the axes stay dynamic).
        deploy_cfg (str | Config, optional): mmdeploy deploy config. Defaults to ours.
        device (str): where the model is traced. Defaults to ``'cpu'``.
    """
    _require_mmdeploy()
    from mmdeploy.apis import torch2onnx

    deploy_cfg = _load(deploy_cfg or default_deploy_cfg())
    save_file = deploy_cfg.onnx_config.get('save_file', 'end2end.onnx')
    os.makedirs(work_dir, exist_ok=True)
    with torchscript_onnx_export():
        torch2onnx(image, work_dir, save_file, deploy_cfg, _load(model_cfg), checkpoint, device)
    return osp.join(work_dir, save_file)


def check_onnx(model_cfg: Union[str, Config],
               checkpoint: str,
               onnx_file: str,
               images: Sequence[str],
               deploy_cfg: Optional[Union[str, Config]] = None,
               device: str = 'cpu',
               batch_size: int = 1) -> List[DetectionAgreement]:
    """Per image, how closely ONNX Runtime reproduces plain mmdet's detections.

    Both get the same batches (the config's test pipeline, then each model's own data
    preprocessor, which pads a batch to one size) and return boxes in the original image's
    pixels, which :func:`~vkd_mmdet.apis.detection_agreement.compare_detections` matches.
    """
    if batch_size < 1:
        raise ValueError(f'batch_size: expected a positive number, got {batch_size}')
    if not images:
        raise ValueError('images: expected at least one image to check the ONNX model on')
    _require_mmdeploy()
    from mmcv.transforms import Compose
    from mmdeploy.apis.utils import build_task_processor
    from mmdet.apis import init_detector
    from mmdet.utils import get_test_pipeline_cfg

    model_cfg, deploy_cfg = _load(model_cfg), _load(deploy_cfg or default_deploy_cfg())
    init_default_scope(model_cfg.get('default_scope', 'mmdet'))
    reference = init_detector(model_cfg, checkpoint, device=device)
    backend = build_task_processor(model_cfg, deploy_cfg, device).build_backend_model([onnx_file])
    pipeline = Compose(get_test_pipeline_cfg(model_cfg))
    agreements = []
    for start in range(0, len(images), batch_size):
        batch = pseudo_collate([pipeline(dict(img_path=path, img_id=start + i))
                                for i, path in enumerate(images[start:start + batch_size])])
        with torch.no_grad():
            ours = backend.test_step(copy.deepcopy(batch))
            theirs = reference.test_step(copy.deepcopy(batch))
        agreements.extend(compare_detections(o.pred_instances, t.pred_instances)
                          for o, t in zip(ours, theirs))
    return agreements


def dataset_images(cfg: Union[str, Config], num_images: int) -> List[str]:
    """The first ``num_images`` image paths of the config's test dataset."""
    from mmdet.registry import DATASETS

    cfg = _load(cfg)
    if not cfg.get('test_dataloader'):
        raise ValueError(f'{cfg.filename}: no test_dataloader to take images from; pass images')
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    if len(dataset) == 0:
        raise ValueError(f'{cfg.filename}: test_dataloader.dataset has no images')
    return [dataset.get_data_info(i)['img_path'] for i in range(min(num_images, len(dataset)))]


def deploy_student(config: Union[str, Config],
                   checkpoint: str,
                   work_dir: str,
                   images: Optional[Sequence[str]] = None,
                   num_images: int = 3,
                   deploy_cfg: Optional[Union[str, Config]] = None,
                   device: str = 'cpu',
                   batch_size: int = 1,
                   trace_image: Optional[str] = None) -> StudentDeployment:
    """Export a distiller's student, convert it to ONNX and check it against mmdet.

    Writes ``work_dir/student/`` (:func:`~vkd_mmdet.apis.export_student`) and
    ``work_dir/onnx/end2end.onnx`` (plus mmdeploy's ``end2end.json`` files).

    Args:
        config (str | Config): the distiller config.
        checkpoint (str): a checkpoint of the distiller run (unpickled fully, as ``--resume``
            does: pass only your own files).
        work_dir (str): output folder.
        images (Sequence[str], optional): images to trace and check on. Defaults to the first
            ``num_images`` of the config's test dataset.
        num_images (int): see ``images``. Defaults to 3.
        deploy_cfg (str | Config, optional): mmdeploy deploy config. Defaults to ours.
        device (str): Defaults to ``'cpu'``.
        batch_size (int): images per batch in the check. Defaults to 1.
        trace_image (str, optional): the image the conversion traces the model on. Defaults to
            the first of ``images``.
    """
    _require_mmdeploy()
    student_cfg, student_ckpt = export_student(config, checkpoint, osp.join(work_dir, 'student'))
    images = list(images) if images else dataset_images(student_cfg, num_images)
    onnx_file = convert_to_onnx(student_cfg, student_ckpt, osp.join(work_dir, 'onnx'),
                                trace_image or images[0], deploy_cfg, device)
    agreements = check_onnx(student_cfg, student_ckpt, onnx_file, images, deploy_cfg, device,
                            batch_size)
    return StudentDeployment(student_cfg, student_ckpt, onnx_file, agreements)
