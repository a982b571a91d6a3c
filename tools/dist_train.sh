#!/usr/bin/env bash
# Distributed training with torchrun, as mmdet's tools/dist_train.sh (same arguments and variables).
#   bash tools/dist_train.sh CONFIG GPUS [train.py args]
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 PORT=29500 bash tools/dist_train.sh CONFIG 8
# Without CUDA, GPUS is the number of CPU processes (gloo backend).
#
# Preemption: send SIGTERM to torchrun (what a scheduler or `kill` sends): torchrun passes it to
# every rank (and kills them 30 s later), each rank finishes its iteration, rank 0 writes a
# complete checkpoint (iter_<n>.pth) and the ranks exit with status 75 (PreemptionHook); torchrun
# then exits non-zero, listing `exitcode : 75` for each rank. The same command with --resume
# continues from that checkpoint. SIGTERM or SIGUSR1 sent to the rank processes themselves works
# the same (one rank is enough: the ranks agree on the stop). Do not send SIGUSR1 to torchrun: it
# does not handle it and dies without stopping the ranks.

CONFIG=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-"python"}

PYTHONPATH="$(dirname $0)/..":$PYTHONPATH \
$PYTHON -m torch.distributed.run \
    --nnodes=$NNODES \
    --node_rank=$NODE_RANK \
    --master_addr=$MASTER_ADDR \
    --nproc_per_node=$GPUS \
    --master_port=$PORT \
    $(dirname "$0")/train.py \
    $CONFIG \
    --launcher pytorch ${@:3}
