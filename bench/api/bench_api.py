#!/usr/bin/env python3
"""bench/api: the sandbox API's overheads, in one run, as ratios.

1. Round trip of `exec true` in a running VM: through the Python SDK (one JSON-RPC
   call over a long-lived `airlock rpc`) against the CLI (`airlock exec ID -- true`,
   a process per command). Aim: SDK <= 0.5x the CLI's wall time. Both include the
   guest's own time for the command (its fork to reap, `duration_ms`), which under TCG
   is most of it, so the host-side overhead (wall minus that) is printed too.
2. 100 MB into and out of the VM: write_file/read_file (file.write / file.read) against
   piping the same bytes through exec stdin/stdout (`cat > file`, `cat file`). Aim: the
   file calls at least as fast (ratio exec time / file time >= 1.0).

Medians of repeated runs; every transfer's bytes are checked. Uses AIRLOCK_BIN (default
build/airlock) and the current AIRLOCK_HOME; TCG unless AIRLOCK_ACCEL says otherwise.
Prints a table and one JSON line. Not a test: no thresholds, just the figures.
"""
import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "sdk", "python"))
os.environ.setdefault("AIRLOCK_BIN", os.path.join(ROOT, "build", "airlock"))
os.environ.setdefault("AIRLOCK_ACCEL", "tcg")

import airlock  # noqa: E402


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def median_of(runs, fn):
    return statistics.median(timed(fn)[0] for _ in range(runs))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exec-runs", type=int, default=30)
    parser.add_argument("--cli-runs", type=int, default=15)
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--transfer-runs", type=int, default=3)
    args = parser.parse_args()
    binary = os.environ["AIRLOCK_BIN"]

    with airlock.Client() as client:
        sb = airlock.Sandbox(network=False, config={"resources": {"memory_mb": 1024}}, client=client)
        try:
            sb.exec(["true"])  # warm: page cache, first connection
            sdk_runs = [timed(lambda: sb.exec(["true"])) for _ in range(args.exec_runs)]
            sdk = statistics.median(t for t, _ in sdk_runs)
            sdk_guest = statistics.median(r.duration_ms / 1000 for _, r in sdk_runs)
            cli = median_of(args.cli_runs, lambda: subprocess.run([binary, "exec", sb.id, "--", "true"], check=True))
            cli_events = [e for e in sb.events(follow=False) if e["type"] == "exec"][-args.cli_runs:]
            cli_guest = statistics.median(e["exec"]["duration_ms"] / 1000 for e in cli_events)

            data = os.urandom(args.mb * 1024 * 1024)
            digest = hashlib.sha256(data).hexdigest()

            def write_file():
                sb.write_file("/workspace/blob", data)

            def read_file():
                got = sb.read_file("/workspace/blob")
                assert hashlib.sha256(got).hexdigest() == digest, "read_file returned other bytes"

            def exec_in():
                r = sb.exec(["sh", "-c", "cat > /workspace/piped && sha256sum /workspace/piped"], stdin=data)
                assert r.stdout.split()[0] == digest, "exec stdin delivered other bytes"

            def exec_out():
                r = sb.exec(["cat", "/workspace/piped"])
                assert hashlib.sha256(r.stdout_bytes).hexdigest() == digest, "exec stdout returned other bytes"

            results = {name: median_of(args.transfer_runs, fn)
                       for name, fn in [("write_file", write_file), ("exec_stdin", exec_in),
                                        ("read_file", read_file), ("exec_stdout", exec_out)]}
        finally:
            sb.close()

    mb = args.mb
    print(f"exec true round trip   SDK {sdk * 1000:7.1f} ms   CLI {cli * 1000:7.1f} ms   "
          f"SDK/CLI {sdk / cli:5.2f}x  (aim <= 0.5)")
    print(f"  of which in the guest SDK {sdk_guest * 1000:5.1f} ms   CLI {cli_guest * 1000:5.1f} ms;  host overhead "
          f"SDK {(sdk - sdk_guest) * 1000:5.1f} ms   CLI {(cli - cli_guest) * 1000:5.1f} ms   "
          f"SDK/CLI {(sdk - sdk_guest) / max(cli - cli_guest, 1e-6):5.2f}x")
    print(f"{mb} MB in              write_file {results['write_file']:6.2f} s ({mb / results['write_file']:6.1f} MB/s)   "
          f"exec stdin {results['exec_stdin']:6.2f} s   exec/file {results['exec_stdin'] / results['write_file']:5.2f}x  (aim >= 1.0)")
    print(f"{mb} MB out             read_file  {results['read_file']:6.2f} s ({mb / results['read_file']:6.1f} MB/s)   "
          f"exec stdout {results['exec_stdout']:5.2f} s   exec/file {results['exec_stdout'] / results['read_file']:5.2f}x  (aim >= 1.0)")
    print(json.dumps({"sdk_exec_ms": round(sdk * 1000, 1), "cli_exec_ms": round(cli * 1000, 1),
                      "sdk_over_cli": round(sdk / cli, 3), "guest_exec_ms_sdk": round(sdk_guest * 1000, 1),
                      "guest_exec_ms_cli": round(cli_guest * 1000, 1), "mb": mb,
                      **{f"{k}_s": round(v, 3) for k, v in results.items()},
                      "write_ratio": round(results["exec_stdin"] / results["write_file"], 3),
                      "read_ratio": round(results["exec_stdout"] / results["read_file"], 3)}))


if __name__ == "__main__":
    main()
