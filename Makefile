# Developer entry points. CI (.ci/run) runs `make test` then `make test-compat`; each installs its
# stack first when needed (tools/install_env.sh, pins in requirements/pinned*.txt).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.vkd_install_stamp
# The second stack: torch 2.1 + numpy 1 (requirements/pinned-compat.txt).
COMPAT_VENV ?= .venv-compat
COMPAT_STAMP := $(COMPAT_VENV)/.vkd_install_stamp
PYTEST_ARGS ?=

.PHONY: install test install-compat test-compat lint demo bench-accuracy bench-methods \
	bench-methods-gfl bench-methods-tuned bench-diagnosis bench

$(STAMP): requirements/pinned.txt setup.py tools/install_env.sh
	STACK=main VENV=$(VENV) bash tools/install_env.sh

install:
	STACK=main VENV=$(VENV) bash tools/install_env.sh

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

$(COMPAT_STAMP): requirements/pinned-compat.txt setup.py tools/install_env.sh
	STACK=compat VENV=$(COMPAT_VENV) bash tools/install_env.sh

install-compat:
	STACK=compat VENV=$(COMPAT_VENV) bash tools/install_env.sh

test-compat: $(COMPAT_STAMP)
	$(COMPAT_VENV)/bin/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# Synthetic data -> teacher (cached) -> student alone / with VkD -> COCO eval, table + plot
# into work_dirs/demo (tools/run_demo.py).
demo: $(STAMP)
	$(PY) tools/run_demo.py --work-dir work_dirs/demo

# The same comparison over 3 student seeds, mean +- std into docs/accuracy.md (runs of
# `make demo` with the same settings are reused).
bench-accuracy: $(STAMP)
	$(PY) tools/run_demo.py --work-dir work_dirs/demo --seeds 0 1 2 --reuse-runs --markdown docs/accuracy.md

# Leaderboard (docs/methods.md, every run's numbers in docs/methods_per_seed.csv): every feature
# method and VkD's ablations on the demo's FCOS pair, VkD / ND / KD++ on a CPU Faster R-CNN pair,
# 3 seeds, 2 runs in parallel (tools/bench_methods.py over vkd_mmdet.benchmarks; make demo's
# teacher is reused, finished runs too, evaluated again when the val set changed). The GFL pair,
# every method in one table, is bench-methods-gfl: a section of the same page.
bench-methods: $(STAMP)
	$(PY) tools/bench_methods.py --proxies fcos faster-rcnn --seeds 0 1 2 --jobs 2 --reuse-runs \
		--markdown docs/methods.md --config-readmes configs

# The GFL proxy with the seeds its intervals need (every method in one table, LD, CrossKD and
# VkD + CrossKD included): its own section of docs/methods.md, per seed in
# docs/methods_proxies_gfl_per_seed.csv. Its teacher trains 1500 iterations (rows.PROXIES: at
# the demo's 600 it is too weak to rank by). Every row on 8 seeds; more where the page's
# resolution table says a row's spread needs them for intervals of +-0.6 AP: the student alone
# (in every gain over it), LD (the widest) and VkD (every row is compared with it) on 32, FGD and
# CrossKD on 20, MGD on 16, two VkD ablations on 12; 256 runs, about 3.9 h from scratch on 2
# cores (the page says where the time goes), plus 7 min for the teacher.
GFL_ROW_SEEDS := student=8-31 ld=8-31 vkd=8-31 fgd=8-19 crosskd=8-19 mgd=8-15 vkd-linear=8-11 \
	vkd-nonorm=8-11
bench-methods-gfl: $(STAMP)
	$(PY) tools/bench_methods.py --proxies gfl --seeds 0 1 2 3 4 5 6 7 \
		--row-seeds $(GFL_ROW_SEEDS) --jobs 2 --reuse-runs --markdown docs/methods.md \
		--config-readmes configs

# The tuned-weights section of docs/methods.md: every feature method's loss weight swept on the
# held-out tune split (never the val split), then each at its best factor on val, 3 seeds
# (per seed: docs/methods_tuned_per_seed.csv).
bench-methods-tuned: $(STAMP)
	$(PY) tools/bench_methods.py --sweep-weights --jobs 2 --reuse-runs
	$(PY) tools/bench_methods.py --weights-from work_dirs/bench_methods/tune/sweep.json \
		--seeds 0 1 2 --jobs 2 --reuse-runs --markdown docs/methods.md --config-readmes configs

# VkD's diagnosis (docs/vkd_diagnosis.md): its variants on val, 3 seeds, and the gradient norms of
# every feature method; tables into work_dirs/bench_methods/val/diagnosis.md.
bench-diagnosis: $(STAMP)
	$(PY) tools/bench_methods.py --diagnosis --seeds 0 1 2 --jobs 2 --reuse-runs

# Cost of distillation (docs/benchmark.md): projector maps, then distillation step vs student
# step + teacher forward for the Faster R-CNN and RetinaNet VkD configs (2 images 512x512), fp32
# and bf16 teachers, each ratio to +-0.03 (95 %) within an hour, then the tables of the page.
BENCH_ARGS ?= --device cpu --threads 2 --target-ci 0.03 --time-limit 3600
bench: $(STAMP)
	$(PY) tools/benchmark_projectors.py --skip-dense-above 3000 --out work_dirs/benchmark/projectors.json
	for c in faster_rcnn_r101_r18 retinanet_r101_r18; do for p in fp32 bf16; do \
		$(PY) tools/benchmark.py configs/vkd/$$c.py $(BENCH_ARGS) --teacher-precision $$p \
			--out work_dirs/benchmark/$${c}_$$p.json || exit 1; \
	done; done
	$(PY) tools/benchmark.py --tables work_dirs/benchmark/*_fp32.json work_dirs/benchmark/*_bf16.json
