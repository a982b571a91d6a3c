from .distill_grad_norm_hook import DistillGradNormHook
from .distill_loss_schedule_hook import DistillLossScheduleHook
from .export_student_hook import ExportStudentHook
from .preemption_hook import REQUEUE_EXIT_CODE, PreemptionHook
from .projector_decay_check_hook import ProjectorDecayCheckHook
from .rng_state_hook import RNGStateHook
from .startup_report_hook import StartupReportHook

__all__ = [
    'DistillGradNormHook', 'DistillLossScheduleHook', 'ExportStudentHook', 'PreemptionHook',
    'ProjectorDecayCheckHook', 'REQUEUE_EXIT_CODE', 'RNGStateHook', 'StartupReportHook'
]
