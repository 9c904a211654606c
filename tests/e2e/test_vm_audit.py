"""The audit trail under pressure, from inside a real VM (TCG), in a loopback-only network
namespace with its own mounts.

A guest floods the gateway's DNS while the supervisor's writer is made slow
(AIRLOCK_FAULT_AUDIT_STALL_MS): under `on_overflow: block` every answer has its record;
under `on_overflow: drop` the records that could not wait are counted in events_lost
records, and the books balance exactly against the DNS handler's own count of answers.
Then the filesystem under the VM's audit log fills up (a small tmpfs): the log writes its
last word from its reserve, the guest's network stops, then the VM, and no line is torn.
"""
import json
import os
import shutil
import subprocess
import time
import unittest

from airlock_e2e import VmTestCase, airlock

# Sends N DNS queries for distinct names at once, then counts the answers.
FLOOD = r'''
import os, socket, struct, sys, time
n = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
def query(i):
    name = f"q{i}.flood.test" if i % 2 else f"q{i}.elsewhere.test"
    q = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack(">HHHHHH", i, 0x0100, 1, 0, 0, 0) + q + struct.pack(">HH", 1, 1)
for i in range(n):
    s.sendto(query(i), ("192.168.127.1", 53))
seen = set()
deadline = time.time() + 120
while len(seen) < n and time.time() < deadline:
    try:
        data = s.recv(512)
    except socket.timeout:
        continue
    seen.add(struct.unpack(">H", data[:2])[0])
print(len(seen))
'''


def home():
    return os.environ.get("AIRLOCK_HOME", os.path.expanduser("~/.local/share/airlock"))


@unittest.skipUnless(os.environ.get("AIRLOCK_NETNS") == "1",
                     "needs a loopback-only network namespace with its own mounts (run through CTest)")
class AuditUnderPressure(VmTestCase):
    def policy(self, overflow, queue):
        path = os.path.join(self.tmp.name, f"policy-{overflow}.yaml")
        with open(path, "w") as f:
            f.write("network:\n"
                    "  allowed_hosts: ['*.flood.test']\n"
                    "audit:\n"
                    f"  on_overflow: {overflow}\n"
                    f"  queue_events: {queue}\n")
        return path

    def flood(self, overflow, n):
        vm = self.create_vm("--policy", self.policy(overflow, 1), env={"AIRLOCK_FAULT_AUDIT_STALL_MS": "100"})
        r = airlock("exec", vm, "--", "python3", "-c", FLOOD, str(n), timeout=600)
        self.assertOk(r)
        self.assertEqual(int(r.text.strip()), n, r)  # the guest got every answer either way
        self.assertOk(airlock("stop", vm, timeout=300))
        events = self.events(vm)
        self.assertEqual([e["seq"] for e in events], list(range(1, len(events) + 1)))
        dns = [e for e in events if e["type"] == "dns"]
        lost = [e["events_lost"] for e in events if e["type"] == "events_lost"]
        stopped = [e["lifecycle"] for e in events if e["type"] == "lifecycle" and e["lifecycle"]["event"] == "stopped"]
        self.assertEqual(len(stopped), 1, events[-3:])
        counters = stopped[0]["network_counters"]
        answered = counters["dns"]["responses"]
        self.assertGreaterEqual(answered, n)
        # The books balance: every answer has its record, or is counted in an events_lost.
        self.assertEqual(len(dns) + sum(l["count"] for l in lost if l["kind"] == "dns"), answered, (lost, counters))
        return dns, lost, counters["audit_queue"]

    def test_block_waits_and_loses_nothing(self):
        dns, lost, queue = self.flood("block", 40)
        self.assertEqual(lost, [])
        self.assertGreater(queue.get("waits", 0), 0, queue)  # the network did wait for the writer
        self.assertNotIn("dropped", queue)
        names = {e["dns"]["name"] for e in dns}
        self.assertEqual(len([x for x in names if x.endswith(".flood.test")]), 20)
        self.assertTrue(all(e["dns"]["blocked"] for e in dns if e["dns"]["name"].endswith(".elsewhere.test")))

    def test_drop_counts_what_it_dropped(self):
        dns, lost, queue = self.flood("drop", 40)
        queued = [l for l in lost if l["reason"] == "audit_queue_full"]
        self.assertTrue(queued, lost)
        self.assertEqual(sum(l["count"] for l in queued), queue["dropped"], queue)
        self.assertNotIn("waits", queue)

    def test_a_full_disk_stops_the_network_then_the_vm(self):
        # The VM's directory moves onto a 1 MiB tmpfs of this test's own mount namespace
        # (CTest runs it in one), all but its disk layer: QEMU pauses a guest whose disk
        # can't grow, and here the audit log is the one that must meet the full disk.
        vm = self.create_vm("--policy", self.policy("block", 4096))
        self.assertOk(airlock("stop", vm, timeout=300))
        d = os.path.join(home(), "vms", vm)
        disk = os.path.join(self.tmp.name, "disk.qcow2")
        saved = os.path.join(self.tmp.name, "vmdir")
        os.mkdir(saved)
        for name in os.listdir(d):  # its files; sockets are made anew at start
            if os.path.isfile(os.path.join(d, name)) and name != "disk.qcow2":
                shutil.copy2(os.path.join(d, name), saved)
        shutil.copy2(os.path.join(d, "disk.qcow2"), disk)
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", d]).returncode != 0:
            self.skipTest("mounting a tmpfs needs root")

        def unmount():
            subprocess.run(["umount", "-l", d])
            shutil.rmtree(d, ignore_errors=True)  # what was beneath the mount
        self.addCleanup(unmount)
        for name in os.listdir(saved):
            shutil.copy2(os.path.join(saved, name), d)
        os.symlink(disk, os.path.join(d, "disk.qcow2"))
        self.assertOk(airlock("start", vm, timeout=300))
        self.assertTrue(os.path.exists(os.path.join(d, "events.jsonl.reserve")))
        # Leave about 8 KiB: a few dozen records, then the disk is full.
        st = os.statvfs(d)
        with open(os.path.join(d, "filler"), "wb") as f:
            f.write(b"\0" * max(0, st.f_bavail * st.f_frsize - 8192))
        with open(os.path.join(d, "state.json")) as f:
            supervisor = json.load(f)["pid"]
        airlock("exec", vm, "--", "python3", "-c", FLOOD, "300", timeout=600)
        # The supervisor ends once the VM has stopped (its state.json may not fit any more).
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and os.path.exists(f"/proc/{supervisor}"):
            time.sleep(0.5)
        self.assertFalse(os.path.exists(f"/proc/{supervisor}"), "the VM kept running with a full audit disk")
        with open(os.path.join(d, "events.jsonl"), "rb") as f:
            text = f.read()
        self.assertTrue(text.endswith(b"\n"))
        events = [json.loads(line) for line in text.splitlines()]  # no torn line
        self.assertEqual([e["seq"] for e in events], list(range(1, len(events) + 1)))
        full = [e for e in events if e["type"] == "lifecycle" and e["lifecycle"]["event"] == "audit_disk_full"]
        self.assertEqual(len(full), 1, events[-3:])
        self.assertIn("No space", full[0]["lifecycle"]["error"])
        # After the last word, nothing of the network: it stopped first.
        at = events.index(full[0])
        self.assertFalse([e for e in events[at + 1:] if e["type"] in ("dns", "network")], events[at + 1:])
        with open(os.path.join(d, "supervisor.log")) as f:
            self.assertIn("disk is full", f.read())
        os.unlink(os.path.join(d, "filler"))


if __name__ == "__main__":
    unittest.main()
