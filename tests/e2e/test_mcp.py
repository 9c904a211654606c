"""`airlock mcp` driven by a scripted MCP client: initialize, tools/list, tools/call of
every tool against a real VM (TCG), in a loopback-only network namespace."""
import json
import os
import subprocess
import unittest

from airlock_e2e import AIRLOCK

os.environ.setdefault("AIRLOCK_ACCEL", "tcg")

TOOLS = {"create_sandbox", "exec", "read_file", "write_file", "list_files", "get_events", "remove_sandbox"}


class Mcp(unittest.TestCase):
    def setUp(self):
        self.proc = subprocess.Popen([AIRLOCK, "mcp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.next_id = 0

        def stop():
            self.proc.stdin.close()
            self.proc.wait(timeout=120)
            self.proc.stdout.close()
        self.addCleanup(stop)

    def request(self, method, params=None):
        self.next_id += 1
        self.proc.stdin.write(json.dumps({"jsonrpc": "2.0", "id": self.next_id, "method": method,
                                          "params": params or {}}).encode() + b"\n")
        self.proc.stdin.flush()
        reply = json.loads(self.proc.stdout.readline())
        self.assertEqual(reply["id"], self.next_id)
        return reply

    def tool(self, name, **arguments):
        reply = self.request("tools/call", {"name": name, "arguments": arguments})
        self.assertIn("result", reply, reply)
        return reply["result"]

    def test_a_session(self):
        init = self.request("initialize", {"protocolVersion": "2025-03-26", "capabilities": {},
                                           "clientInfo": {"name": "test", "version": "1"}})["result"]
        self.assertEqual(init["protocolVersion"], "2025-03-26")
        self.assertIn("tools", init["capabilities"])
        self.assertEqual(init["serverInfo"]["name"], "airlock")
        self.proc.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
        self.assertEqual(self.request("ping")["result"], {})
        tools = self.request("tools/list")["result"]["tools"]
        self.assertEqual({t["name"] for t in tools}, TOOLS)
        for t in tools:
            self.assertEqual(t["inputSchema"]["type"], "object")

        created = self.tool("create_sandbox", config={"network": {"allowed_hosts": []}})
        self.assertFalse(created["isError"], created)
        vm = created["structuredContent"]["id"]
        try:
            r = self.tool("write_file", sandbox_id=vm, path="/workspace/main.py", content="print(6*7)\n")
            self.assertFalse(r["isError"], r)
            r = self.tool("exec", sandbox_id=vm, command="python3 /workspace/main.py; exit 3")
            self.assertEqual(r["structuredContent"]["exit_code"], 3)
            self.assertEqual(r["structuredContent"]["stdout"], "42\n")
            self.assertIn("exit code 3", r["content"][0]["text"])
            r = self.tool("exec", sandbox_id=vm, command=["cat"], stdin="piped")
            self.assertEqual(r["structuredContent"]["stdout"], "piped")
            r = self.tool("read_file", sandbox_id=vm, path="/workspace/main.py")
            self.assertEqual(r["content"][0]["text"], "print(6*7)\n")
            r = self.tool("list_files", sandbox_id=vm, path="/workspace")
            self.assertIn("main.py", [e["name"] for e in r["structuredContent"]["entries"]])
            self.tool("exec", sandbox_id=vm, command="curl -s --max-time 5 http://pypi.org/ || true")
            r = self.tool("get_events", sandbox_id=vm, type="dns")
            events = r["structuredContent"]["events"]
            self.assertTrue(any(e["dns"]["name"] == "pypi.org" and e["dns"]["blocked"] for e in events), events)
            r = self.tool("get_events", sandbox_id=vm)
            seqs = [e["seq"] for e in r["structuredContent"]["events"]]
            self.assertEqual(seqs, list(range(1, len(seqs) + 1)))
            # A failing tool is a result with isError, not a protocol error.
            r = self.tool("read_file", sandbox_id=vm, path="/workspace/absent")
            self.assertTrue(r["isError"])
            self.assertIn("No such file", r["content"][0]["text"])
            r = self.tool("exec", sandbox_id="vm-00000000", command="true")
            self.assertTrue(r["isError"])
            self.assertEqual(r["structuredContent"]["kind"], "vm_not_found")
        finally:
            r = self.tool("remove_sandbox", sandbox_id=vm)
            self.assertFalse(r["isError"], r)
        bad = self.request("tools/call", {"name": "format_disk", "arguments": {}})
        self.assertEqual(bad["error"]["code"], -32602)
        self.assertEqual(self.request("resources/list")["error"]["code"], -32601)


if __name__ == "__main__":
    unittest.main()
