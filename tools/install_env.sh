#!/usr/bin/env bash
# Creates (or refreshes) a pinned development environment — what `make install` (.venv/) and
# `make install-compat` (.venv-compat/) run.
#
# Steps: venv -> torch + torchvision -> mmcv with compiled ops (a cached wheel built against this
# exact torch / Python / platform, or a source build that is then cached) -> the pinned rest ->
# vkd_mmdet in editable mode -> import check. A stamp file makes a second run a quick check.
#
# Environment:
#   STACK              which pinned stack (default: main). Each stack is one file of exact pins,
#                      torch, torchvision and mmcv included:
#                        main    requirements/pinned.txt         today's torch (2.14), numpy 2
#                        compat  requirements/pinned-compat.txt  torch 2.1 + numpy 1, the stack of
#                                                                OpenMMLab's prebuilt mmcv 2.1.0 wheels
#   VENV               where the environment lives (default: .venv in the repo root)
#   VKD_WHEEL_CACHE    cache of mmcv wheels built here (default: ~/.cache/vkd_mmdet/wheels)
#   VKD_SHARED_WHEELS  read-only wheel cache shipped beside the repo (default: ../shared/wheels)
#   MAX_JOBS           parallel compile jobs for the mmcv build (default: number of cores)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${VENV:-$ROOT/.venv}
[[ $VENV == /* ]] || VENV=$ROOT/$VENV  # the mmcv build runs from another directory
STACK=${STACK:-main}
if [[ $STACK == main ]]; then PINS=$ROOT/requirements/pinned.txt; else PINS=$ROOT/requirements/pinned-$STACK.txt; fi
[[ -f $PINS ]] || { echo "STACK=$STACK: no pin file $PINS (stacks: main, compat)" >&2; exit 2; }
pin() {  # the exact version $PINS gives package $1
    local version
    version=$(sed -n "s/^$1==\([^ ;#]*\).*/\1/p" "$PINS")
    [[ -n $version ]] || { echo "$PINS pins no exact version of $1 (expected a line '$1==X.Y.Z')" >&2; exit 2; }
    echo "$version"
}
TORCH_VERSION=$(pin torch)
TORCHVISION_VERSION=$(pin torchvision)
MMCV_VERSION=$(pin mmcv)
WHEEL_CACHE=${VKD_WHEEL_CACHE:-$HOME/.cache/vkd_mmdet/wheels}
SHARED_WHEELS=${VKD_SHARED_WHEELS:-$ROOT/../shared/wheels}
PY=$VENV/bin/python
PIP=("$PY" -m pip --disable-pip-version-check -q)

step_start=0
step() { step_start=$(date +%s); echo "==> $*"; }
done_step() { echo "    done in $(( $(date +%s) - step_start ))s"; }
# pip prints a warning per missing local index folder on these machines: keep the log readable.
quiet_pip() { "${PIP[@]}" "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }

verify() {
    "$PY" - <<'EOF'
import mmcv, mmdet, mmengine, mmpretrain, torch
from mmcv.ops import RoIAlign, nms  # noqa: F401  (fails when mmcv was built without its ops)
import vkd_mmdet  # noqa: F401
# the [deploy] extra, and tensorboard still importing beside mmdeploy (protobuf)
import mmdeploy, onnx, onnxruntime  # noqa: E401,F401
from torch.utils.tensorboard import SummaryWriter  # noqa: F401
print(f'    torch {torch.__version__}, mmengine {mmengine.__version__}, mmcv {mmcv.__version__}, '
      f'mmdet {mmdet.__version__}, mmpretrain {mmpretrain.__version__}, '
      f'mmdeploy {mmdeploy.__version__}, onnxruntime {onnxruntime.__version__}: imports OK')
EOF
}

stamp_key() {
    cat "$PINS" "$ROOT/setup.py" "$ROOT/tools/install_env.sh" | sha256sum | cut -c1-16
}
STAMP=$VENV/.vkd_install_stamp

if [[ -f $STAMP && $(cat "$STAMP") == $(stamp_key) ]] && verify 2>/dev/null; then
    touch "$STAMP"  # newer than its inputs: make skips this script next time
    echo "==> $VENV is up to date (delete $STAMP to force a reinstall)"
    exit 0
fi

if [[ ! -x $PY ]]; then
    step "creating virtual environment $VENV"
    python3.11 -m venv "$VENV" 2>/dev/null || python3 -m venv "$VENV"
    done_step
fi
PY_TAG=cp$("$PY" -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')
ARCH=$(uname -m)

step "installing setuptools<81 (mmengine resolves mmdet:: configs through pkg_resources) and wheel"
quiet_pip install 'setuptools>=77,<81' wheel
done_step

if ! "$PY" -c "import torch, torchvision, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
    step "installing torch $TORCH_VERSION + torchvision $TORCHVISION_VERSION"
    quiet_pip install -c "$PINS" "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"
    done_step
fi

# mmcv wheels are ABI-bound to the torch they were compiled against; pip's own cache keys them by the
# source archive only, so we keep our own cache keyed by mmcv + torch + Python + platform.
KEY=mmcv-$MMCV_VERSION-torch-$TORCH_VERSION-$PY_TAG-$ARCH
WHEEL_NAME=mmcv-$MMCV_VERSION-$PY_TAG-$PY_TAG-linux_$ARCH.whl

mmcv_ops_ok() {  # quiet on success; on failure, the import error's last line
    local err
    err=$("$PY" -c "from mmcv.ops import nms, RoIAlign" 2>&1) || { echo "    ${err##*$'\n'}"; return 1; }
}

install_wheel() {  # install a candidate wheel; keep it only if its compiled ops import against our torch
    quiet_pip install --force-reinstall --no-deps "$1" &&
        # its runtime dependencies (opencv, addict, yapf, mmengine), at our pins
        quiet_pip install -c "$PINS" "$1" &&
        mmcv_ops_ok
}

find_shared_wheel() {  # the shared cache, checked against its SHA256SUMS
    local dir=$SHARED_WHEELS/torch-$TORCH_VERSION-$PY_TAG-$ARCH
    local wheel=$dir/$WHEEL_NAME
    [[ -f $wheel ]] || return 1
    if [[ -f $SHARED_WHEELS/SHA256SUMS ]]; then
        (cd "$SHARED_WHEELS" && grep " torch-$TORCH_VERSION-$PY_TAG-$ARCH/$WHEEL_NAME\$" SHA256SUMS | sha256sum -c --quiet -) \
            >/dev/null 2>&1 || { echo "    $wheel fails its checksum: ignored" >&2; return 1; }
    fi
    echo "$wheel"
}

build_mmcv() {
    local jobs=${MAX_JOBS:-$(nproc)} work
    work=$(mktemp -d)
    echo "    building mmcv $MMCV_VERSION from source with its CPU ops ($jobs jobs):"
    echo "    this takes about 17 minutes on 2 cores; the wheel is then cached in $WHEEL_CACHE/$KEY"
    quiet_pip download --no-deps --no-binary :all: --no-build-isolation -d "$work" "mmcv==$MMCV_VERSION"
    tar -xzf "$work"/mmcv-$MMCV_VERSION.tar.gz -C "$work"
    # torch >= 2.14 headers require C++20; mmcv 2.1.0's setup.py hard-codes -std=c++17.
    if "$PY" -c "import sys, torch; sys.exit(tuple(map(int, torch.__version__.split('.')[:2])) < (2, 14))"; then
        sed -i 's/-std=c++17/-std=c++20/g' "$work/mmcv-$MMCV_VERSION/setup.py"
    fi
    (cd "$work/mmcv-$MMCV_VERSION" && MMCV_WITH_OPS=1 MAX_JOBS=$jobs \
        "${PIP[@]}" wheel --no-deps --no-build-isolation -w "$work/dist" .)
    mkdir -p "$WHEEL_CACHE/$KEY"
    cp "$work"/dist/mmcv-*.whl "$WHEEL_CACHE/$KEY/"
    rm -rf "$work"
}

if ! "$PY" -c "import mmcv, sys; sys.exit(mmcv.__version__ != '$MMCV_VERSION')" 2>/dev/null \
        || ! mmcv_ops_ok >/dev/null; then
    step "installing mmcv $MMCV_VERSION with compiled ops (cache key $KEY)"
    installed=0
    for wheel in "$WHEEL_CACHE/$KEY/$WHEEL_NAME" "$(find_shared_wheel || true)"; do
        if [[ -n $wheel && -f $wheel ]]; then
            echo "    trying cached wheel $wheel"
            if install_wheel "$wheel"; then installed=1; break; fi
            echo "    $wheel does not work with this torch: skipped"
        fi
    done
    if [[ $installed == 0 ]]; then
        build_mmcv
        install_wheel "$WHEEL_CACHE/$KEY/$WHEEL_NAME" || { echo "mmcv build produced no working ops" >&2; exit 1; }
    fi
    done_step
fi

step "installing the pinned stack (${PINS#"$ROOT"/}) and vkd_mmdet in editable mode"
# mmdeploy declares protobuf<=3.20.2 (pip would downgrade protobuf and break tensorboard): every
# other pin first, then mmdeploy without its requirements (pinned beside it, protobuf included).
MMDEPLOY_VERSION=$(pin mmdeploy)
quiet_pip install -r <(grep -v '^mmdeploy==' "$PINS")
quiet_pip install --no-deps "mmdeploy==$MMDEPLOY_VERSION"
quiet_pip install --no-deps --no-build-isolation -e "$ROOT"
# Some packages pull a newer setuptools in; pkg_resources must stay (checked, not assumed).
quiet_pip install 'setuptools>=77,<81'
done_step

step "checking imports"
verify
stamp_key > "$STAMP"
done_step
