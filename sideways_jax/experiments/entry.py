"""The absl programs behind `experiments/main.py`, `speed.py` and `plot.py`.

Flags are defined only when a program starts, so importing the experiment
layer from a notebook or a test defines none.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from sideways_jax.experiments import cli
from sideways_jax.experiments import hosts
from sideways_jax.experiments import resume


def _absl_app(define: Callable[[Any], None], body: Callable[[Any], None], *,
              needs_config: bool) -> None:
  """Runs `body(flags.FLAGS)` under absl with one-line usage errors."""
  from absl import app  # pylint: disable=g-import-not-at-top
  from absl import flags
  from absl import logging

  define(flags)
  flags.DEFINE_bool('verbose', False, 'Show the full traceback of an error.')
  verbose = cli.verbose_requested(sys.argv)

  def parser(argv):
    try:
      if needs_config:
        return cli.parse_flags(argv, flags.FLAGS)
      return cli.parse_plain(argv, flags.FLAGS)
    except cli.UsageError as e:
      if verbose:
        raise
      cli.fail(str(e), 2)

  def main(argv):
    if len(argv) > 1:
      cli.fail(f'unexpected arguments: {" ".join(argv[1:])}', 2)
    if not flags.FLAGS['verbosity'].present:
      # Orbax logs several INFO lines per checkpoint; --verbosity=0 shows them.
      logging.set_verbosity(logging.WARNING)
    body(flags.FLAGS)

  app.run(main, flags_parser=parser)


def main(expect_runner: str | None = None) -> None:
  """`experiments/main.py`: runs the `--config` experiment."""
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top

  def define(flags):
    flags.DEFINE_string('workdir', None, 'Folder for logs, checkpoints and '
                        'plots (default: workdirs/<config name>[_<arg>]).')
    config_flags.DEFINE_config_file(
        'config', None, 'Experiment config, e.g. configs/hmdb_simplecnn.py '
        '(append :smoke for a tiny run).', lock_config=True)
    flags.DEFINE_enum(
        'resume', 'auto', resume.MODES, 'When the workdir holds a run: '
        "'auto' continues it if the config differs at most in keys that "
        "leave the numbers unchanged; 'fork' continues from its newest "
        "checkpoint with this config; 'restart' moves it aside and starts "
        'over.')
    from sideways_jax.experiments import artifacts  # pylint: disable=g-import-not-at-top
    flags.DEFINE_enum(
        'mode', 'train', ('train',) + artifacts.RUN_MODES,
        "'train' trains (or resumes) the config; 'eval' evaluates the "
        "workdir's trained runs at their newest verified checkpoint and "
        "prints one table; 'export' writes one run's variables to --out "
        '(neither writes into the workdir).')
    flags.DEFINE_string('split', None, "--mode=eval: the split to evaluate "
                        "(default: each run's data.eval_split).")
    flags.DEFINE_string('out', None, '--mode=eval: also write the table as '
                        'JSON here; --mode=export: the variables file.')

  def body(flag_values):
    if hosts.needs_supervisor(flag_values.config):
      # A multi-host process runs as a child, so that a lost peer (a native
      # abort in JAX's coordination client) ends in one line.
      raise SystemExit(hosts.supervise(sys.argv))
    hosts.die_with_supervisor()
    cli.run(flag_values.config,
            config_file=config_flags.get_config_filename(
                flag_values['config']),
            workdir=flag_values.workdir,
            # The env var too: a run's own errors honour it like flag errors.
            verbose=flag_values.verbose or cli.verbose_requested(sys.argv),
            expect_runner=expect_runner, resume=flag_values.resume,
            mode=flag_values.mode, split=flag_values.split,
            out=flag_values.out, overrides=cli.override_keys(sys.argv))

  _absl_app(define, body, needs_config=True)


def plot_main() -> None:
  """`experiments/plot.py`: redraws a classification folder's figures."""

  def define(flags):
    flags.DEFINE_string('workdir', None, 'A classification experiment folder.')
    flags.DEFINE_string('out', None, 'Where the PNGs go (default: '
                        '<workdir>/plots).')

  def body(flag_values):
    from sideways_jax.experiments.classification import plots  # pylint: disable=g-import-not-at-top
    if not flag_values.workdir:
      cli.fail('--workdir is required, e.g. '
               '--workdir=workdirs/synthetic_simplecnn', 2)
    try:
      figures = plots.make_plots(flag_values.workdir, flag_values.out)
    except FileNotFoundError as e:
      cli.fail(str(e), 2)
    for figure in figures:
      print(figure)

  _absl_app(define, body, needs_config=False)
