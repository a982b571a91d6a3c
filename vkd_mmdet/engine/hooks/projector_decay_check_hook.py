"""The name of a hook of an earlier release, kept so that old configs fail with what to write."""
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class ProjectorDecayCheckHook(Hook):
    """Removed: every distiller now checks, at the first optimizer step and in every launcher
    mode, that no optimizer decays its orthogonal projectors (``guard_projector_decay``), and
    ``DistillOptimWrapperConstructor`` builds optimizers that do not. Building it raises with
    the config change to make."""

    def __init__(self) -> None:
        raise ValueError(
            "custom_hooks: ProjectorDecayCheckHook was removed; delete it from custom_hooks (the "
            'distiller checks every optimizer itself) and set optim_wrapper=dict('
            "constructor='DistillOptimWrapperConstructor') instead of the "
            "'projector.raw_weight' custom_keys rule")
