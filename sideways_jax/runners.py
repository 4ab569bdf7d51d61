"""Hands an experiment config to its runner: classification or streaming.

Every config names its runner in `config.runner`, so one command,
`python experiments/main.py --config=configs/<name>.py`, runs any paper
experiment: action recognition (`sideways_jax.train`) or streaming
auto-encoding (`sideways_jax.streaming`).
"""

from __future__ import annotations

from typing import Any

RUNNERS = ('classification', 'streaming')


def main(config: Any, *, config_file: str, workdir: str | None) -> None:
  """Runs `config` with the runner it names.

  Args:
    config: the parsed, locked `--config`.
    config_file: the `--config` value (names the default workdir).
    workdir: `--workdir`, or None for the runner's default.

  Raises:
    SystemExit: `config.runner` is not one of RUNNERS.
  """
  # Imported here so that a run loads only its own runner's dependencies.
  if config.runner == 'classification':
    from sideways_jax.train import experiment  # pylint: disable=g-import-not-at-top
  elif config.runner == 'streaming':
    from sideways_jax.streaming import experiment  # pylint: disable=g-import-not-at-top
  else:
    raise SystemExit(f'error: runner={config.runner!r}: choose one of '
                     f'{RUNNERS}')
  experiment.main(config, config_file=config_file, workdir=workdir)
