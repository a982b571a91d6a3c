# CPU demo ND loss on the RoI box-head embeddings (after ReLU) of the RoIs the student's RoI head
# samples: student 128-d -> teacher 256-d through KD++'s BN1d-Dropout-Linear adapter; weight 1.5
# is KD++'s R101 -> R18 setting. Everything else from the two-stage VkD demo config. Class centres
# (5 classes + background) of the demo teacher first, as tools/bench_methods.py does:
#   python tools/compute_class_centers.py configs/demo/nd_faster-rcnn_r18-w32_r18-w16.py
_base_ = ['../_base_/distillers/demo_faster-rcnn_r18-w32_r18-w16_pair.py']
class_centers = 'work_dirs/bench_methods/class_centers/faster-rcnn_r18-w32.pth'
model = dict(distill_losses=dict(
    nd=dict(type='NDLoss', num_classes=5, in_channels=128, out_channels=256,
            class_centers=class_centers, loss_weight=1.5,
            # 128 -> 256: KD++'s projector (BN, dropout, linear)
            projector=dict(type='LinearAdapter', norm=True, dropout=0.5))))
