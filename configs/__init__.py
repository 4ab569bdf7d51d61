"""Experiment configs: `python experiments/main.py --config=configs/<name>.py`."""
