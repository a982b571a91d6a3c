"""vkd_mmdet: orthogonal-projection knowledge distillation (VkD) as an MMDetection 3.x plugin."""
import os.path as osp

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_requirements(name: str) -> list[str]:
    lines = (line.split('#')[0].strip() for line in read_text('requirements', name).splitlines())
    return [line for line in lines if line]


def read_text(*parts: str) -> str:
    with open(osp.join(HERE, *parts)) as f:
        return f.read()


def read_version() -> str:
    namespace: dict = {}
    exec(read_text('vkd_mmdet', 'version.py'), namespace)
    return namespace['__version__']


setup(
    name='vkd_mmdet',
    version=read_version(),
    description='VkD (CVPR 2024) and peer knowledge-distillation methods for MMDetection 3.x '
    'and mmpretrain',
    long_description=read_text('README.md'),
    long_description_content_type='text/markdown',
    python_requires='>=3.9',
    packages=find_packages(exclude=('tests', 'tests.*', 'configs', 'tools')),
    install_requires=read_requirements('runtime.txt'),
    extras_require={'demo': ['scikit-image', 'matplotlib', 'tqdm'], 'tests': ['pytest', 'ruff']},
    license='Apache-2.0',
    zip_safe=False,
)
