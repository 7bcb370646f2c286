"""The documentation says what the code does: the model table is the registry's, every
Python block of the README runs against the installed package, and every relative link
points at a file of the repository."""
import pathlib
import re

import pytest

from ghostnet_tf.profile import models_table, weights_table

REPO = pathlib.Path(__file__).resolve().parent.parent
DOCS = [REPO / "README.md"] + sorted((REPO / "docs").glob("*.md"))


def _python_blocks(path):
    """The ```python blocks (```py ones download: tests/test_pretrained.py runs that path
    against a local server)."""
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def test_the_model_table_is_the_registrys():
    text = (REPO / "docs" / "models.md").read_text()
    table = re.search(r"<!-- models-table -->\n(.*?)\n<!-- end models-table -->", text, re.S)
    assert table, "docs/models.md lost its table markers"
    assert table[1] == models_table()  # ghostnet-profile --list prints it
    weights = re.search(r"<!-- weights-table -->\n(.*?)\n<!-- end weights-table -->", text,
                        re.S)
    assert weights, "docs/models.md lost its weights table markers"
    assert weights[1] == weights_table()


@pytest.mark.parametrize("index", range(len(_python_blocks(REPO / "README.md"))))
def test_readme_python_blocks_run(index, capsys):
    block = _python_blocks(REPO / "README.md")[index]
    exec(compile(block, f"README.md python block {index}", "exec"), {"__name__": "readme"})
    assert capsys.readouterr().out  # each block shows something


@pytest.mark.parametrize("path", DOCS, ids=lambda path: path.name)
def test_relative_links_point_at_files(path):
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text())
    missing = [target for target in targets if "://" not in target
               and not (path.parent / target).exists()]
    assert not missing, missing
