"""An HTTPS origin that reflects the secret it receives, in every shape a client might
decode without being asked, for the MITM's scrubbing tests. Listens on 127.0.0.1 only.

GET /reflect/<shape> takes the value from `Authorization: Bearer <value>` (the proxy put
the real value there) and sends it back as <shape> says: in a header, a redirect, the
reason phrase, a cookie, a 103 Early Hints link, bodies plain, chunked with the value cut
across chunks, content-coded (gzip, deflate, raw deflate, br, zstd, stacked, multi-member
gzip), percent-encoded, JSON-escaped, base64, and as a WebSocket text frame. Frames are
written by hand so the framing is exactly what the shape names.
"""
import base64
import gzip
import hashlib
import json
import socketserver
import ssl
import threading
import urllib.parse
import zlib

import brotli
import zstandard

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# shape -> (what the guest must never see, given the value)
SHAPES = [
    "header", "location", "reason", "cookie", "early-hints", "plain", "chunked-split",
    "gzip", "gzip-chunked-split", "gzip-multimember", "deflate", "deflate-raw", "br", "zstd",
    "gzip-br", "percent", "json-escaped", "base64", "websocket", "websocket-fragmented",
]


def raw_deflate(data):
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def chunks(parts):
    out = b""
    for p in parts:
        out += b"%x\r\n" % len(p) + p + b"\r\n"
    return out + b"0\r\n\r\n"


def response(status, reason, headers, body=b""):
    head = f"HTTP/1.1 {status} {reason}\r\n".encode("latin-1")
    for k, v in headers:
        head += f"{k}: {v}\r\n".encode("latin-1")
    return head + b"\r\n" + body


def reflect(shape, value):
    v = value.encode()
    text = b"before " + v + b" after"
    half = len(v) // 2
    if shape == "header":
        return response(200, "OK", [("X-Echo", value), ("Content-Length", "2")], b"ok")
    if shape == "location":
        return response(302, "Found", [("Location", f"https://api.test/cb?token={value}"), ("Content-Length", "0")])
    if shape == "reason":
        return response(200, value, [("Content-Length", "2")], b"ok")
    if shape == "cookie":
        return response(200, "OK", [("Set-Cookie", f"s={value}; Path=/"), ("Content-Length", "2")], b"ok")
    if shape == "early-hints":
        return (response(103, "Early Hints", [("Link", f"</style.css?{value}>; rel=preload")]) +
                response(200, "OK", [("Content-Length", "2")], b"ok"))
    if shape == "plain":
        return response(200, "OK", [("Content-Length", str(len(text)))], text)
    if shape == "chunked-split":
        return response(200, "OK", [("Transfer-Encoding", "chunked")],
                        chunks([b"before " + v[:half], v[half:] + b" after"]))
    coded = {
        "gzip": ("gzip", lambda d: gzip.compress(d)),
        "deflate": ("deflate", zlib.compress),
        "deflate-raw": ("deflate", raw_deflate),
        "br": ("br", brotli.compress),
        "zstd": ("zstd", lambda d: zstandard.ZstdCompressor().compress(d)),
        "gzip-br": ("gzip, br", lambda d: brotli.compress(gzip.compress(d))),
        "gzip-multimember": ("gzip", lambda d: gzip.compress(d[:10]) + gzip.compress(d[10:])),
    }
    if shape in coded:
        coding, fn = coded[shape]
        body = fn(text)
        return response(200, "OK", [("Content-Encoding", coding), ("Content-Length", str(len(body)))], body)
    if shape == "gzip-chunked-split":
        body = gzip.compress(text * 50)
        return response(200, "OK", [("Content-Encoding", "gzip"), ("Transfer-Encoding", "chunked")],
                        chunks([body[i:i + 7] for i in range(0, len(body), 7)]))
    if shape == "percent":
        body = b"token=" + urllib.parse.quote(value, safe="").encode()
        return response(200, "OK", [("Content-Length", str(len(body)))], body)
    if shape == "json-escaped":
        body = json.dumps({"token": value}).replace("/", "\\/").encode()
        return response(200, "OK", [("Content-Length", str(len(body)))], body)
    if shape == "base64":
        body = b"token=" + base64.b64encode(v)
        return response(200, "OK", [("Transfer-Encoding", "chunked")], chunks([body]))
    raise ValueError(shape)


def forbidden_forms(value):
    """What must never reach the guest for a reflected value."""
    v = value.encode()
    return [v, urllib.parse.quote(value, safe="").encode(), base64.b64encode(v)[:-4],
            json.dumps(value).strip('"').replace("/", "\\/").encode()]


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        try:
            while self.one():
                pass
        except (ConnectionError, ssl.SSLError):
            pass

    def one(self):
        line = self.rfile.readline()
        if not line:
            return False
        headers = {}
        while True:
            h = self.rfile.readline()
            if h in (b"\r\n", b"\n", b""):
                break
            k, _, v = h.decode("latin-1").partition(":")
            headers[k.strip().lower()] = v.strip()
        # A request's body is read before the answer, as real origins do: what the proxy
        # lets through is then what reached the origin.
        if "content-length" in headers:
            self.rfile.read(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size_line = self.rfile.readline()
                if not size_line:
                    return False  # the proxy withdrew the request mid-body
                size = int(size_line.split(b";")[0], 16)
                self.rfile.read(size + 2)
                if size == 0:
                    break
        path = line.split()[1].decode()
        value = headers.get("authorization", "").removeprefix("Bearer ")
        shape = path.rsplit("/", 1)[-1]
        if shape.startswith("websocket"):
            key = headers["sec-websocket-key"].encode()
            accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest()).decode()
            self.wfile.write(response(101, "Switching Protocols",
                                      [("Upgrade", "websocket"), ("Connection", "Upgrade"),
                                       ("Sec-WebSocket-Accept", accept)]))
            msg = b"token=" + value.encode()
            if shape == "websocket":
                self.wfile.write(bytes([0x81, len(msg)]) + msg)
            else:
                cut = len(msg) // 2
                self.wfile.write(bytes([0x01, cut]) + msg[:cut] + bytes([0x80, len(msg) - cut]) + msg[cut:])
            self.wfile.write(b"\x88\x00")
            self.wfile.flush()
            return False
        self.wfile.write(reflect(shape, value))
        self.wfile.flush()
        return True


class ReflectOrigin(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, cert, key):
        super().__init__(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        context.set_alpn_protocols(["http/1.1"])
        self.socket = context.wrap_socket(self.socket, server_side=True)


def start_reflect(cert, key):
    server = ReflectOrigin(cert, key)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
