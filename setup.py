"""vkd_mmdet: orthogonal-projection knowledge distillation (VkD) as an MMDetection 3.x plugin."""
import os.path as osp

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_requirements(name: str) -> list[str]:
    with open(osp.join(HERE, 'requirements', name)) as f:
        lines = (line.split('#')[0].strip() for line in f)
        return [line for line in lines if line]


def read_version() -> str:
    namespace: dict = {}
    with open(osp.join(HERE, 'vkd_mmdet', 'version.py')) as f:
        exec(f.read(), namespace)
    return namespace['__version__']


setup(
    name='vkd_mmdet',
    version=read_version(),
    description='VkD (CVPR 2024) and peer knowledge-distillation methods for MMDetection 3.x '
    'and mmpretrain',
    long_description=open(osp.join(HERE, 'README.md')).read(),
    long_description_content_type='text/markdown',
    python_requires='>=3.9',
    packages=find_packages(exclude=('tests', 'tests.*', 'configs', 'tools')),
    install_requires=read_requirements('runtime.txt'),
    extras_require={'demo': ['scikit-image', 'matplotlib', 'tqdm'], 'tests': ['pytest', 'ruff']},
    license='Apache-2.0',
    zip_safe=False,
)
