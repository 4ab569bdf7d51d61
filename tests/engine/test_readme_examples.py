"""README's Python examples run as written, in order, in one namespace."""

import pathlib
import re

README = pathlib.Path(__file__).parents[2] / 'README.md'


def test_readme_python_blocks_run():
  blocks = re.findall(r'```python\n(.*?)```', README.read_text(), re.S)
  assert len(blocks) >= 3, 'README lost its Python examples'
  namespace = {}
  for block in blocks:
    exec(compile(block, str(README), 'exec'), namespace)  # pylint: disable=exec-used
  assert namespace['metrics']['loss_is_finite']
