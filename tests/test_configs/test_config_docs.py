"""Every config folder documents itself as mmdet's do: README.md (paper, BibTeX, what is distilled,
results) and metafile.yml (model-index entries for mim), all imported by model-index.yml."""
import glob
import os.path as osp
import re

import pytest
import yaml

ROOT = osp.join(osp.dirname(__file__), '..', '..')
FOLDERS = sorted({osp.basename(osp.dirname(p))
                  for p in glob.glob(osp.join(ROOT, 'configs', '[!_]*', '*.py'))})
BIBTEX_KEY = re.compile(r'^@\w+\{(\w+),', re.MULTILINE)


def _read(*parts: str) -> str:
    with open(osp.join(ROOT, *parts)) as f:
        return f.read()


@pytest.mark.parametrize('folder', FOLDERS)
def test_metafile_lists_exactly_the_folders_configs(folder):
    meta = yaml.safe_load(_read('configs', folder, 'metafile.yml'))
    configs = sorted(model['Config'] for model in meta['Models'])
    on_disk = sorted(f'configs/{folder}/{osp.basename(p)}'
                     for p in glob.glob(osp.join(ROOT, 'configs', folder, '*.py')))
    assert configs == on_disk
    collections = {c['Name'] for c in meta['Collections']}
    assert all(model['In Collection'] in collections for model in meta['Models'])
    assert all(model['Name'] == osp.basename(model['Config'])[:-3] for model in meta['Models'])
    assert all(c['README'] == f'configs/{folder}/README.md' for c in meta['Collections'])


@pytest.mark.parametrize('folder', FOLDERS)
def test_readme_cites_and_describes_every_config(folder):
    readme = _read('configs', folder, 'README.md')
    assert BIBTEX_KEY.search(readme), 'no BibTeX entry'
    assert '](https://arxiv.org/abs/' in readme  # the paper
    for path in glob.glob(osp.join(ROOT, 'configs', folder, '*.py')):
        assert f'[`{osp.basename(path)}`]' in readme
    if folder != 'demo':  # the demo is trained here; the others are not
        assert re.search(r'\*\*Not trained on (COCO|ImageNet) here\*\*', readme)
        assert '**published, not measured here**' in readme
        # the leaderboard fills in between these markers
        assert readme.index('<!-- proxy-results:begin') < readme.index('<!-- proxy-results:end')


def test_model_index_imports_every_metafile():
    index = yaml.safe_load(_read('model-index.yml'))
    assert sorted(index['Import']) == [f'configs/{f}/metafile.yml' for f in FOLDERS]


def test_top_level_citation_section_covers_every_method():
    readme = _read('README.md')
    cited = set(BIBTEX_KEY.findall(readme[readme.index('## Citation'):]))
    for folder in FOLDERS:
        assert set(BIBTEX_KEY.findall(_read('configs', folder, 'README.md'))) <= cited, folder
