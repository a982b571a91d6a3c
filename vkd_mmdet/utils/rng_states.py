"""The states of the process's random-number generators, as plain types a checkpoint can hold.

Python's ``random``, numpy's global generator, torch's CPU generator and, once CUDA is in use,
the CUDA generators of all visible devices. Plain types (tensors, ints, floats, strings) so that
even ``torch.load(weights_only=True)`` reads them back.
"""
import logging
import random

import numpy as np
import torch
from mmengine.logging import print_log


def get_rng_states() -> dict:
    """This process's generator states (what :func:`set_rng_states` restores)."""
    version, internal, gauss_next = random.getstate()
    np_state = np.random.get_state(legacy=False)
    states = dict(
        python=dict(version=version, internal=torch.tensor(internal, dtype=torch.int64),
                    gauss_next=gauss_next),
        numpy=dict(bit_generator=np_state['bit_generator'],
                   key=torch.from_numpy(np_state['state']['key'].astype(np.int64)),
                   pos=int(np_state['state']['pos']), has_gauss=int(np_state['has_gauss']),
                   gauss=float(np_state['gauss'])),
        torch=torch.get_rng_state())
    # Only once CUDA is in use: querying it would otherwise initialise CUDA in CPU runs.
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states['torch_cuda'] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict) -> None:
    """Restore the generators to ``states`` from :func:`get_rng_states`.

    The tensors may lie on any device (a resume maps the checkpoint to the training device; the
    generators take CPU tensors). CUDA states are restored for the devices this process sees,
    with a warning when their number differs from the stored one.
    """
    python = states['python']
    random.setstate((python['version'], tuple(int(v) for v in python['internal'].tolist()),
                     python['gauss_next']))
    numpy = states['numpy']
    np.random.set_state(dict(
        bit_generator=numpy['bit_generator'],
        state=dict(key=numpy['key'].cpu().numpy().astype(np.uint32), pos=numpy['pos']),
        has_gauss=numpy['has_gauss'], gauss=numpy['gauss']))
    torch.set_rng_state(states['torch'].cpu())
    cuda_states = states.get('torch_cuda')
    if cuda_states and torch.cuda.is_available():
        visible = torch.cuda.device_count()
        if len(cuda_states) != visible:
            print_log(f'set_rng_states: the states hold the CUDA generators of '
                      f'{len(cuda_states)} devices, this process sees {visible}; restoring the '
                      f'first {min(len(cuda_states), visible)}',
                      logger='current', level=logging.WARNING)
        for device, cuda_state in enumerate(cuda_states[:visible]):
            torch.cuda.set_rng_state(cuda_state.cpu(), device)
