"""vkd_mmdet: orthogonal-projection knowledge distillation (VkD) as an MMDetection 3.x plugin."""
import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))
#: What mim and installed-config users find under vkd_mmdet/.mim (mmdet's layout).
MIM_FILES = ('configs', 'tools', 'model-index.yml')


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


def add_mim_extension() -> None:
    """Put configs, tools and the model index into ``vkd_mmdet/.mim`` (mmdet's ``setup.py``).

    Symlinks for an editable install (the package dir is the source tree), copies for a wheel or
    sdist; other commands leave ``.mim`` alone. MANIFEST.in ships the copies.
    """
    if {'develop', 'editable_wheel'} & set(sys.argv):
        mode = 'copy' if os.name == 'nt' else 'symlink'  # no symlinks on Windows
    elif {'sdist', 'bdist_wheel'} & set(sys.argv):
        mode = 'copy'
    else:
        return
    mim_path = osp.join(HERE, 'vkd_mmdet', '.mim')
    os.makedirs(mim_path, exist_ok=True)
    for name in MIM_FILES:
        src_path, tar_path = osp.join(HERE, name), osp.join(mim_path, name)
        if osp.isfile(tar_path) or osp.islink(tar_path):
            os.remove(tar_path)
        elif osp.isdir(tar_path):
            shutil.rmtree(tar_path)
        if mode == 'symlink':
            os.symlink(osp.relpath(src_path, mim_path), tar_path)
        elif osp.isdir(src_path):
            shutil.copytree(src_path, tar_path, ignore=shutil.ignore_patterns('__pycache__'))
        else:
            shutil.copyfile(src_path, tar_path)


if __name__ == '__main__':
    add_mim_extension()
    setup(
        name='vkd_mmdet',
        version=read_version(),
        description='VkD (CVPR 2024) and peer knowledge-distillation methods for MMDetection 3.x '
        'and mmpretrain',
        long_description=read_text('README.md'),
        long_description_content_type='text/markdown',
        python_requires='>=3.9',
        packages=find_packages(exclude=('tests', 'tests.*', 'configs', 'tools')),
        include_package_data=True,
        install_requires=read_requirements('runtime.txt'),
        extras_require={
            'cls': read_requirements('cls.txt'),
            'demo': read_requirements('demo.txt'),
            'deploy': read_requirements('deploy.txt'),
            'tensorboard': read_requirements('tensorboard.txt'),
            # the suite covers the classification side and the demo too
            'tests': read_requirements('tests.txt') + read_requirements('cls.txt') +
            read_requirements('demo.txt'),
        },
        license='Apache-2.0',
        zip_safe=False,
    )
