"""Worker process for the multi-device tests: 8 fake CPU devices.

Other test folders may start JAX's backend (with one CPU device) before these
tests run in the same pytest process, after which the device count can no
longer change. So multi-device cases run here, in a separate process whose
first act is to ask for 8 CPU devices. Protocol: one JSON request per line on
stdin ({"case": name, "kwargs": {...}}), one JSON reply per line on stdout
({"ok": true, "result": ...} or {"ok": false, "error": traceback}).
"""

import json
import os
import sys
import traceback

NUM_DEVICES = 8


def main() -> None:
  os.environ.setdefault('JAX_PLATFORMS', 'cpu')
  import jax  # pylint: disable=g-import-not-at-top
  jax.config.update('jax_num_cpu_devices', NUM_DEVICES)
  sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
  import parallel_cases  # pylint: disable=g-import-not-at-top
  assert jax.device_count() == NUM_DEVICES, jax.devices()
  # Replies go to the real stdout; anything the cases print goes to stderr.
  reply_stream = sys.stdout
  sys.stdout = sys.stderr
  for line in sys.stdin:
    if not line.strip():
      continue
    request = json.loads(line)
    try:
      result = parallel_cases.CASES[request['case']](**request['kwargs'])
      reply = {'ok': True, 'result': result}
    except Exception:  # pylint: disable=broad-except
      reply = {'ok': False, 'error': traceback.format_exc()}
    reply_stream.write(json.dumps(reply) + '\n')
    reply_stream.flush()


if __name__ == '__main__':
  main()
