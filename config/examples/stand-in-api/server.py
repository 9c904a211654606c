#!/usr/bin/env python3
"""A stand-in for an LLM API, for scripts/demo: HTTPS on 127.0.0.1 with its own throwaway
CA, answering POST /v1/chat/completions when the Authorization header carries the real
key (given in $OPENAI_API_KEY). The demo's policy points api.openai.com at it (`resolve`),
so the agent in the sandbox talks to "api.openai.com" without any network beyond this
machine. Prints "PORT CA_FILE" once listening.

    server.py DIRECTORY
"""
import http.server
import json
import os
import socketserver
import ssl
import subprocess
import sys


def make_certs(directory):
    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)
    ca_key, ca = os.path.join(directory, "ca.key"), os.path.join(directory, "ca.pem")
    key, csr, crt = (os.path.join(directory, n) for n in ("api.key", "api.csr", "api.pem"))
    ext = os.path.join(directory, "ext.cnf")
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", ca_key, "-out", ca, "-days", "1", "-subj", "/CN=stand-in API CA")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
        "-out", csr, "-subj", "/CN=api.openai.com")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:api.openai.com,DNS:api.anthropic.com\n")
    run("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", crt,
        "-days", "1", "-extfile", ext)
    return ca, crt, key


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body):
        data = (json.dumps(body) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        request = json.loads(self.rfile.read(length) or b"{}")
        if self.headers.get("Authorization") != "Bearer " + os.environ["OPENAI_API_KEY"]:
            return self.reply(401, {"error": "invalid api key"})
        question = request.get("messages", [{}])[-1].get("content", "")
        self.reply(200, {"choices": [{"message": {"role": "assistant",
                                                  "content": f"(stand-in model) you asked: {question}"}}]})


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def main():
    directory = sys.argv[1]
    ca, crt, key = make_certs(directory)
    server = Server(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(crt, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print(server.server_address[1], ca, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
