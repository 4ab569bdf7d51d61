"""The experiment layer: configs in, runs, logs, tables and plots out.

Everything above the library lives here; nothing in the engine, models, data
or parallel packages imports from it. `config.runner` picks the runner:

* 'classification': train/evaluate a video classifier (paper Table 1, Fig.
  4-5), on one device or depth-parallel on a (data, stage) mesh;
* 'streaming': streaming auto-encoding (paper Table 3);
* 'speed': training speed and memory per device on a mesh (paper Table 2).

`common` holds what the runners share (errors, sweeps, workdirs, figures);
`workdir`, `manifest`, `lock`, `hosts` and `resume` keep a run folder
trustworthy (atomic strict-JSON writes and local or `gs://` paths, verified
checkpoints, one run per folder, process 0's decisions on a multi-host run,
which config changes a resume accepts); `cli.main` is what
`experiments/main.py` calls.
"""
