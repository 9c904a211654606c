"""Faults survived, from real VMs (TCG), in a loopback-only network namespace and a mount
namespace of their own (run through CTest): QEMU or the supervisor killed while an exec,
a file transfer and a flow run; two CLIs racing on one VM; an image store missing a
file; a state directory that can't be written. Each must end in a clear error and its
event, with nothing left running and the VM usable again where it still exists.
docs/vm-lifecycle.md ("When something fails") says what each does."""
import http.server
import json
import os
import signal
import socketserver
import subprocess
import threading
import time
import unittest

from airlock_e2e import AIRLOCK, VmTestCase, airlock

HOME = os.environ.get("AIRLOCK_HOME", os.path.expanduser("~/.local/share/airlock"))


def pids_of(name):
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if name.encode() in f.read().split(b"\0")[0]:
                        out.append(int(entry))
            except OSError:
                pass
    return out


def qemu_of(vm):
    found = []
    for pid in pids_of("qemu-system"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if vm.encode() in f.read():
                    found.append(pid)
        except OSError:
            pass
    return found


def supervisor_of(vm, home=HOME):
    with open(os.path.join(home, "vms", vm, "state.json")) as f:
        return json.load(f)["pid"]


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def wait_until(predicate, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class SlowOrigin:
    """An HTTP origin on loopback whose /slow answer trickles for a minute: a flow that is
    open when the fault strikes."""

    def __init__(self):
        self.requests = 0
        origin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                origin.requests += 1
                self.send_response(200)
                self.send_header("Content-Length", "100000")
                self.end_headers()
                try:
                    for _ in range(600):
                        self.wfile.write(b"x" * 10)
                        self.wfile.flush()
                        time.sleep(0.1)
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def downloading(dest):
    """A download has written its first bytes (to its part file, renamed when whole)."""
    try:
        return os.path.getsize(dest + ".airlock-part") > 0
    except OSError:
        return False


def start(*args):
    return subprocess.Popen([AIRLOCK, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(proc, seconds=90):
    out, err = proc.communicate(timeout=seconds)
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


@unittest.skipUnless(os.environ.get("AIRLOCK_NETNS") == "1",
                     "needs a loopback-only network namespace (run through CTest)")
class KilledWhileBusy(VmTestCase):
    def busy_vm(self):
        """A VM with an exec, a download and a flow in progress."""
        origin = SlowOrigin()
        self.addCleanup(origin.close)
        policy = os.path.join(self.tmp.name, "policy.yaml")
        with open(policy, "w") as f:
            f.write("network:\n  allowed_hosts: [origin.test]\n  resolve: {origin.test: 127.0.0.1}\n"
                    "  allow_private: [origin.test]\n")
        vm = self.create_vm("--policy", policy)
        # A file large enough that its download is still running when the fault comes.
        self.assertOk(airlock("exec", vm, "--", "truncate", "-s", "8G", "/tmp/big"))
        running = start("exec", vm, "--", "sh", "-c", "echo started; sleep 300")
        self.addCleanup(running.kill)
        self.assertEqual(running.stdout.readline(), b"started\n")
        flow = start("exec", vm, "--", "curl", "-sS", "-o", "/dev/null", f"http://origin.test:{origin.port}/slow")
        self.addCleanup(flow.kill)
        dest = os.path.join(self.tmp.name, "big")
        copy = start("cp", f"{vm}:/tmp/big", dest)
        self.addCleanup(copy.kill)
        wait_until(lambda: origin.requests == 1, 120, "the guest's request at the origin")
        wait_until(lambda: downloading(dest) and copy.poll() is None, 120, "the download to start")
        return vm, running, flow, copy, dest

    def assert_recorded(self, vm, what):
        events = self.events(vm)
        seqs = [e["seq"] for e in events]
        self.assertEqual(seqs, list(range(1, len(seqs) + 1)), "a gap or a torn line in the audit")
        stopped = [e["lifecycle"] for e in events if e["type"] == "lifecycle" and e["lifecycle"]["event"] == "stopped"]
        self.assertEqual(len(stopped), 1, events[-5:])
        execs = [e["exec"] for e in events if e["type"] == "exec"]
        unfinished = [x for x in execs if x.get("error")]
        self.assertGreaterEqual(len(unfinished), 2, f"{what}: the running execs were not recorded: {execs}")
        flows = [e["network"] for e in events if e["type"] == "network" and e["network"]["kind"] == "flow"
                 and e["network"].get("host") == "origin.test"]
        self.assertEqual(len(flows), 1, f"{what}: the open flow has no record: {events[-10:]}")
        self.assertTrue(flows[0]["close_reason"])
        return stopped[0]

    def assert_clients_failed(self, procs, dest):
        for proc in procs:
            code, out, err = finish(proc)
            self.assertNotEqual(code, 0, (out[-300:], err[-300:]))
            self.assertRegex(err, r"(?i)stopped|not running|closed|exited", err[-500:])
        # A download cut short leaves no partial file under the destination's name.
        self.assertFalse(os.path.exists(dest), "a partial download was left as the destination")
        self.assertEqual([n for n in os.listdir(self.tmp.name) if n.startswith("big")], [])

    def test_qemu_killed(self):
        vm, running, flow, copy, dest = self.busy_vm()
        qemu = qemu_of(vm)
        supervisor = supervisor_of(vm)
        self.assertEqual(len(qemu), 1)
        os.kill(qemu[0], signal.SIGKILL)
        self.assert_clients_failed([running, flow, copy], dest)
        wait_until(lambda: not alive(supervisor), 60, "the supervisor to exit")
        stopped = self.assert_recorded(vm, "QEMU killed")
        self.assertIn("network_counters", stopped)
        row = [x for x in json.loads(airlock("ls", "--json").out) if x["id"] == vm][0]
        self.assertEqual(row["status"], "stopped")
        # Nothing orphaned, and the VM boots again from its disk.
        self.assertOk(airlock("start", vm, timeout=300))
        self.assertOk(airlock("exec", vm, "--", "true"))

    def test_supervisor_killed(self):
        vm, running, flow, copy, dest = self.busy_vm()
        qemu = qemu_of(vm)
        supervisor = supervisor_of(vm)
        os.kill(supervisor, signal.SIGKILL)
        self.assert_clients_failed([running, flow, copy], dest)
        wait_until(lambda: not any(alive(p) for p in qemu), 30, "QEMU to die with its supervisor")
        # The supervisor could write nothing more: its audit ends on a whole line.
        with open(os.path.join(HOME, "vms", vm, "events.jsonl"), "rb") as f:
            data = f.read()
        self.assertTrue(data.endswith(b"\n"))
        for line in data.splitlines():
            json.loads(line)
        row = [x for x in json.loads(airlock("ls", "--json").out) if x["id"] == vm][0]
        self.assertEqual(row["status"], "stopped")
        self.assertOk(airlock("start", vm, timeout=300))
        self.assertOk(airlock("exec", vm, "--", "true"))
        # The run that ended unrecorded is said to have ended, before the next one starts.
        events = self.events(vm)
        lost = [i for i, e in enumerate(events) if e["type"] == "lifecycle"
                and e["lifecycle"].get("error") == "supervisor_lost"]
        self.assertEqual(len(lost), 1, events)
        self.assertEqual(events[lost[0]]["lifecycle"]["event"], "stopped")
        self.assertEqual(events[lost[0] + 1]["lifecycle"]["event"], "started")


class TwoClisRacing(VmTestCase):
    def test_stop_while_an_exec_runs(self):
        vm = self.create_vm("--no-network")
        running = start("exec", vm, "--", "sh", "-c", "echo started; sleep 300")
        self.addCleanup(running.kill)
        self.assertEqual(running.stdout.readline(), b"started\n")
        stops = [start("stop", vm) for _ in range(2)]  # two at once: both succeed
        for s in stops:
            code, out, err = finish(s, 300)
            self.assertEqual(code, 0, err)
        code, out, err = finish(running)
        self.assertNotEqual(code, 0)
        self.assertRegex(err, r"(?i)stopped", err)
        events = self.events(vm)
        self.assertEqual(len([e for e in events if e["type"] == "lifecycle" and e["lifecycle"]["event"] == "stopped"]), 1)
        self.assertTrue([e for e in events if e["type"] == "exec" and e["exec"].get("error")], events[-5:])
        self.assertFalse(qemu_of(vm))

    def test_rm_while_a_copy_runs(self):
        vm = self.create_vm("--no-network")
        self.assertOk(airlock("exec", vm, "--", "truncate", "-s", "8G", "/tmp/big"))
        dest = os.path.join(self.tmp.name, "big")
        copy = start("cp", f"{vm}:/tmp/big", dest)
        self.addCleanup(copy.kill)
        wait_until(lambda: downloading(dest) and copy.poll() is None, 120, "the download to start")
        self.assertOk(airlock("rm", vm, timeout=300))
        self._vms.remove(vm)
        code, out, err = finish(copy)
        self.assertNotEqual(code, 0)
        self.assertRegex(err, r"(?i)stopped|closed|removed", err)
        self.assertEqual([n for n in os.listdir(self.tmp.name) if n.startswith("big")], [])
        self.assertFalse(os.path.exists(os.path.join(HOME, "vms", vm)))
        self.assertFalse(qemu_of(vm))
        r = airlock("exec", vm, "--", "true")
        self.assertNotEqual(r.code, 0)
        self.assertIn(vm, r.err_text)


class BrokenStores(VmTestCase):
    def home_with_image(self, skip=None):
        """An airlock home of our own whose default image is the real one, hard-linked,
        with `skip` missing."""
        home = os.path.join(self.tmp.name, f"home-{skip or 'whole'}")
        src = os.path.join(HOME, "images", "default")
        dst = os.path.join(home, "images", "default")
        os.makedirs(dst)
        for name in os.listdir(src):
            if name != skip:
                os.link(os.path.join(src, name), os.path.join(dst, name))
        return home

    def test_image_store_missing_a_file(self):
        for missing in ("vmlinuz", "rootfs.img", "initramfs.cpio.gz"):
            with self.subTest(missing=missing):
                home = self.home_with_image(skip=missing)
                env = {"AIRLOCK_HOME": home}
                r = airlock("create", "--no-network", env=env)
                self.assertNotEqual(r.code, 0, r)
                self.assertIn(missing, r.err_text)
                self.assertNotIn("terminate", r.err_text)
                r = airlock("ls", "--json", env=env)
                self.assertOk(r)
                self.assertEqual([x for x in json.loads(r.out) if x["status"] == "running"], [])
                self.assertFalse([p for p in pids_of("qemu-system") if home.encode() in open(f"/proc/{p}/cmdline", "rb").read()])

    @unittest.skipUnless(os.geteuid() == 0 and os.environ.get("AIRLOCK_MOUNTNS") == "1",
                         "needs root in a mount namespace of its own (run through CTest as root)")
    def test_state_directory_unwritable(self):
        home = self.home_with_image()
        vms = os.path.join(home, "vms")
        os.makedirs(vms)
        subprocess.run(["mount", "--bind", vms, vms], check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", vms])
        subprocess.run(["mount", "-o", "remount,bind,ro", vms], check=True)
        env = {"AIRLOCK_HOME": home}
        r = airlock("create", "--no-network", env=env)
        self.assertNotEqual(r.code, 0, r)
        self.assertIn(vms, r.err_text)
        self.assertRegex(r.err_text, r"(?i)read-only")
        self.assertFalse([p for p in pids_of("qemu-system") if home.encode() in open(f"/proc/{p}/cmdline", "rb").read()])
        # A VM made while it was writable, stopped, then its directory turns read-only
        # (a mount can't turn read-only while files on it are open for writing): start
        # refuses with the path, nothing boots, and reading its state still works.
        subprocess.run(["mount", "-o", "remount,bind,rw", vms], check=True)
        r = airlock("create", "--no-network", env=env)
        self.assertOk(r)
        vm = r.text.strip().splitlines()[-1]
        self.addCleanup(airlock, "rm", vm, env=env)
        self.assertOk(airlock("stop", vm, env=env, timeout=300))
        subprocess.run(["mount", "-o", "remount,bind,ro", vms], check=True)
        r = airlock("start", vm, env=env, timeout=300)
        self.assertNotEqual(r.code, 0, r)
        self.assertIn(os.path.join(vms, vm), r.err_text)
        self.assertRegex(r.err_text, r"(?i)read-only")
        self.assertFalse(qemu_of(vm))
        r = airlock("ls", "--json", env=env)
        self.assertOk(r)
        self.assertEqual([x["status"] for x in json.loads(r.out) if x["id"] == vm], ["stopped"])
        self.assertOk(airlock("events", vm, env=env))
        subprocess.run(["mount", "-o", "remount,bind,rw", vms], check=True)
        self.assertOk(airlock("start", vm, env=env, timeout=300))
        r = airlock("exec", vm, "--", "echo", "again", env=env)
        self.assertEqual(r.text, "again\n", r)
        self.assertOk(airlock("rm", vm, env=env, timeout=300))
        self.assertFalse(os.path.exists(os.path.join(vms, vm)))


if __name__ == "__main__":
    unittest.main()
