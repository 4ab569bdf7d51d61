"""Checks README's main-job table against what the main job prints.

    python benchmarks/check_readme_table.py              # runs the main job
    python benchmarks/check_readme_table.py --log=FILE   # checks a saved log

Runs `experiments/main.py --config=configs/synthetic_simplecnn.py` in a
fresh temporary workdir (so nothing is resumed), takes the comparison table
it prints and compares it with the first table under README's "## The main
job" heading. The run is deterministic on CPU, so every column must match
exactly except steps/s (a timing, which depends on the machine and its
load). Exits 0 on a match, 1 with both tables otherwise.
"""

from __future__ import annotations

import argparse
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONFIG = 'configs/synthetic_simplecnn.py'
HEADING = '## The main job'
TIMING_COLUMN = 'steps/s'


def find_table(text: str) -> list[list[str]]:
  """Rows (header first) of the first results table in `text`.

  A table starts at a line whose first cell is 'algorithm', skips the
  dashed rule under it and ends at the first line that is blank or a code
  fence.
  """
  lines = text.splitlines()
  for start, line in enumerate(lines):
    if line.split()[:1] == ['algorithm']:
      break
  else:
    raise ValueError('no table (a line starting with "algorithm") found')
  # Headers like 'train loss' hold one space; cells are 2+ spaces apart.
  split = lambda line: [c.strip() for c in line.strip().split('  ') if c]
  rows = [split(lines[start])]
  for line in lines[start + 2:]:
    if not line.strip() or line.startswith('```'):
      break
    rows.append(split(line))
  return rows


def without_timing(rows: list[list[str]]) -> list[list[str]]:
  """The rows without the steps/s column."""
  if TIMING_COLUMN not in rows[0]:
    return rows
  drop = rows[0].index(TIMING_COLUMN)
  return [r[:drop] + r[drop + 1:] for r in rows]


def readme_table(readme: pathlib.Path) -> list[list[str]]:
  """The first table after README's main-job heading."""
  text = readme.read_text()
  if HEADING not in text:
    raise ValueError(f'{readme} has no "{HEADING}" section')
  return find_table(text.split(HEADING, 1)[1])


def run_main_job() -> str:
  """Runs the main job in a fresh workdir; returns what it printed."""
  with tempfile.TemporaryDirectory() as workdir:
    cmd = [sys.executable, 'experiments/main.py', f'--config={CONFIG}',
           f'--workdir={workdir}']
    print('running:', ' '.join(cmd), flush=True)
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                          check=False)
  if done.returncode:
    sys.stderr.write(done.stderr[-4000:])
    raise SystemExit(f'the main job failed (exit {done.returncode})')
  return done.stdout


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--log', type=pathlib.Path,
                      help='a saved stdout of the main job (default: run it)')
  parser.add_argument('--readme', type=pathlib.Path, default=ROOT / 'README.md')
  args = parser.parse_args()
  printed = args.log.read_text() if args.log else run_main_job()
  got, want = find_table(printed), readme_table(args.readme)
  show = lambda rows: '\n'.join('  '.join(r) for r in rows)
  if without_timing(got) == without_timing(want):
    print(f'README table matches the main job (ignoring {TIMING_COLUMN}):')
    print(show(got))
    return 0
  print(f'README table differs from the main job (ignoring {TIMING_COLUMN}).')
  print(f'printed:\n{show(got)}\n\nREADME.md:\n{show(want)}')
  return 1


if __name__ == '__main__':
  sys.exit(main())
