"""Real VMs (TCG): boot, exec semantics, files, mounts, the in-guest sandbox, lifecycle.

Each test asserts outcomes through the airlock CLI only, as a user would see them.
"""
import hashlib
import json
import os
import signal
import subprocess
import threading
import time
import unittest

from airlock_e2e import AIRLOCK, Result, VmTestCase, airlock


def pids_of(name):
    out = subprocess.run(["pgrep", "-f", name], capture_output=True, text=True).stdout
    return {int(p) for p in out.split()}


class Run(VmTestCase):
    def test_boot_and_echo(self):
        r = airlock("run", "--", "echo", "hello from the guest")
        self.assertOk(r)
        self.assertEqual(r.out, b"hello from the guest\n")

    def test_exit_codes_and_signal_deaths(self):
        self.assertEqual(airlock("run", "--", "sh", "-c", "exit 7").code, 7)
        r = airlock("run", "--", "sh", "-c", "kill -9 $$")
        self.assertEqual(r.code, 137, r)
        self.assertIn("SIGKILL", r.err_text)

    def test_stdin_is_piped_through(self):
        data = os.urandom(300_000)
        r = airlock("run", "-i", "--", "sha256sum", input=data)
        self.assertOk(r)
        self.assertEqual(r.text.split()[0], hashlib.sha256(data).hexdigest())

    def test_env_and_cwd(self):
        r = airlock("run", "-e", "GREETING=hi there", "-w", "/tmp", "--",
                    "sh", "-c", 'echo "$GREETING"; pwd; id -u')
        self.assertOk(r)
        self.assertEqual(r.text.splitlines(), ["hi there", "/tmp", "1000"])

    def test_run_events_are_written_as_they_happen(self):
        path = os.path.join(self.tmp.name, "events.jsonl")
        # The command can't end before the test writes its stdin, so whatever the file
        # holds by then was written while the command ran.
        proc = subprocess.Popen([AIRLOCK, "run", "-i", "--no-network", "--events", path, "--",
                                 "sh", "-c", "echo started; head -c 1 >/dev/null"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        try:
            def live_events():
                if not os.path.exists(path):
                    return []
                with open(path) as f:
                    lines = f.read().split("\n")[:-1]  # complete lines only
                return [json.loads(l) for l in lines if l.strip()]

            def live_types():
                return [e["lifecycle"]["event"] for e in live_events() if e["type"] == "lifecycle"]
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and "booted" not in live_types():
                self.assertIsNone(proc.poll(), proc.stderr.read() if proc.poll() is not None else "")
                time.sleep(0.1)
            self.assertEqual(live_types(), ["created", "booted"])
            self.assertIsNone(proc.poll())
            out, err = proc.communicate(b"x", timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
                self._vms.extend({e["vm_id"] for e in live_events()})  # tearDown removes it
        self.assertEqual(proc.returncode, 0, err)
        self.assertEqual(out, b"started\n")
        with open(path) as f:
            events = [json.loads(l) for l in f if l.strip()]
        self.assertEqual([e["seq"] for e in events], list(range(1, len(events) + 1)))
        kinds = [e["lifecycle"]["event"] if e["type"] == "lifecycle" else e["type"]
                 for e in events]
        self.assertEqual(kinds, ["created", "booted", "exec", "stopped", "removed"])

    def test_run_keep_events_and_the_supervisor_holds_no_inherited_file(self):
        path = os.path.join(self.tmp.name, "events.jsonl")
        # A descriptor the caller hands down (not close-on-exec) must not outlive the CLI.
        inherited = os.path.join(self.tmp.name, "inherited")
        with open(inherited, "w") as held:
            proc = subprocess.run([AIRLOCK, "run", "--keep", "--no-network", "--events", path,
                                   "--", "true"], capture_output=True, timeout=300,
                                  pass_fds=(held.fileno(),))
        r = Result(proc)
        self.assertOk(r)
        vm = r.err_text.split("kept VM ")[1].split()[0]
        self._vms.append(vm)
        with open(path) as f:
            events = [json.loads(l) for l in f if l.strip()]
        kinds = [e["lifecycle"]["event"] if e["type"] == "lifecycle" else e["type"]
                 for e in events]
        self.assertEqual(kinds, ["created", "booted", "exec"])
        state_dir = os.path.join(os.environ.get("AIRLOCK_HOME",
                                                os.path.expanduser("~/.local/share/airlock")),
                                 "vms", vm)
        with open(os.path.join(state_dir, "state.json")) as f:
            supervisor = json.load(f)["pid"]
        fd_dir = f"/proc/{supervisor}/fd"
        targets = [os.readlink(os.path.join(fd_dir, fd)) for fd in os.listdir(fd_dir)]
        self.assertTrue(targets)
        self.assertNotIn(os.path.realpath(path), targets)
        self.assertNotIn(os.path.realpath(inherited), targets)

    def test_run_events_on_stderr_stay_whole_lines(self):
        r = airlock("run", "--no-network", "--events", "-", "--",
                    "sh", "-c", "echo out; echo err >&2")
        self.assertOk(r)
        self.assertEqual(r.out, b"out\n")
        lines = r.err_text.splitlines()
        self.assertIn("err", lines)
        events = [json.loads(l) for l in lines if l.startswith("{")]
        self.assertEqual([e["seq"] for e in events], list(range(1, len(events) + 1)))
        self.assertEqual(events[-1]["lifecycle"]["event"], "removed")

    def test_bad_input_gives_clear_errors(self):
        r = airlock("exec", "vm-doesnotexist", "--", "true")
        self.assertNotEqual(r.code, 0)
        self.assertIn("vm-doesnotexist", r.err_text)
        r = airlock("run", "--image", "no-such-image", "--", "true")
        self.assertNotEqual(r.code, 0)
        self.assertIn("no-such-image", r.err_text)
        r = airlock("run", "--no-such-flag", "--", "true")
        self.assertEqual(r.code, 2, r)
        r = airlock("run", "--memory", "lots", "--", "true")
        self.assertEqual(r.code, 2, r)
        self.assertIn("--memory", r.err_text)


class OneVm(VmTestCase):
    """Several checks against one VM (booting is the slow part under TCG)."""

    def test_exec_files_and_sandbox(self):
        vm = self.create_vm("-v", f"{self.tmp.name}:ro-share:ro")
        with self.subTest("10 MB of binary output arrives intact"):
            r = airlock("exec", vm, "--", "sh", "-c",
                        "head -c 10485760 /dev/urandom > /tmp/blob && sha256sum /tmp/blob >&2 && cat /tmp/blob")
            self.assertOk(r)
            self.assertEqual(len(r.out), 10 * 1024 * 1024)
            self.assertEqual(hashlib.sha256(r.out).hexdigest(), r.err_text.split()[0])

        with self.subTest("cp round trip both ways"):
            src = os.path.join(self.tmp.name, "in.bin")
            data = os.urandom(3 * 1024 * 1024 + 17)
            with open(src, "wb") as f:
                f.write(data)
            self.assertOk(airlock("cp", src, f"{vm}:/workspace/in.bin"))
            r = airlock("exec", vm, "--", "sha256sum", "/workspace/in.bin")
            self.assertEqual(r.text.split()[0], hashlib.sha256(data).hexdigest())
            self.assertOk(airlock("exec", vm, "--", "sh", "-c", "cp /workspace/in.bin /workspace/out.bin"))
            dst = os.path.join(self.tmp.name, "out.bin")
            self.assertOk(airlock("cp", f"{vm}:/workspace/out.bin", dst))
            with open(dst, "rb") as f:
                self.assertEqual(f.read(), data)
            r = airlock("cp", f"{vm}:/workspace/missing", dst)
            self.assertNotEqual(r.code, 0)

        with self.subTest("concurrent execs in one VM"):
            results = {}

            def one(i):
                results[i] = airlock("exec", vm, "--", "sh", "-c", f"sleep 1; echo job{i}")

            threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            for i in range(4):
                self.assertOk(results[i])
                self.assertEqual(results[i].text, f"job{i}\n")

        with self.subTest("a timeout kills the command"):
            r = airlock("exec", vm, "--timeout", "2", "--", "sh", "-c", "sleep 60; echo finished")
            self.assertNotEqual(r.code, 0)
            self.assertNotIn(b"finished", r.out)
            self.assertIn("timed out", r.err_text.lower())

        with self.subTest("a read-only mount can't be written"):
            with open(os.path.join(self.tmp.name, "host.txt"), "w") as f:
                f.write("from the host\n")
            r = airlock("exec", vm, "--", "cat", "/workspace/ro-share/host.txt")
            self.assertOk(r)
            self.assertEqual(r.text, "from the host\n")
            r = airlock("exec", vm, "--privileged", "-u", "root", "--", "sh", "-c",
                        "echo x > /workspace/ro-share/new.txt")
            self.assertNotEqual(r.code, 0)
            self.assertFalse(os.path.exists(os.path.join(self.tmp.name, "new.txt")))
            r = airlock("exec", vm, "--privileged", "-u", "root", "--", "sh", "-c",
                        "mount -o remount,rw /workspace/ro-share; echo y > /workspace/ro-share/new.txt")
            self.assertNotEqual(r.code, 0)
            self.assertFalse(os.path.exists(os.path.join(self.tmp.name, "new.txt")))

        ptrace = ("import ctypes,sys; libc=ctypes.CDLL(None,use_errno=True); "
                  "r=libc.ptrace(0,0,0,0); print(r, ctypes.get_errno()); sys.exit(0 if r==0 else 1)")
        module = ("import ctypes,os,sys; libc=ctypes.CDLL(None,use_errno=True); "
                  "fd=os.open('/dev/null',os.O_RDONLY); r=libc.syscall(313,fd,b'',0); "
                  "e=ctypes.get_errno(); print(r,e); sys.exit(2 if e==1 else 0)")
        with self.subTest("the sandboxed user can't ptrace or load modules"):
            self.assertEqual(airlock("exec", vm, "--", "python3", "-c", ptrace).code, 1)
            r = airlock("exec", vm, "--", "python3", "-c", module)
            self.assertEqual(r.code, 2, r)  # EPERM from finit_module
            r = airlock("exec", vm, "-u", "root", "--", "python3", "-c", module)
            self.assertEqual(r.code, 2, r)  # root without --privileged is sandboxed too

        with self.subTest("privileged can"):
            self.assertOk(airlock("exec", vm, "--privileged", "--", "python3", "-c", ptrace))
            r = airlock("exec", vm, "--privileged", "--", "python3", "-c", module)
            self.assertEqual(r.code, 0, r)  # past the sandbox: EBADF/ENOEXEC, not EPERM

        with self.subTest("exec and file events are recorded with gap-free seq"):
            events = self.events(vm)
            seqs = [e["seq"] for e in events]
            self.assertEqual(seqs, list(range(seqs[0], seqs[0] + len(seqs))))
            types = {e["type"] for e in events}
            self.assertTrue({"lifecycle", "exec", "file"} <= types, types)
            self.assertTrue(any(e["type"] == "file" and e["file"]["path"] == "/workspace/in.bin"
                                for e in events))

    def test_two_vms_at_once(self):
        a = self.create_vm("-e", "POLICY_VAR=from-create")
        b = self.create_vm("--no-network", "-e", "POLICY_VAR=no-net")
        self.assertNotEqual(a, b)
        # The policy's env reaches every later exec, with or without a network; a request's
        # own -e wins.
        for vm, want in ((a, "from-create"), (b, "no-net")):
            r = airlock("exec", vm, "--", "sh", "-c", "printf %s \"$POLICY_VAR\"")
            self.assertOk(r)
            self.assertEqual(r.text, want)
        r = airlock("exec", a, "-e", "POLICY_VAR=mine", "--", "sh", "-c", "printf %s \"$POLICY_VAR\"")
        self.assertEqual(r.text, "mine")
        ra = airlock("exec", a, "--", "hostname")
        rb = airlock("exec", b, "--", "hostname")
        self.assertOk(ra)
        self.assertOk(rb)
        r = airlock("ls", "--json")
        self.assertOk(r)
        ids = {row["id"] for row in json.loads(r.out)}
        self.assertTrue({a, b} <= ids)

    def test_killing_the_supervisor_leaves_no_qemu(self):
        vm = self.create_vm()
        state_dir = os.path.join(os.environ.get("AIRLOCK_HOME",
                                                os.path.expanduser("~/.local/share/airlock")),
                                 "vms", vm)
        with open(os.path.join(state_dir, "state.json")) as f:
            supervisor = json.load(f)["pid"]
        qemu = [p for p in pids_of("qemu-system") if vm in open(f"/proc/{p}/cmdline").read()]
        self.assertEqual(len(qemu), 1)
        os.kill(supervisor, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and os.path.exists(f"/proc/{qemu[0]}"):
            time.sleep(0.2)
        self.assertFalse(os.path.exists(f"/proc/{qemu[0]}"), "QEMU outlived its supervisor")
        r = airlock("ls", "--json")
        row = [x for x in json.loads(r.out) if x["id"] == vm][0]
        self.assertEqual(row["status"], "stopped")
        self.assertOk(airlock("rm", vm))
        self._vms.remove(vm)
        self.assertFalse(os.path.exists(state_dir))



class AGuestThatStopsAnswering(VmTestCase):
    def test_a_waiting_client_gets_an_error_then_the_vm_goes_on(self):
        # The whole guest frozen (QEMU stopped) is the surest wedge: guest-init answers
        # nothing, not even the supervisor's ping.
        vm = self.create_vm("--no-network")
        qemu = [p for p in pids_of("qemu-system") if vm in open(f"/proc/{p}/cmdline").read()]
        self.assertEqual(len(qemu), 1)
        os.kill(qemu[0], signal.SIGSTOP)
        try:
            started = time.monotonic()
            r = airlock("exec", vm, "--", "true", timeout=180)
            waited = time.monotonic() - started
        finally:
            os.kill(qemu[0], signal.SIGCONT)
        self.assertEqual(r.code, 125, r)
        self.assertIn("not answered", r.err_text)
        self.assertLess(waited, 120, "the client waited on a dead guest")
        events = self.events(vm)
        execs = [e["exec"] for e in events if e["type"] == "exec"]
        self.assertEqual(execs[-1].get("error"), "guest_unresponsive", execs)
        # Awake again: the VM serves the next request as before.
        r = airlock("exec", vm, "--", "echo", "back")
        self.assertOk(r)
        self.assertEqual(r.text, "back\n")


if __name__ == "__main__":
    unittest.main()
