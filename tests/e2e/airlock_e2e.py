"""Helpers for end-to-end tests that drive the real `airlock` binary and real VMs.

Each test module is a unittest module run by CTest (label e2e). The binary comes from
$AIRLOCK_BIN (set by CTest); VMs use TCG unless AIRLOCK_ACCEL says otherwise, and every
VM a test creates is removed in tearDown, even when the test fails.
"""
import json
import os
import re
import subprocess
import tempfile
import unittest

AIRLOCK = os.environ.get("AIRLOCK_BIN", "build/airlock")
os.environ.setdefault("AIRLOCK_ACCEL", "tcg")


class Result:
    def __init__(self, proc):
        self.code = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    @property
    def text(self):
        return self.out.decode(errors="replace")

    @property
    def err_text(self):
        return self.err.decode(errors="replace")

    def __repr__(self):
        return f"<exit {self.code} out={self.out[:300]!r} err={self.err[:600]!r}>"


def airlock(*args, input=None, timeout=300, env=None):
    """Runs airlock with args; returns a Result (never raises on a non-zero exit)."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    proc = subprocess.run([AIRLOCK, *args], input=input, capture_output=True,
                          timeout=timeout, env=full_env)
    return Result(proc)


def airlock_clean_env(*args, env, input=None, timeout=300):
    """Runs airlock with exactly env as its environment."""
    proc = subprocess.run([AIRLOCK, *args], input=input, capture_output=True,
                          timeout=timeout, env=env)
    return Result(proc)


def console_tail(err, lines=40):
    """The end of the console log a failed boot points at ("...; see PATH"), for the message."""
    match = re.search(r"see (\S+console\.log)", err)
    if not match:
        return ""
    try:
        with open(match.group(1), errors="replace") as f:
            return "\n--- console.log (end) ---\n" + "".join(f.readlines()[-lines:])
    except OSError as e:
        return f"\n(console log unreadable: {e})"


class VmTestCase(unittest.TestCase):
    """A test case that can create VMs and always removes them."""

    def setUp(self):
        self._vms = []
        self.tmp = tempfile.TemporaryDirectory(prefix="airlock-e2e-")
        self.addCleanup(self.tmp.cleanup)
        # Host folders mounted into a guest keep their host ownership and mode; the
        # guest's sandbox user must be able to enter this one.
        os.chmod(self.tmp.name, 0o755)

    def tearDown(self):
        for vm in self._vms:
            airlock("rm", vm, timeout=120)

    def create_vm(self, *flags, env=None):
        r = airlock("create", *flags, env=env)
        self.assertEqual(r.code, 0, f"{r}{console_tail(r.err_text)}")
        vm = r.text.strip().splitlines()[-1]
        self._vms.append(vm)
        return vm

    def assertOk(self, result, msg=None):
        if result.code != 0:
            self.fail(f"{msg or result}{console_tail(result.err_text)}")

    def events(self, vm):
        r = airlock("events", vm)
        self.assertOk(r)
        return [json.loads(line) for line in r.text.splitlines() if line.strip()]
