"""The JSON-RPC transports: `airlock rpc` on stdio and `airlock serve` on a Unix socket.

Protocol conformance (parse errors, invalid requests, batches, notifications, unknown
methods and parameters) needs no VM; one VM checks that many socket clients share it and
that a client's sandboxes with auto_remove go with its connection.
"""
import json
import os
import socket
import stat
import subprocess
import tempfile
import time
import unittest

from airlock_e2e import AIRLOCK

os.environ.setdefault("AIRLOCK_ACCEL", "tcg")


class Stdio:
    """A spawned `airlock rpc`, one line per message."""

    def __init__(self):
        self.proc = subprocess.Popen([AIRLOCK, "rpc"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)

    def send(self, text):
        self.proc.stdin.write(text.encode() + b"\n")
        self.proc.stdin.flush()

    def receive(self):
        line = self.proc.stdout.readline()
        if not line:
            raise EOFError("airlock rpc closed its stdout")
        return json.loads(line)

    def call(self, request):
        self.send(json.dumps(request))
        return self.receive()

    def close(self):
        if self.proc.stdin.closed:
            return self.proc.returncode
        self.proc.stdin.close()
        code = self.proc.wait(timeout=120)
        self.proc.stdout.close()
        self.proc.stderr.close()
        return code


class SocketClient:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)
        self.file = self.sock.makefile("rwb")

    def call(self, method, params=None, id=1):
        self.file.write(json.dumps({"jsonrpc": "2.0", "id": id, "method": method, "params": params or {}}).encode() + b"\n")
        self.file.flush()
        while True:
            m = json.loads(self.file.readline())
            if m.get("id") == id:
                return m

    def close(self):
        self.file.close()
        self.sock.close()


class StdioProtocol(unittest.TestCase):
    def setUp(self):
        self.rpc = Stdio()
        self.addCleanup(lambda: self.rpc.close())

    def test_parse_errors_and_invalid_requests(self):
        self.rpc.send("{not json")
        r = self.rpc.receive()
        self.assertEqual((r["id"], r["error"]["code"], r["error"]["data"]["kind"]), (None, -32700, "invalid_config"))
        for bad, code in [('{"jsonrpc":"1.0","id":1,"method":"sandbox.list"}', -32600),
                          ('{"jsonrpc":"2.0","id":2,"method":7}', -32600),
                          ('{"jsonrpc":"2.0","id":3,"method":"sandbox.list","params":"x"}', -32600),
                          ('"just a string"', -32600),
                          ('[]', -32600)]:
            self.rpc.send(bad)
            r = self.rpc.receive()
            self.assertEqual(r["error"]["code"], code, bad)
        r = self.rpc.call({"jsonrpc": "2.0", "id": "x", "method": "no.such.method"})
        self.assertEqual((r["id"], r["error"]["code"], r["error"]["data"]["code"]), ("x", -32601, "method_not_found"))
        r = self.rpc.call({"jsonrpc": "2.0", "id": 4, "method": "sandbox.get", "params": {"id": "vm-00000000", "extra": 1}})
        self.assertEqual((r["error"]["code"], r["error"]["data"]["kind"]), (-32602, "invalid_config"))
        self.assertIn("extra", r["error"]["message"])
        r = self.rpc.call({"jsonrpc": "2.0", "id": 5, "method": "sandbox.get", "params": {"id": "vm-00000000"}})
        self.assertEqual((r["error"]["code"], r["error"]["data"]["kind"]), (-32001, "vm_not_found"))
        r = self.rpc.call({"jsonrpc": "2.0", "id": 6, "method": "exec.run", "params": {"id": "x", "argv": []}})
        self.assertEqual(r["error"]["code"], -32602)
        r = self.rpc.call({"jsonrpc": "2.0", "id": 7, "method": "file.write",
                           "params": {"id": "x", "path": "/a", "data": "not base64!"}})
        self.assertIn("base64", r["error"]["message"])

    def test_notifications_get_no_reply_and_batches_one_array(self):
        self.rpc.send(json.dumps({"jsonrpc": "2.0", "method": "sandbox.list"}))  # no id: no reply
        self.rpc.send(json.dumps([
            {"jsonrpc": "2.0", "id": 1, "method": "sandbox.list"},
            {"jsonrpc": "2.0", "method": "sandbox.list"},
            {"jsonrpc": "2.0", "id": 2, "method": "nope"},
            5,
        ]))
        batch = self.rpc.receive()  # the notification before it produced nothing
        self.assertIsInstance(batch, list)
        by_id = {m["id"]: m for m in batch}
        self.assertEqual(len(batch), 3)
        self.assertIsInstance(by_id[1]["result"], list)
        self.assertEqual(by_id[2]["error"]["code"], -32601)
        self.assertEqual(by_id[None]["error"]["code"], -32600)

    def test_eof_ends_the_server(self):
        self.assertEqual(self.rpc.close(), 0)
        self.rpc = Stdio()  # for the cleanup


class Serve(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="airlock-serve-")
        self.path = os.path.join(self.tmp, "api.sock")

    def start(self, *flags):
        proc = subprocess.Popen([AIRLOCK, "serve", "--socket", self.path, *flags], stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while not os.path.exists(self.path) and time.monotonic() < deadline:
            self.assertIsNone(proc.poll(), proc.stderr.read() if proc.poll() is not None else "")
            time.sleep(0.05)

        def stop():
            proc.terminate()
            proc.wait(timeout=120)
            proc.stderr.close()
        self.addCleanup(stop)
        return proc

    def test_socket_mode_and_refusals(self):
        self.start()
        self.assertEqual(stat.S_IMODE(os.lstat(self.path).st_mode), 0o600)
        again = subprocess.run([AIRLOCK, "serve", "--socket", self.path], capture_output=True, timeout=30)
        self.assertEqual(again.returncode, 125)
        self.assertIn(b"already listening", again.stderr)
        other = os.path.join(self.tmp, "file")
        open(other, "w").close()
        r = subprocess.run([AIRLOCK, "serve", "--socket", other], capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 125)
        self.assertIn(b"not a socket", r.stderr)
        r = subprocess.run([AIRLOCK, "serve", "--socket", self.path + "2", "--socket-mode", "999"],
                           capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 2)

    def test_group_mode_when_asked(self):
        self.start("--socket-mode", "0660")
        self.assertEqual(stat.S_IMODE(os.lstat(self.path).st_mode), 0o660)

    def test_many_clients_share_sandboxes_and_auto_remove_follows_each(self):
        self.start()
        a, b = SocketClient(self.path), SocketClient(self.path)
        try:
            created = a.call("sandbox.create", {"network": False, "auto_remove": True})
            self.assertIn("result", created, created)
            vm = created["result"]["id"]
            # Another client sees and uses it.
            r = b.call("exec.run", {"id": vm, "command": "echo from b"})
            self.assertEqual(r["result"]["exit_code"], 0)
            ids = {s["id"] for s in b.call("sandbox.list")["result"]}
            self.assertIn(vm, ids)
            a.close()  # a's connection ends: its auto_remove sandbox goes
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and vm in {s["id"] for s in b.call("sandbox.list", id=2)["result"]}:
                time.sleep(0.2)
            self.assertNotIn(vm, {s["id"] for s in b.call("sandbox.list", id=3)["result"]})
        finally:
            b.close()


if __name__ == "__main__":
    unittest.main()
