"""Test servers for the MITM end-to-end tests: an HTTPS origin with a test CA, on the
network namespace's loopback. Never listens on anything but 127.0.0.1."""
import base64
import hashlib
import http.server
import os
import socketserver
import ssl
import struct
import subprocess
import threading

CHUNK = hashlib.sha256(b"airlock-mitm").digest() * 2048  # 64 KiB, deterministic
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def blob_sha256(mb):
    h = hashlib.sha256()
    for _ in range(mb * 16):
        h.update(CHUNK)
    return h.hexdigest()


def make_ca(directory, names):
    """A test CA and one server certificate for `names` (SANs), with the openssl CLI."""
    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)
    ca_key, ca_crt = os.path.join(directory, "ca.key"), os.path.join(directory, "ca.pem")
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", ca_key, "-out", ca_crt, "-days", "2", "-subj", "/CN=airlock test origin CA")
    key, csr, crt = (os.path.join(directory, n) for n in ("srv.key", "srv.csr", "srv.pem"))
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
        "-out", csr, "-subj", f"/CN={names[0]}")
    ext = os.path.join(directory, "ext.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=" + ",".join(f"DNS:{n}" for n in names) + "\n")
    run("x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial",
        "-out", crt, "-days", "2", "-extfile", ext)
    return ca_crt, crt, key


class Origin(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, cert, key, blob_mb, static_dir):
        super().__init__(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        context.set_alpn_protocols(["http/1.1"])
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.blob_mb = blob_mb
        self.static_dir = static_dir
        self.seen = []  # (method, path, headers dict) of every request that arrived
        self.lock = threading.Lock()

    def record(self, handler):
        with self.lock:
            self.seen.append((handler.command, handler.path,
                              {k.lower(): v for k, v in handler.headers.items()}))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, body, status=200, ctype="text/plain"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.server.record(self)
        if self.headers.get("Upgrade", "").lower() == "websocket":
            return self.websocket()
        if self.path.startswith("/blob"):
            self.send_response(200)
            self.send_header("Content-Length", str(self.server.blob_mb * 1024 * 1024))
            self.end_headers()
            for _ in range(self.server.blob_mb * 16):
                self.wfile.write(CHUNK)
            return
        if self.path.startswith("/echo-auth"):
            return self.reply(self.headers.get("Authorization", "").encode())
        if self.path.startswith("/repo.git/"):
            path = os.path.normpath(os.path.join(self.server.static_dir, self.path[1:].split("?")[0]))
            if not path.startswith(self.server.static_dir) or not os.path.isfile(path):
                return self.reply(b"not found\n", 404)
            with open(path, "rb") as f:
                return self.reply(f.read(), ctype="application/octet-stream")
        self.reply(b"hello over tls\n")

    def do_POST(self):
        self.server.record(self)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                data += self.rfile.read(size)
                self.rfile.readline()
        else:
            data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with self.server.lock:
            self.server.seen.append(("BODY", self.path, {"body": data.decode(errors="replace")}))
        self.reply(b"received %d bytes\n" % len(data))

    def do_PUT(self):
        self.server.record(self)
        length = int(self.headers["Content-Length"])
        h = hashlib.sha256()
        while length:
            data = self.rfile.read(min(length, 1 << 20))
            if not data:
                break
            h.update(data)
            length -= len(data)
        self.reply((h.hexdigest() + "\n").encode())

    def websocket(self):
        key = self.headers["Sec-WebSocket-Key"].encode()
        accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        # Echo text frames until a close frame.
        while True:
            head = self.rfile.read(2)
            if len(head) < 2:
                return
            opcode, length = head[0] & 0x0F, head[1] & 0x7F
            if length == 126:
                length = struct.unpack("!H", self.rfile.read(2))[0]
            mask = self.rfile.read(4) if head[1] & 0x80 else b"\0\0\0\0"
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(length)))
            if opcode == 8:
                self.wfile.write(b"\x88\x00")
                return
            out = b"echo: " + payload
            self.wfile.write(bytes([0x81, len(out)]) + out)
            self.wfile.flush()


def start_origin(directory, names, blob_mb):
    ca, cert, key = make_ca(directory, names)
    static = os.path.join(directory, "static")
    os.makedirs(static, exist_ok=True)
    server = Origin(cert, key, blob_mb, static)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, ca


# A WebSocket client for the guest (the image has python3 but no websocket module).
WS_CLIENT = r'''
import base64, os, socket, ssl, sys
host, port = sys.argv[1], int(sys.argv[2])
ctx = ssl.create_default_context()
s = ctx.wrap_socket(socket.create_connection((host, port), timeout=60), server_hostname=host)
key = base64.b64encode(os.urandom(16)).decode()
s.sendall((f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
buf = b""
while b"\r\n\r\n" not in buf:
    buf += s.recv(4096)
head, rest = buf.split(b"\r\n\r\n", 1)
print(head.split(b"\r\n")[0].decode())
msg = b"hello websocket"
mask = os.urandom(4)
s.sendall(bytes([0x81, 0x80 | len(msg)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(msg)))
while len(rest) < 2:
    rest += s.recv(4096)
n = rest[1] & 0x7F
while len(rest) < 2 + n:
    rest += s.recv(4096)
print(rest[2:2 + n].decode())
s.sendall(bytes([0x88, 0x80]) + mask)
'''
