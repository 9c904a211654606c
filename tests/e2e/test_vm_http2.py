"""HTTP/2 through the MITM from inside a real VM (TCG), in a loopback-only namespace:
curl --http2 to an HTTP/1.1 origin and to an h2 origin, a streamed h2 response, gRPC
unary and server-streaming calls with the secret swapped and scrubbed out of trailers,
and cleartext HTTP/2 (h2c upgrade, prior knowledge) refused with an event."""
import os
import unittest

from airlock_e2e import VmTestCase, airlock
from h2_servers import GRPC_CLIENT, GrpcOrigin, H2Origin
from mitm_server import make_ca, start_origin

REAL = "sk-h2-" + os.urandom(17).hex()


@unittest.skipUnless(os.environ.get("AIRLOCK_NETNS") == "1",
                     "needs a loopback-only network namespace (run through CTest)")
class Http2ThroughTheMitm(VmTestCase):
    def setUp(self):
        super().setUp()
        self.origin, self.ca = start_origin(self.tmp.name, ["api.test", "h2.test", "grpc.test"], 1)
        self.addCleanup(self.origin.shutdown)
        cert, key = (os.path.join(self.tmp.name, n) for n in ("srv.pem", "srv.key"))
        self.h2 = H2Origin(cert, key)
        self.addCleanup(self.h2.close)
        self.grpc = GrpcOrigin(cert, key)
        self.addCleanup(self.grpc.close)

    def policy(self):
        path = os.path.join(self.tmp.name, "policy.yaml")
        names = "[api.test, h2.test, grpc.test]"
        with open(path, "w") as f:
            f.write("network:\n"
                    f"  allowed_hosts: {names}\n"
                    "  resolve: {api.test: 127.0.0.1, h2.test: 127.0.0.1, grpc.test: 127.0.0.1}\n"
                    f"  allow_private: {names}\n"
                    f"  upstream_ca_file: {self.ca}\n"
                    "  secrets:\n"
                    "    API_KEY: {value_from_env: AIRLOCK_TEST_API_KEY, hosts: [h2.test, grpc.test]}\n")
        return path

    def sh(self, vm, script):
        return airlock("exec", vm, "--", "sh", "-c", script, timeout=600)

    def test_http2(self):
        r = airlock("create", "--policy", self.policy(), "--memory", "1G", env={"AIRLOCK_TEST_API_KEY": REAL})
        self.assertEqual(r.code, 0, r)
        vm = r.text.strip().splitlines()[-1]
        self._vms.append(vm)
        h1_port = self.origin.server_address[1]

        with self.subTest("curl --http2 to an HTTP/1.1-only origin"):
            r = self.sh(vm, f"curl -sS --http2 --max-time 60 -w '%{{http_version}}' https://api.test:{h1_port}/")
            self.assertEqual(r.code, 0, r)
            self.assertEqual(r.text, "hello over tls\n2")

        with self.subTest("curl --http2 to an h2 origin, the secret swapped there and scrubbed back"):
            r = self.sh(vm, f"curl -sS --http2 --max-time 60 -H \"Authorization: Bearer $API_KEY\" "
                            f"https://h2.test:{self.h2.port}/echo-auth")
            self.assertEqual(r.code, 0, r)
            self.assertNotIn(REAL, r.text)
            self.assertTrue(r.text.startswith("Bearer AIRLOCK_PLACEHOLDER_"), r)
            self.assertTrue(any(h.get("authorization") == "Bearer " + REAL for h in self.h2.seen))

        with self.subTest("a streamed h2 response arrives whole"):
            r = self.sh(vm, f"curl -sS --http2 --max-time 60 https://h2.test:{self.h2.port}/stream")
            self.assertEqual(r.text, "".join(f"part {i}\n" for i in range(5)), r)

        with self.subTest("gRPC unary and server streaming"):
            r = airlock("exec", vm, "--", "python3", "-c", GRPC_CLIENT, f"grpc.test:{self.grpc.port}", timeout=600)
            self.assertEqual(r.code, 0, r)
            lines = r.text.splitlines()
            self.assertTrue(lines[0].startswith("echo:hi auth:Bearer AIRLOCK_PLACEHOLDER_"), r)
            self.assertTrue(lines[1].startswith("trailer: Bearer AIRLOCK_PLACEHOLDER_"), r)
            self.assertEqual(lines[2:], [f"msg {i} for you" for i in range(3)])
            self.assertNotIn(REAL, r.text)
            self.assertIn("Bearer " + REAL, self.grpc.seen)

        with self.subTest("cleartext HTTP/2 is refused"):
            r = self.sh(vm, f"curl -sS --http2-prior-knowledge --max-time 30 http://api.test:{h1_port}/")
            self.assertNotEqual(r.code, 0, r)
            r = self.sh(vm, f"curl -sS --http2 --max-time 30 -w '%{{http_code}}' http://api.test:{h1_port}/")
            self.assertIn("403", r.text, r)

        events = self.events(vm)
        requests = [e["network"] for e in events if e["type"] == "network" and e["network"].get("kind") == "request"]
        self.assertTrue(any(q.get("http_version") == "HTTP/2" and q["status_code"] == 200 for q in requests), requests)
        flows = [e["network"] for e in events if e["type"] == "network" and e["network"].get("kind") == "flow"]
        self.assertTrue(any(f.get("alpn") == "h2" for f in flows), flows)
        self.assertTrue(any(f.get("block_reason") == "h2c_refused" for f in flows), flows)
        self.assertTrue(any(q.get("block_reason") == "h2c_refused" for q in requests), requests)


if __name__ == "__main__":
    unittest.main()
