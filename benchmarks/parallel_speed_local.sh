#!/usr/bin/env bash
# Paper Table 2 at D = 2 on one machine: two processes, each pinned to its
# own CPU core with single-threaded XLA, joined over loopback (gloo). Every
# config runs all five algorithms (BP model-parallel, BP data-parallel,
# GPipe, 1F1B, Sideways) in one run and reports them as ratios to BP
# model-parallel, with the balance bound and the fraction of it each
# pipeline reaches.
#
#   bash benchmarks/parallel_speed_local.sh [CONFIG ...] [--config.x=y ...]
#
# CONFIGs default to configs/speed_vgg8.py:local2 and
# configs/speed_simplecnn.py:local2 (run one after the other; roughly
# 6 + 4 minutes on an idle 2-core machine). Flags after them apply to every
# config. Process 0 prints each report; the logs, results.json and
# schedule.png of each config go to $LOG_DIR/<config name> (LOG_DIR
# defaults to /tmp/sideways_speed). Run from the repository root. PYTHON
# picks the interpreter (default: .venv/bin/python if it exists, else
# python). Other work on the machine distorts the comparison (BP leaves one
# core idle half the time, which other processes then use): with MAX_LOAD=x
# the script first waits, up to WAIT_S seconds (default 3600), until the
# 1-minute load average is below x.
set -euo pipefail
cd "$(dirname "$0")/.."  # configs/ and experiments/ are relative to the root.

configs=()
while (($#)) && [[ "$1" != --* ]]; do
  configs+=("$1")
  shift
done
if ((${#configs[@]} == 0)); then
  configs=(configs/speed_vgg8.py:local2 configs/speed_simplecnn.py:local2)
fi
if [[ -z "${PYTHON:-}" ]]; then
  PYTHON=python
  [[ -x .venv/bin/python ]] && PYTHON=.venv/bin/python
fi
LOG_DIR=${LOG_DIR:-/tmp/sideways_speed}
CORES=($("$PYTHON" -c 'import os; print(*sorted(os.sched_getaffinity(0)))'))
if ((${#CORES[@]} < 2)); then
  echo "need 2 CPU cores, this process may use: ${CORES[*]}" >&2
  exit 1
fi
mkdir -p "$LOG_DIR"

# One core per process: taskset pins it, and XLA:CPU then sizes its thread
# pool to the one core it may use; Eigen's own threads are turned off too.
export XLA_FLAGS="${XLA_FLAGS:-} --xla_cpu_multi_thread_eigen=false"
export JAX_PLATFORMS=cpu
if [[ -n "${MAX_LOAD:-}" ]]; then
  deadline=$((SECONDS + ${WAIT_S:-3600}))
  until awk -v max="$MAX_LOAD" '{exit !($1 < max)}' /proc/loadavg; do
    if ((SECONDS > deadline)); then
      echo "load stayed above $MAX_LOAD; measuring anyway"
      break
    fi
    sleep 10
  done
fi

# setsid puts the workers out of reach of the terminal's Ctrl-C: stop them
# here. SIGKILL, because jax.distributed catches SIGTERM (preemption notice).
pids=()
trap 'kill -KILL "${pids[@]}" 2>/dev/null; exit 130' INT TERM

run_config() {
  # $1: the config; the rest: flags for the speed runner.
  local config=$1 name dir start status=0 i
  shift
  name=$(basename "${config%%:*}" .py)${config#*.py}
  name=${name//:/_}
  dir="$LOG_DIR/$name"
  mkdir -p "$dir"
  echo "== $config (logs in $dir); load average: $(cat /proc/loadavg)"
  start=$SECONDS
  local port
  port=${PORT:-$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
  pids=()
  for i in 0 1; do
    # setsid: a session (so a scheduler autogroup) of its own per process,
    # as on separate hosts; otherwise the kernel's per-session fairness would
    # make the two processes share one session's slice of a loaded machine.
    setsid taskset -c "${CORES[$i]}" "$PYTHON" experiments/speed.py \
        --config="$config" \
        --workdir="$dir" \
        --config.distributed.num_processes=2 \
        --config.distributed.process_id=$i \
        --config.distributed.coordinator_address=127.0.0.1:$port \
        --config.distributed.heartbeat_timeout_s=60 \
        --config.distributed.num_cpu_devices=1 \
        "$@" > "$dir/process$i.log" 2>&1 &
    pids+=($!)
  done
  for i in 0 1; do
    wait "${pids[$i]}" || {
      status=$?
      echo "process $i failed (exit $status); see $dir/process$i.log"
    }
  done
  echo "load average after: $(cat /proc/loadavg); took $((SECONDS - start)) s"
  grep -v '^I[0-9]\|^W[0-9]\|Gloo\|^\s*$' "$dir/process0.log" | tail -n 40
  return $status
}

status=0
for config in "${configs[@]}"; do
  run_config "$config" "$@" || status=$?
done
exit $status
