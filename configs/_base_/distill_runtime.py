# What every COCO distiller config shares; each pair's configs/_base_/distillers/*.py lists it
# beside its student (mmengine refuses a key two bases both define, so the optimizer constructor
# and the hooks are stated per pair: the students' own configs define them too).
custom_imports = dict(imports=['vkd_mmdet'], allow_failed_imports=False)
# A fixed seed (with RNGStateHook) makes `--resume` bit-exact: the sampler and data-worker seeds
# are built before the checkpoint is read. Change it per run if you average over seeds.
randomness = dict(seed=0)
