"""The guest network through airlock (real VM, TCG), run inside a network namespace that
has only loopback, so a bug can send no packet anywhere real.

A test HTTP server on the namespace's loopback is made reachable from the guest by a
`resolve` override plus an `allow_private` exception, as a user would for a local server.
"""
import hashlib
import http.server
import json
import os
import socketserver
import threading
import unittest

from airlock_e2e import VmTestCase, airlock

BLOB_MB = 200
CHUNK = hashlib.sha256(b"airlock").digest() * 2048  # 64 KiB, deterministic


def blob_sha256(mb):
    h = hashlib.sha256()
    for _ in range(mb * 16):
        h.update(CHUNK)
    return h.hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    hosts_seen = []

    def do_GET(self):
        Handler.hosts_seen.append(self.headers.get("Host", ""))
        if self.path.startswith("/blob"):
            self.send_response(200)
            self.send_header("Content-Length", str(BLOB_MB * 1024 * 1024))
            self.end_headers()
            for _ in range(BLOB_MB * 16):
                self.wfile.write(CHUNK)
            return
        body = b"hello from the host\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_PUT(self):
        length = int(self.headers["Content-Length"])
        h = hashlib.sha256()
        while length:
            data = self.rfile.read(min(length, 1 << 20))
            if not data:
                break
            h.update(data)
            length -= len(data)
        body = (h.hexdigest() + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 512


@unittest.skipUnless(os.environ.get("AIRLOCK_NETNS") == "1",
                     "needs a loopback-only network namespace (run through CTest)")
class GuestNetwork(VmTestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server(("127.0.0.1", 0), Handler)
        cls.port = cls.server.server_address[1]
        threading.Thread(target=cls.server.serve_forever, daemon=True).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()

    def policy(self):
        path = os.path.join(self.tmp.name, "policy.yaml")
        with open(path, "w") as f:
            f.write("network:\n"
                    "  allowed_hosts: [api.test, private.test]\n"
                    "  resolve: {api.test: 127.0.0.1, private.test: 127.0.0.1}\n"
                    "  allow_private: [api.test]\n")
        return path

    def exec(self, vm, script, *flags):
        return airlock("exec", vm, *flags, "--", "sh", "-c", script, timeout=900)

    def test_guest_network(self):
        vm = self.create_vm("--policy", self.policy(), "--memory", "1G")
        url = f"http://api.test:{self.port}"

        with self.subTest("curl reaches an allowed host"):
            r = self.exec(vm, f"curl -sS --max-time 60 {url}/")
            self.assertOk(r)
            self.assertEqual(r.text, "hello from the host\n")

        with self.subTest("a name outside the allowlist does not resolve"):
            r = self.exec(vm, f"curl -sS --max-time 30 http://blocked.test:{self.port}/")
            self.assertEqual(r.code, 6, r)  # couldn't resolve host

        with self.subTest("an allowed name resolving to a private address is refused"):
            # The upstream is dialled when the request arrives, so the refusal is an HTTP
            # answer naming the reason, and the private address is never connected to.
            r = self.exec(vm, f"curl -sS --max-time 30 -w '\\n%{{http_code}}' http://private.test:{self.port}/")
            self.assertEqual(r.code, 0, r)
            body, _, status = r.text.rpartition("\n")
            self.assertEqual(status, "403", r)
            self.assertEqual(json.loads(body)["reason"], "private_address", r)
            self.assertFalse([h for h in Handler.hosts_seen if h.startswith("private.test")], Handler.hosts_seen)

        with self.subTest("a literal private IP is refused at once"):
            for ip in ("10.0.0.1", "169.254.169.254", "127.0.0.1"):
                r = self.exec(vm, f"curl -sS --max-time 30 http://{ip}:{self.port}/")
                self.assertEqual(r.code, 7, (ip, r))

        with self.subTest("UDP to anything but the gateway's DNS goes nowhere"):
            script = ("import socket\n"
                      "for dst in [('192.168.127.1', 9999), ('8.8.8.8', 53), ('10.0.0.1', 123)]:\n"
                      "    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)\n"
                      "    s.sendto(b'x' * 40, dst)\n"
                      "    try:\n"
                      "        data = s.recv(100); print('REPLY', dst, data)\n"
                      "    except (socket.timeout, ConnectionRefusedError):\n"
                      "        print('nothing', dst)\n")
            r = airlock("exec", vm, "--", "python3", "-c", script)
            self.assertOk(r)
            self.assertNotIn("REPLY", r.text)
            self.assertEqual(r.text.count("nothing"), 3, r)

        with self.subTest("ping of the gateway answers"):
            script = ("import socket, struct\n"
                      "def csum(b):\n"
                      "    s = sum(struct.unpack('!%dH' % (len(b) // 2), b)); s = (s >> 16) + (s & 0xffff)\n"
                      "    return ~(s + (s >> 16)) & 0xffff\n"
                      "pkt = struct.pack('!BBHHH', 8, 0, 0, 7, 1) + b'airlock-ping'\n"
                      "pkt = pkt[:2] + struct.pack('!H', csum(pkt)) + pkt[4:]\n"
                      "s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP); s.settimeout(5)\n"
                      "s.sendto(pkt, ('192.168.127.1', 0))\n"
                      "data = s.recv(200); print('type', data[20], data[28:].decode())\n")
            r = airlock("exec", vm, "--privileged", "--", "python3", "-c", script)
            self.assertOk(r)
            self.assertEqual(r.text.strip(), "type 0 airlock-ping")

        with self.subTest("IPv6 has no route"):
            script = ("import socket, errno\n"
                      "try:\n"
                      "    socket.create_connection(('2001:db8::1', 80), timeout=5); print('connected')\n"
                      "except OSError as e:\n"
                      "    print(errno.errorcode.get(e.errno, e.errno))\n")
            r = airlock("exec", vm, "--", "python3", "-c", script)
            self.assertOk(r)
            self.assertIn(r.text.strip(), ("ENETUNREACH", "EADDRNOTAVAIL", "EAFNOSUPPORT"))

        with self.subTest("200 concurrent connections"):
            script = ("import concurrent.futures, urllib.request\n"
                      f"url = 'http://api.test:{self.port}/'\n"
                      "def get(i):\n"
                      "    return urllib.request.urlopen(url, timeout=120).read()\n"
                      "with concurrent.futures.ThreadPoolExecutor(200) as pool:\n"
                      "    bodies = list(pool.map(get, range(200)))\n"
                      "print(sum(b == b'hello from the host\\n' for b in bodies))\n")
            r = airlock("exec", vm, "--", "python3", "-c", script, timeout=900)
            self.assertOk(r)
            self.assertEqual(r.text.strip(), "200")

        with self.subTest(f"{BLOB_MB} MB download intact"):
            r = self.exec(vm, f"curl -sS --max-time 600 {url}/blob | sha256sum")
            self.assertOk(r)
            self.assertEqual(r.text.split()[0], blob_sha256(BLOB_MB))

        with self.subTest(f"{BLOB_MB} MB upload intact"):
            r = self.exec(vm, f"head -c {BLOB_MB}M /dev/urandom > /tmp/up && sha256sum /tmp/up && "
                              f"curl -sS --max-time 600 -T /tmp/up {url}/upload")
            self.assertOk(r)
            local, remote = r.text.split()[0], r.text.split()[-1]
            self.assertEqual(local, remote)

        with self.subTest("network and dns events are recorded"):
            events = self.events(vm)
            net = [e["network"] for e in events if e["type"] == "network"]
            dns = [e["dns"] for e in events if e["type"] == "dns"]
            self.assertTrue(any(n["host"] == "api.test" and not n["blocked"] and
                                n["response_bytes"] >= BLOB_MB * 1024 * 1024 for n in net), net[-3:])
            self.assertTrue(any(n["host"] == "private.test" and n["blocked"] and
                                n["block_reason"] == "private_address" for n in net))
            self.assertTrue(any(n["host"] == "10.0.0.1" and n["blocked"] for n in net))
            self.assertTrue(any(d["name"] == "blocked.test" and d["blocked"] for d in dns))


if __name__ == "__main__":
    unittest.main()
