"""HTTP/2 origins for the MITM's end-to-end tests, on 127.0.0.1 only: a plain h2 server
(the h2 library, ALPN h2 only) and a gRPC server (grpcio with generic handlers, no
generated code). Both use the test origin CA's server certificate."""
import socket
import ssl
import threading
from concurrent import futures

import grpc
import h2.config
import h2.connection
import h2.events


class H2Origin:
    """Answers every request with `h2 <method> <path>`; /stream sends five DATA frames;
    /echo-auth returns the Authorization header (the real secret, after the proxy's swap)."""

    def __init__(self, cert, key):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.context.set_alpn_protocols(["h2"])
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.seen = []
        self.lock = threading.Lock()
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.connection, args=(conn,), daemon=True).start()

    def connection(self, raw):
        try:
            tls = self.context.wrap_socket(raw, server_side=True)
            if tls.selected_alpn_protocol() != "h2":
                tls.close()
                return
            c = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False))
            c.initiate_connection()
            tls.sendall(c.data_to_send())
            requests = {}
            while True:
                data = tls.recv(65536)
                if not data:
                    return
                for event in c.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        requests[event.stream_id] = dict((k.decode(), v.decode()) for k, v in event.headers)
                    elif isinstance(event, h2.events.DataReceived):
                        c.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    elif isinstance(event, h2.events.StreamEnded):
                        self.answer(c, event.stream_id, requests.pop(event.stream_id, {}))
                tls.sendall(c.data_to_send())
        except (ssl.SSLError, ConnectionError, OSError):
            pass

    def answer(self, c, stream, headers):
        with self.lock:
            self.seen.append(headers)
        path = headers.get(":path", "")
        if path.startswith("/stream"):
            c.send_headers(stream, [(":status", "200"), ("content-type", "text/plain")])
            for i in range(5):
                c.send_data(stream, f"part {i}\n".encode())
            c.end_stream(stream)
            return
        if path.startswith("/echo-auth"):
            body = headers.get("authorization", "").encode()
        else:
            body = f"h2 {headers.get(':method')} {path}\n".encode()
        c.send_headers(stream, [(":status", "200"), ("content-length", str(len(body)))])
        c.send_data(stream, body, end_stream=True)

    def close(self):
        self.sock.close()


class GrpcOrigin:
    """test.Echo/Unary echoes its request and the caller's authorization metadata (in the
    reply and in trailing metadata); test.Echo/Stream answers with three messages."""

    def __init__(self, cert, key):
        with open(cert, "rb") as f:
            chain = f.read()
        with open(key, "rb") as f:
            private = f.read()
        self.seen = []

        def unary(request, context):
            auth = dict(context.invocation_metadata()).get("authorization", "")
            self.seen.append(auth)
            context.set_trailing_metadata((("x-auth-echo", auth),))
            return b"echo:" + request + b" auth:" + auth.encode()

        def stream(request, context):
            for i in range(3):
                yield b"msg %d for " % i + request

        handler = grpc.method_handlers_generic_handler("test.Echo", {
            "Unary": grpc.unary_unary_rpc_method_handler(unary),
            "Stream": grpc.unary_stream_rpc_method_handler(stream),
        })
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self.server.add_generic_rpc_handlers((handler,))
        creds = grpc.ssl_server_credentials([(private, chain)])
        self.port = self.server.add_secure_port("127.0.0.1:0", creds)
        self.server.start()

    def close(self):
        self.server.stop(0)


# A gRPC client for the guest (python3-grpcio, generic calls: no generated code).
GRPC_CLIENT = r'''
import os, sys, grpc
target, token = sys.argv[1], os.environ["API_KEY"]
channel = grpc.secure_channel(target, grpc.ssl_channel_credentials())
unary = channel.unary_unary("/test.Echo/Unary")
reply, call = unary.with_call(b"hi", metadata=(("authorization", "Bearer " + token),), timeout=120)
print(reply.decode())
print("trailer:", dict(call.trailing_metadata()).get("x-auth-echo", ""))
for msg in channel.unary_stream("/test.Echo/Stream")(b"you", timeout=120):
    print(msg.decode())
'''
