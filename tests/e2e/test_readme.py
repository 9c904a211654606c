"""README.md's command blocks marked `<!-- runnable -->`, run as written, so the README can't
rot. Each block runs as one bash script from a folder that looks like the repository's
root (build/ and config/ linked in), inside a loopback-only network namespace. A command
fails the test when airlock says it could not do its job or could not parse what it was
given (exit 2 or 125) or the shell could not run it (126, 127); other exit codes are the
command's own answer (`policy eval` exits 1 for a refusal, a sandboxed command with its
own code). Any VM a block leaves behind is removed.
"""
import json
import os
import re
import subprocess
import tempfile
import unittest

from airlock_e2e import AIRLOCK, airlock

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
FAILED = (2, 125, 126, 127)


def runnable_blocks(text):
    """(line number, [commands]) for each ```sh block right after a runnable marker."""
    blocks = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == "<!-- runnable -->" and i + 1 < len(lines) and lines[i + 1].startswith("```sh"):
            start = i + 2
            j = start
            commands, pieces = [], []
            while j < len(lines) and not lines[j].startswith("```"):
                line = lines[j].strip()
                if line.endswith("\\"):
                    pieces.append(line[:-1].strip())
                else:
                    pieces.append(line)
                    command = " ".join(p for p in pieces if p)
                    if command:
                        commands.append(command)
                    pieces = []
                j += 1
            blocks.append((start + 1, commands))
            i = j
        i += 1
    return blocks


def script_for(commands):
    """One bash script; after each command its exit code is checked."""
    out = []
    for n, command in enumerate(commands):
        out.append(command)
        out.append(f'rc=$?; if [ "$rc" = 2 ] || [ "$rc" -ge 125 ]; then '
                   f'echo "README command {n} exited $rc" >&2; exit 100; fi')
    return "\n".join(out) + "\n"


def vm_ids():
    r = airlock("ls", "--json")
    return {x["id"] for x in json.loads(r.out)} if r.code == 0 else set()


@unittest.skipUnless(os.environ.get("AIRLOCK_NETNS") == "1",
                     "needs a loopback-only network namespace (run through CTest)")
class ReadmeRunsAsWritten(unittest.TestCase):
    def test_the_parser_finds_the_blocks(self):
        text = "x\n<!-- runnable -->\n```sh\na \\\n  b  # c\n\nd\n```\n```sh\nnot me\n```\n"
        self.assertEqual(runnable_blocks(text), [(4, ["a b  # c", "d"])])

    def test_runnable_blocks(self):
        with open(os.path.join(ROOT, "README.md")) as f:
            blocks = runnable_blocks(f.read())
        self.assertGreaterEqual(len(blocks), 2, "README.md has lost its runnable blocks")
        before = vm_ids()
        try:
            for line, commands in blocks:
                with self.subTest(f"README.md:{line}"), tempfile.TemporaryDirectory(prefix="airlock-readme-") as d:
                    os.symlink(os.path.dirname(os.path.abspath(AIRLOCK)), os.path.join(d, "build"))
                    os.symlink(os.path.join(ROOT, "config"), os.path.join(d, "config"))
                    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI")}
                    r = subprocess.run(["bash", "-c", script_for(commands)], cwd=d, env=env,
                                       capture_output=True, timeout=1200)
                    self.assertEqual(r.returncode, 0,
                                     f"README.md:{line}: {r.stderr.decode(errors='replace')[-3000:]}")
        finally:
            for vm in vm_ids() - before:
                airlock("rm", vm, timeout=120)


if __name__ == "__main__":
    unittest.main()
