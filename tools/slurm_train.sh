#!/usr/bin/env bash
# Slurm training, as mmdet's tools/slurm_train.sh (same arguments and variables).
#   GPUS=16 bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py args]
#
# Preemption and time limits. Slurm sends SIGTERM to every task when it preempts the job (SIGKILL
# follows KillWait seconds later, 30 by default) and, asked with --signal, SIGUSR1 SIGNAL_LEAD
# seconds before the time limit. On either signal train.py finishes the iteration on every rank,
# writes a complete checkpoint (iter_<n>.pth, RNG states included) and exits with status 75
# (PreemptionHook); a checkpoint cut short by a kill is never picked by --resume. Pass --resume
# always: it continues from the newest complete checkpoint of WORK_DIR, or starts afresh when
# there is none.
#   SIGNAL_LEAD  seconds before the time limit at which the tasks get SIGUSR1 (default 180: the
#                iteration in progress plus a checkpoint write must fit in it)
#   REQUEUE      1 (default): when the tasks exit with status 75 inside a batch job, requeue it
#                (scontrol requeue; the requeued job runs this script again, with --resume it
#                continues); 0: exit with status 75 and let the caller decide
# As a requeueable batch job (the signal from sbatch reaches every task, not only this script):
#   sbatch -p PARTITION --job-name=JOB --nodes=2 --gres=gpu:8 --ntasks-per-node=8 \
#       --cpus-per-task=5 --requeue --signal=USR1@180 --time=24:00:00 \
#       --wrap "GPUS=16 bash tools/slurm_train.sh PARTITION JOB CONFIG WORK_DIR --resume"

set -x

PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
PYTHON=${PYTHON:-"python"}
SIGNAL_LEAD=${SIGNAL_LEAD:-180}
REQUEUE=${REQUEUE:-1}
REQUEUE_EXIT_CODE=75  # vkd_mmdet.engine.hooks.REQUEUE_EXIT_CODE
PY_ARGS=${@:5}

PYTHONPATH="$(dirname $0)/..":$PYTHONPATH \
srun -p ${PARTITION} \
    --job-name=${JOB_NAME} \
    --gres=gpu:${GPUS_PER_NODE} \
    --ntasks=${GPUS} \
    --ntasks-per-node=${GPUS_PER_NODE} \
    --cpus-per-task=${CPUS_PER_TASK} \
    --kill-on-bad-exit=1 \
    --signal=USR1@${SIGNAL_LEAD} \
    ${SRUN_ARGS} \
    $PYTHON -u $(dirname "$0")/train.py ${CONFIG} --work-dir=${WORK_DIR} --launcher="slurm" ${PY_ARGS}
STATUS=$?

if [ ${STATUS} -eq ${REQUEUE_EXIT_CODE} ]; then
    if [ "${REQUEUE}" = "1" ] && [ -n "${SLURM_JOB_ID}" ]; then
        scontrol requeue "${SLURM_JOB_ID}"
    else
        echo "preempted: checkpoint saved in ${WORK_DIR}; run again with --resume to continue"
    fi
fi
exit ${STATUS}
