"""`airlock proxy`, the MITM as a standalone explicit proxy, driven with curl. Runs in a
loopback-only network namespace (the refused addresses must not be reachable anyway)."""
import http.server
import json
import os
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from airlock_e2e import AIRLOCK
from mitm_server import start_origin

REAL = "sk-proxy-" + os.urandom(8).hex()


class PlainHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        body = b"plain hello\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@unittest.skipUnless(os.environ.get("AIRLOCK_NETNS") == "1",
                     "needs a loopback-only network namespace (run through CTest)")
class ExplicitProxy(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="airlock-proxy-")
        d = cls.tmp.name
        cls.origin, ca = start_origin(d, ["api.test", "other.test"], 1)
        cls.port = cls.origin.server_address[1]
        cls.plain = http.server.ThreadingHTTPServer(("127.0.0.1", 0), PlainHandler)
        threading.Thread(target=cls.plain.serve_forever, daemon=True).start()
        policy = os.path.join(d, "policy.yaml")
        with open(policy, "w") as f:
            f.write("network:\n"
                    "  allowed_hosts: [api.test, other.test, plain.test]\n"
                    "  resolve: {api.test: 127.0.0.1, other.test: 127.0.0.1, plain.test: 127.0.0.1}\n"
                    "  allow_private: [api.test, other.test, plain.test]\n"
                    f"  upstream_ca_file: {ca}\n"
                    "  secrets:\n"
                    "    API_KEY: {value_from_env: PROXY_TEST_KEY, hosts: [api.test]}\n")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            cls.proxy_port = s.getsockname()[1]
        cls.ca = os.path.join(d, "airlock-ca.pem")
        cls.events = os.path.join(d, "events.jsonl")
        env = dict(os.environ, PROXY_TEST_KEY=REAL)
        cls.proc = subprocess.Popen(
            [AIRLOCK, "proxy", "--policy", policy, "--listen", f"127.0.0.1:{cls.proxy_port}",
             "--ca-cert-out", cls.ca, "--events", cls.events],
            stderr=subprocess.PIPE, env=env, text=True)
        cls.placeholder = None
        deadline = time.time() + 30
        while time.time() < deadline and cls.placeholder is None:
            line = cls.proc.stderr.readline()
            if "placeholder" in line:
                cls.placeholder = line.split()[-1]
        assert cls.placeholder, "airlock proxy did not start"

    @classmethod
    def tearDownClass(cls):
        cls.proc.terminate()
        cls.proc.wait(timeout=30)
        cls.origin.shutdown()
        cls.plain.shutdown()
        cls.tmp.cleanup()

    def curl(self, *args):
        return subprocess.run(["curl", "-sS", "--max-time", "30", "--proxy",
                               f"http://127.0.0.1:{self.proxy_port}", "--cacert", self.ca, *args],
                              capture_output=True, text=True)

    def read_events(self):
        with open(self.events) as f:
            return [json.loads(line) for line in f if line.strip()]

    def test_https_through_the_proxy(self):
        r = self.curl(f"https://api.test:{self.port}/")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "hello over tls\n")

    def test_secret_swapped_and_leak_refused(self):
        self.assertNotIn(REAL, self.placeholder)
        r = self.curl("-H", f"Authorization: Bearer {self.placeholder}", f"https://api.test:{self.port}/auth")
        self.assertEqual(r.returncode, 0, r.stderr)
        with self.origin.lock:
            seen = [s for s in self.origin.seen if s[1] == "/auth"]
        self.assertEqual(seen[-1][2]["authorization"], "Bearer " + REAL)
        r = self.curl("-H", f"Authorization: Bearer {self.placeholder}", "-w", "\n%{http_code}",
                      f"https://other.test:{self.port}/")
        body, code = r.stdout.rsplit("\n", 1)
        self.assertEqual(code, "403")
        self.assertEqual(json.loads(body)["reason"], "secret_leak")

    def test_refused_tunnels(self):
        for target, reason in ((f"https://blocked.test:{self.port}/", "host_not_allowed"),
                               ("https://169.254.169.254/", "private_address"),
                               ("https://10.0.0.1/", "private_address")):
            r = self.curl(target)
            self.assertNotEqual(r.returncode, 0, target)
            self.assertIn("403", r.stderr, target)
        reasons = {e["network"].get("block_reason") for e in self.read_events() if e["network"]["blocked"]}
        self.assertLessEqual({"host_not_allowed", "private_address"}, reasons)

    def test_absolute_form_plain_http(self):
        r = self.curl(f"http://plain.test:{self.plain.server_address[1]}/x")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "plain hello\n")

    def test_events_have_requests_and_flow_records(self):
        self.curl(f"https://api.test:{self.port}/events-check?token=abc")
        time.sleep(0.5)
        events = [e["network"] for e in self.read_events()]
        requests = [e for e in events if e.get("kind") == "request"]
        self.assertTrue(any(e["url"] == f"https://api.test:{self.port}/events-check?token=[REDACTED]"
                            and e["status_code"] == 200 for e in requests), requests)
        flows = [e for e in events if e.get("kind") == "flow" and not e["blocked"]]
        self.assertTrue(any(f["protocol"] == "tls" and f["response_bytes"] > 0 for f in flows), flows)
        with open(self.events) as f:
            self.assertNotIn(REAL, f.read())


if __name__ == "__main__":
    unittest.main()
