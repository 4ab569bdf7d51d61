"""Trains a small conv chain with BP and with Sideways; prints both losses.

  python experiments/demo.py
"""

from absl import app

from sideways_jax import demo


def main(argv):
  del argv
  print(demo.format_curves(demo.run_demo()))


if __name__ == '__main__':
  app.run(main)
