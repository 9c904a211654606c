"""The Python SDK against real VMs (TCG), in a network namespace with only loopback.

Covers what the SDK promises: exec (exit codes, signals, stdin, env, cwd, user, tty,
timeout), streamed output, files and folders both ways, events live and gap-free,
errors mapped to their kinds, the policy enforced (a blocked host raises nothing in the
SDK but shows as a blocked event), many sandboxes from one process, lifecycle, and the
asyncio surface. VMs are shared between the checks of a class: booting is the slow part.
Runs under unittest (CTest) and pytest alike.
"""
import asyncio
import base64
import hashlib
import os
import queue
import stat
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "sdk", "python"))
os.environ.setdefault("AIRLOCK_ACCEL", "tcg")
os.environ.setdefault("AIRLOCK_BIN", os.path.join(HERE, "..", "..", "build", "airlock"))

import airlock  # noqa: E402
import airlock.aio  # noqa: E402

# Nothing is reachable under this policy; blocked requests must show up as events.
CLOSED = {"network": {"allowed_hosts": []}, "env": {"POLICY_VAR": "from-policy"}}


def until(predicate, what, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Exec(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.client = airlock.Client()
        cls.sb = airlock.Sandbox(config=CLOSED, client=cls.client)

    @classmethod
    def tearDownClass(cls):
        cls.sb.close()
        cls.client.close()

    def test_exit_codes_and_signals(self):
        r = self.sb.exec(["sh", "-c", "echo out; echo err >&2; exit 7"])
        self.assertEqual((r.exit_code, r.stdout, r.stderr), (7, "out\n", "err\n"))
        self.assertFalse(r.ok)
        r = self.sb.exec("kill -9 $$")
        self.assertEqual(r.exit_code, 137)
        self.assertEqual(r.signal, 9)
        self.assertEqual(r.signal_name, "SIGKILL")
        with self.assertRaises(airlock.NotFound) as caught:
            self.sb.exec(["no-such-command"])
        self.assertIsInstance(caught.exception, FileNotFoundError)
        self.assertEqual(caught.exception.kind, "invalid_config")

    def test_stdin_env_cwd_user(self):
        data = os.urandom(300_000)
        r = self.sb.exec(["sha256sum"], stdin=data)
        self.assertEqual(r.stdout.split()[0], hashlib.sha256(data).hexdigest())
        r = self.sb.exec('printf "%s|%s|" "$POLICY_VAR" "$MINE"; pwd; id -u', env={"MINE": "set"}, cwd="/tmp")
        self.assertEqual(r.stdout.splitlines(), ["from-policy|set|/tmp", "1000"])
        self.assertEqual(self.sb.exec(["id", "-u"], user="root").stdout, "0\n")
        self.assertEqual(self.sb.exec(["id", "-u"], user=0).stdout, "0\n")
        self.assertEqual(self.sb.exec(["id", "-un"]).stdout, "airlock\n")
        binary = self.sb.exec(["head", "-c", "4", "/dev/zero"])
        self.assertEqual(binary.stdout_bytes, b"\0\0\0\0")

    def test_tty(self):
        r = self.sb.exec(["sh", "-c", "test -t 1 && echo tty; stty size"], tty=True)
        self.assertEqual(r.exit_code, 0)
        self.assertEqual(r.stdout.replace("\r", "").splitlines(), ["tty", "24 80"])
        self.assertEqual(self.sb.exec(["sh", "-c", "test -t 1 || echo pipe"]).stdout, "pipe\n")

    def test_timeout(self):
        with self.assertRaises(airlock.Timeout) as caught:
            self.sb.exec("echo started; sleep 60; echo finished", timeout=1)
        self.assertEqual(caught.exception.kind, "timeout")
        self.assertIn("started", caught.exception.result.stdout)
        self.assertNotIn("finished", caught.exception.result.stdout)
        self.assertTrue(caught.exception.result.timed_out)

    def test_streamed_output_arrives_before_the_end(self):
        # The command can't finish before the test writes "go", so "first" arriving first
        # proves the output is streamed, without any timing.
        stream = self.sb.exec_stream("echo first; read line; echo \"second $line\" >&2", stdin=True)
        chunks = iter(stream)
        first = next(chunks)
        self.assertEqual(first, airlock.Stdout(b"first\n"))
        stream.write(b"go\n")
        stream.close_stdin()
        rest = list(chunks)
        self.assertIn(airlock.Stderr(b"second go\n"), rest)
        self.assertIsInstance(rest[-1], airlock.Exit)
        self.assertEqual(rest[-1].exit_code, 0)

    def test_a_streamed_command_can_be_signalled(self):
        stream = self.sb.exec_stream("echo ready; exec sleep 60")
        chunks = iter(stream)
        self.assertEqual(next(chunks), airlock.Stdout(b"ready\n"))
        stream.signal("SIGTERM")
        end = list(chunks)[-1]
        self.assertEqual((end.exit_code, end.signal), (143, 15))


class Files(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.client = airlock.Client()
        cls.sb = airlock.Sandbox(network=False, client=cls.client)

    @classmethod
    def tearDownClass(cls):
        cls.sb.close()
        cls.client.close()

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="airlock-sdk-")
        self.addCleanup(self.tmp.cleanup)

    def test_write_read_list_stat(self):
        data = os.urandom(1 << 20)
        self.sb.write_file("/workspace/f/blob.bin", data, mode=0o640)
        self.assertEqual(self.sb.read_file("/workspace/f/blob.bin"), data)
        self.sb.write_file("/workspace/f/text.txt", "héllo")
        self.assertEqual(self.sb.read_file("/workspace/f/text.txt"), "héllo".encode())
        self.sb.mkdir("/workspace/f/sub")
        listing = {f.name: f for f in self.sb.list_files("/workspace/f")}
        self.assertEqual(set(listing), {"blob.bin", "text.txt", "sub"})
        self.assertEqual(listing["blob.bin"].size, 1 << 20)
        self.assertEqual(listing["blob.bin"].mode, 0o640)
        self.assertTrue(listing["sub"].is_dir)
        self.assertGreater(listing["blob.bin"].mod_time, 1_600_000_000)
        self.assertEqual(self.sb.stat("/workspace/f/blob.bin").size, 1 << 20)
        # Written as the host, the files belong to the sandbox user in the workspace.
        self.assertEqual(self.sb.exec(["stat", "-c", "%U", "/workspace/f/blob.bin"]).stdout, "airlock\n")
        self.sb.remove_file("/workspace/f", recursive=True)
        with self.assertRaises(FileNotFoundError):
            self.sb.read_file("/workspace/f/blob.bin")

    def test_refusals_are_errors_of_their_kind(self):
        with self.assertRaises(airlock.NotFound):
            self.sb.list_files("/workspace/absent")
        with self.assertRaises(airlock.InvalidConfig) as caught:
            self.sb.write_file("/tmp", b"x")  # a folder is in the way
        self.assertEqual(caught.exception.code, "invalid")
        with self.assertRaises(airlock.InvalidConfig) as caught:
            self.sb.read_file("relative/path")
        self.assertEqual(caught.exception.code, "invalid_params")

    def test_a_large_folder_lists_completely(self):
        # More entries than one guest reply holds: file.list pages through them.
        self.sb.exec("mkdir -p /workspace/many && cd /workspace/many && seq -f 'entry-%05g-padding-padding' 3000 | xargs touch")
        names = [f.name for f in self.sb.list_files("/workspace/many")]
        self.assertEqual(len(names), 3000)
        self.assertEqual(names, sorted(names))

    def test_folders_both_ways_keep_modes_and_symlinks(self):
        src = os.path.join(self.tmp.name, "src")
        os.makedirs(os.path.join(src, "bin"))
        with open(os.path.join(src, "bin", "run.sh"), "w") as f:
            f.write("#!/bin/sh\necho ran\n")
        os.chmod(os.path.join(src, "bin", "run.sh"), 0o750)
        with open(os.path.join(src, "data.txt"), "w") as f:
            f.write("data\n")
        os.symlink("../data.txt", os.path.join(src, "bin", "data"))
        os.symlink("/etc", os.path.join(src, "etc-link"))
        counts = self.sb.upload(src, "/workspace/up")
        self.assertEqual((counts["files"], counts["dirs"], counts["symlinks"]), (2, 1, 2))
        r = self.sb.exec("stat -c '%a %U' bin/run.sh; ./bin/run.sh; cat bin/data; readlink etc-link", cwd="/workspace/up")
        self.assertEqual(r.stdout.splitlines(), ["750 airlock", "ran", "data", "/etc"])

        self.sb.exec("mkdir -p out/deep && echo made > out/deep/file && chmod 700 out/deep && ln -s deep/file out/link",
                     cwd="/workspace")
        dst = os.path.join(self.tmp.name, "out")
        self.sb.download("/workspace/out", dst)
        with open(os.path.join(dst, "deep", "file")) as f:
            self.assertEqual(f.read(), "made\n")
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(dst, "deep")).st_mode), 0o700)
        self.assertEqual(os.readlink(os.path.join(dst, "link")), "deep/file")
        self.assertEqual(os.stat(os.path.join(dst, "deep", "file")).st_uid, os.getuid())

    def test_no_link_is_followed_out_of_the_tree(self):
        # The sandboxed user plants links where the host will copy to: none is followed.
        self.sb.exec("mkdir -p /workspace/trap && ln -sfn /etc /workspace/trap/sub && ln -sfn /etc /workspace/trap-root")
        src = os.path.join(self.tmp.name, "tree")
        os.makedirs(os.path.join(src, "sub"))
        with open(os.path.join(src, "sub", "airlock-planted"), "w") as f:
            f.write("x")
        with self.assertRaises(airlock.InvalidConfig):
            self.sb.upload(src, "/workspace/trap")  # sub/ is a link in the destination
        with self.assertRaises(airlock.InvalidConfig):
            self.sb.upload(src, "/workspace/trap-root")  # the destination itself is a link
        with self.assertRaises(airlock.InvalidConfig):
            self.sb.upload(src, "/workspace/trap-root/x")  # a link on the way to it
        r = self.sb.exec(["ls", "/etc/airlock-planted", "/etc/x"])
        self.assertNotEqual(r.exit_code, 0)
        self.assertIn("No such file", r.stderr)


class EventsErrorsPolicy(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.client = airlock.Client()
        cls.sb = airlock.Sandbox(config=CLOSED, client=cls.client)

    @classmethod
    def tearDownClass(cls):
        cls.sb.close()
        cls.client.close()

    def test_events_are_live_and_gap_free(self):
        got = queue.Queue()

        def follow():
            for event in self.sb.events():
                got.put(event)
                if event["type"] == "exec" and event["exec"]["command"] == "echo live-marker":
                    return
        t = threading.Thread(target=follow, daemon=True)
        t.start()
        # The history arrives first (created, booted); the marker is run after that, so
        # its event can only come through the live stream.
        first = got.get(timeout=60)
        self.assertEqual(first["seq"], 1)
        self.assertEqual(first["lifecycle"]["event"], "created")
        self.sb.exec("echo live-marker")
        t.join(timeout=60)
        self.assertFalse(t.is_alive())
        events = [first]
        while not got.empty():
            events.append(got.get())
        seqs = [e["seq"] for e in events]
        self.assertEqual(seqs, list(range(1, len(seqs) + 1)))
        self.assertEqual(events[-1]["exec"]["command"], "echo live-marker")
        # From a seq on: exactly the tail.
        tail = list(self.sb.events(from_seq=seqs[-1], follow=False))
        self.assertEqual(tail[0]["seq"], seqs[-1])

    def test_a_blocked_host_raises_nothing_and_is_an_event(self):
        r = self.sb.exec("curl -sS --max-time 10 http://pypi.org/ ; curl -sS --max-time 10 http://93.184.216.34/")
        self.assertNotEqual(r.exit_code, 0)  # refused, but the SDK raised nothing
        events = list(self.sb.events(follow=False))
        dns = [e for e in events if e["type"] == "dns" and e["dns"].get("name") == "pypi.org"]
        self.assertTrue(dns, events)
        self.assertTrue(all(e["dns"]["blocked"] for e in dns))
        self.assertEqual(dns[0]["dns"]["block_reason"], "host_not_allowed")
        flows = [e for e in events if e["type"] == "network" and e["network"].get("host") == "93.184.216.34"]
        self.assertTrue(flows, events)
        self.assertTrue(flows[0]["network"]["blocked"])
        self.assertEqual(flows[0]["network"]["block_reason"], "host_not_allowed")

    def test_errors_map_to_their_kinds(self):
        with self.assertRaises(airlock.VMNotFound):
            airlock.Sandbox(id="vm-00000000", client=self.client).exec(["true"])
        with self.assertRaises(airlock.InvalidConfig) as caught:
            airlock.Sandbox(config={"resources": {"memory_mb": 1}}, client=self.client)
        self.assertIn("resources.memory_mb", str(caught.exception))
        with self.assertRaises(airlock.InvalidConfig) as caught:
            airlock.Sandbox(config={"network": {"allowed_hosts": ["bad host!"]}}, client=self.client)
        self.assertIn("network.allowed_hosts[0]", str(caught.exception))
        with self.assertRaises(airlock.InvalidConfig) as caught:
            self.client.call("exec.run", {"id": self.sb.id, "argv": ["true"], "timeout": 3})
        self.assertIn('did you mean "timeout_seconds"', str(caught.exception))
        with self.assertRaises(airlock.InternalError) as caught:
            self.client.call("policy.update", {"id": self.sb.id})
        self.assertEqual(caught.exception.code, "not_supported")
        policy = self.sb.policy()
        self.assertEqual(policy["env"], {"POLICY_VAR": "[REDACTED]"})
        self.assertEqual(policy["network"]["allowed_hosts"], [])

    def test_a_bad_request_to_the_supervisor_leaves_the_vm_up(self):
        # The crash this used to be: a non-boolean follow thrown in the supervisor's loop.
        import json
        import socket
        import struct
        home = os.environ.get("AIRLOCK_HOME", os.path.expanduser("~/.local/share/airlock"))
        s = socket.socket(socket.AF_UNIX)
        s.connect(os.path.join(home, "vms", self.sb.id, "api.sock"))
        for i, request in enumerate([{"op": "events", "follow": "yes"}, {"op": "events", "from_seq": -1},
                                     {"op": "exec", "argv": "not-a-list"}, {"op": 5}], start=1):
            payload = json.dumps(request).encode()
            s.sendall(struct.pack(">IBI", 5 + len(payload), 1, i) + payload)
            header = s.recv(9, socket.MSG_WAITALL)
            length, _, channel = struct.unpack(">IBI", header)
            reply = json.loads(s.recv(length - 5, socket.MSG_WAITALL))
            self.assertEqual((channel, reply["op"]), (i, "error"), reply)
        s.close()
        self.assertEqual(self.sb.exec(["echo", "still up"]).stdout, "still up\n")
        self.assertEqual(self.sb.info()["status"], "running")


class ManySandboxes(unittest.TestCase):
    def test_many_sandboxes_from_one_process(self):
        with airlock.Client() as client:
            boxes, errors = [], []

            def make(i):
                try:
                    boxes.append(airlock.Sandbox(network=False, hostname=f"box{i}", client=client))
                except Exception as e:  # reported below
                    errors.append(e)
            threads = [threading.Thread(target=make, args=(i,)) for i in range(3)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            try:
                self.assertEqual(errors, [])
                self.assertEqual(len({b.id for b in boxes}), 3)
                names = sorted(b.exec(["hostname"]).stdout.strip() for b in boxes)
                self.assertEqual(names, ["box0", "box1", "box2"])
                listed = {s["id"] for s in airlock.sandboxes(client)}
                self.assertTrue({b.id for b in boxes} <= listed)
            finally:
                for b in boxes:
                    b.close()
            self.assertFalse({b.id for b in boxes} & {s["id"] for s in airlock.sandboxes(client)})


class Lifecycle(unittest.TestCase):
    def test_stop_start_and_secrets_given_again(self):
        with airlock.Client() as client:
            sb = airlock.Sandbox(secrets={"TOKEN": ("s3cret-value", ["api.example.com"])}, client=client)
            try:
                placeholder = sb.exec('printf %s "$TOKEN"').stdout
                self.assertTrue(placeholder)
                self.assertNotEqual(placeholder, "s3cret-value")
                sb.write_file("/workspace/kept.txt", "kept across a stop")
                sb.stop()
                with self.assertRaises(airlock.VMNotRunning):
                    sb.exec(["true"])
                with self.assertRaises(airlock.InvalidConfig) as caught:
                    sb.start()
                self.assertIn("TOKEN", str(caught.exception))
                sb.start(secrets={"TOKEN": "s3cret-value"})
                self.assertEqual(sb.read_file("/workspace/kept.txt"), b"kept across a stop")
                self.assertTrue(sb.exec('printf %s "$TOKEN"').stdout)
                home = os.environ.get("AIRLOCK_HOME", os.path.expanduser("~/.local/share/airlock"))
                for name in os.listdir(os.path.join(home, "vms", sb.id)):
                    path = os.path.join(home, "vms", sb.id, name)
                    if os.path.isfile(path) and name.endswith((".json", ".jsonl", ".log")):
                        with open(path, "rb") as f:
                            self.assertNotIn(b"s3cret-value", f.read(), name)
            finally:
                sb.close()

    def test_auto_remove_when_the_client_goes(self):
        client = airlock.Client()
        sb = airlock.Sandbox(network=False, client=client)
        client.close()  # the spawned airlock rpc removes what it created before it exits
        with airlock.Client() as other:
            self.assertNotIn(sb.id, {s["id"] for s in airlock.sandboxes(other)})


class Example(unittest.TestCase):
    def test_the_agent_tool_example_runs_and_reports_the_refused_host(self):
        import subprocess
        script = os.path.join(HERE, "..", "..", "sdk", "python", "examples", "agent_tool.py")
        r = subprocess.run([sys.executable, script], capture_output=True, text=True, timeout=600)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("[2, 3, 5, 7, 11", r.stdout)
        self.assertIn("blocked dns: collector.evil.example (host_not_allowed)", r.stdout)
        self.assertIn("== crash: exit 1", r.stdout)


class Asyncio(unittest.TestCase):
    def test_the_same_surface_on_asyncio(self):
        async def main():
            async with airlock.aio.Client() as client:
                async with airlock.aio.Sandbox(network=False, client=client) as sb:
                    r = await sb.exec(["python3", "-c", "print(6*7)"])
                    self.assertEqual((r.exit_code, r.stdout), (0, "42\n"))
                    stream = await sb.exec_stream("echo a; echo b >&2; exit 3")
                    chunks = [c async for c in stream]
                    self.assertIn(airlock.Stdout(b"a\n"), chunks)
                    self.assertIn(airlock.Stderr(b"b\n"), chunks)
                    self.assertEqual(chunks[-1].exit_code, 3)
                    await sb.write_file("/workspace/x", b"async")
                    self.assertEqual(await sb.read_file("/workspace/x"), b"async")
                    self.assertIn("x", [f.name for f in await sb.list_files("/workspace")])
                    seqs = [e["seq"] async for e in sb.events(follow=False)]
                    self.assertEqual(seqs, list(range(1, len(seqs) + 1)))
                    with self.assertRaises(airlock.Timeout):
                        await sb.exec("sleep 30", timeout=1)
                    results = await asyncio.gather(*(sb.exec(["echo", str(i)]) for i in range(4)))
                    self.assertEqual([r.stdout for r in results], [f"{i}\n" for i in range(4)])
        asyncio.run(main())


if __name__ == "__main__":
    unittest.main()
