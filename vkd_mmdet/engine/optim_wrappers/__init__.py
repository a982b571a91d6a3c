from .cpu_amp_optim_wrapper import CPUAmpOptimWrapper
from .distill_optim_wrapper_constructor import DistillOptimWrapperConstructor

__all__ = ['CPUAmpOptimWrapper', 'DistillOptimWrapperConstructor']
