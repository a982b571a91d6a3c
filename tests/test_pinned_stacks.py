"""The stacks CI tests (requirements/pinned*.txt) lie inside the ranges setup.py promises users."""
import os.path as osp
from glob import glob

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REQUIREMENTS = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'requirements')
PIN_FILES = sorted(glob(osp.join(REQUIREMENTS, 'pinned*.txt')))


def read_requirements(path: str) -> list[Requirement]:
    with open(path) as f:
        lines = (line.split('#')[0].strip() for line in f)
        return [Requirement(line) for line in lines if line]


def exact_pins(path: str) -> dict[str, str]:
    """Package name -> version of each ``name==version`` line."""
    pins = {}
    for req in read_requirements(path):
        (spec, *others) = req.specifier
        if spec.operator == '==' and not others:
            pins[canonicalize_name(req.name)] = spec.version
    return pins


def test_main_and_compat_stacks_exist() -> None:
    assert [osp.basename(p) for p in PIN_FILES] == ['pinned-compat.txt', 'pinned.txt']


@pytest.mark.parametrize('pin_file', PIN_FILES, ids=osp.basename)
def test_stack_pins_every_runtime_requirement_inside_its_range(pin_file: str) -> None:
    pins = exact_pins(pin_file)
    # tools/install_env.sh reads these three from the pin file to install them first.
    assert {'torch', 'torchvision', 'mmcv'} <= pins.keys()
    for req in read_requirements(osp.join(REQUIREMENTS, 'runtime.txt')):
        name = canonicalize_name(req.name)
        assert name in pins, f'{osp.basename(pin_file)} pins no exact version of {req.name}'
        assert req.specifier.contains(pins[name], prereleases=True), (
            f'{osp.basename(pin_file)}: {name}=={pins[name]} is outside setup.py\'s {req}')


@pytest.mark.parametrize('pin_file', PIN_FILES, ids=osp.basename)
def test_stack_pins_the_deploy_extra(pin_file: str) -> None:
    """Both stacks install the [deploy] extra (tests/test_deploy runs on each): mmdeploy itself
    without its requirements, so its protobuf<=3.20.2 does not break tensorboard; protobuf is
    pinned at a version tensorboard accepts."""
    pins = exact_pins(pin_file)
    for req in read_requirements(osp.join(REQUIREMENTS, 'deploy.txt')):
        name = canonicalize_name(req.name)
        assert name in pins, f'{osp.basename(pin_file)} pins no exact version of {req.name}'
        assert req.specifier.contains(pins[name], prereleases=True)
    assert Requirement('protobuf>=6.31.1,<8').specifier.contains(pins['protobuf'])
