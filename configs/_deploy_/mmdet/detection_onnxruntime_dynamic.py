# mmdeploy deploy config: an mmdet detector (one- or two-stage) to ONNX for ONNX Runtime, end to
# end (post-processing and NMS in the graph), any batch size and image size.
# tools/deploy_student.py uses it by default; tested with mmdeploy 1.3.1 (README, "Deploy the
# student"). mmdeploy's own configs are not in its wheel, so we ship this one.
onnx_config = dict(
    type='onnx',
    export_params=True,
    keep_initializers_as_inputs=False,
    # 16, not mmdeploy's usual 11: from opset 16 ONNX Runtime's RoiAlign computes mmcv's aligned
    # RoIAlign itself (coordinate_transformation_mode='half_pixel'); below, mmdeploy shifts the
    # RoIs instead and ONNX Runtime widens those under one feature pixel: two-stage detections
    # differ (tests/test_deploy's tiny Faster R-CNN at opset 11: boxes off by 0.04 px, scores by
    # 2e-3; at 16 within 1e-4 px and 3e-7).
    opset_version=16,
    save_file='end2end.onnx',
    input_names=['input'],
    output_names=['dets', 'labels'],
    input_shape=None,
    optimize=True,
    dynamic_axes=dict(
        input={0: 'batch', 2: 'height', 3: 'width'},
        dets={0: 'batch', 1: 'num_dets'},
        labels={0: 'batch', 1: 'num_dets'}))
codebase_config = dict(
    type='mmdet',
    task='ObjectDetection',
    model_type='end2end',
    # mmdeploy takes each detector family's own post-processing from the model's test_cfg
    # (score_thr, nms.iou_threshold, max_per_img, the per-level nms_pre); the values here only
    # stand in for keys a test_cfg lacks. The two caps mmdet does not have are set so that they
    # never cut what mmdet keeps: no overall top-k before NMS, and up to 1000 boxes per class
    # (mmdet's max_per_img is 100, RTMDet's 300). score_threshold 0: a test_cfg without score_thr
    # (the RPN's) filters nothing in mmdet either.
    post_processing=dict(
        score_threshold=0.0,
        confidence_threshold=0.005,
        iou_threshold=0.5,
        max_output_boxes_per_class=1000,
        pre_top_k=-1,
        keep_top_k=100,
        background_label_id=-1))
backend_config = dict(type='onnxruntime')
