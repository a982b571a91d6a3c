"""64 px pipelines and single-process loaders over the demo configs: shortened runs in tests."""
TINY_PIPELINES = """
img_scale = (64, 64)
_train = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
          dict(type='Resize', scale=img_scale, keep_ratio=True), dict(type='PackDetInputs')]
_test = [dict(type='LoadImageFromFile'), dict(type='Resize', scale=img_scale, keep_ratio=True),
         dict(type='LoadAnnotations', with_bbox=True),
         dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                                               'scale_factor'))]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(pipeline=_train))
val_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                      dataset=dict(pipeline=_test))
test_dataloader = val_dataloader
"""
