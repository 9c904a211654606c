"""The lifecycle pieces on the CLI, real VMs (TCG): start after stop, cp of folders both
ways, mounts whoever owns the folder, hostname and add_hosts."""
import json
import os
import signal
import stat
import subprocess
import tempfile
import time
import unittest

from airlock_e2e import VmTestCase, airlock


def home():
    return os.environ.get("AIRLOCK_HOME", os.path.expanduser("~/.local/share/airlock"))


class StartAgain(VmTestCase):
    def test_stop_then_start_keeps_the_disk_and_refuses_without_secrets(self):
        vm = self.create_vm("--no-network", "-e", "KEEP=me", "--hostname", "again",
                            "--secret", "TOKEN=literal-value@api.example.com")
        self.assertOk(airlock("exec", vm, "--", "sh", "-c", "echo persisted > /workspace/p"))
        self.assertOk(airlock("stop", vm))
        r = airlock("ls", "--json")
        self.assertEqual([x for x in json.loads(r.out) if x["id"] == vm][0]["status"], "stopped")
        r = airlock("start", vm)
        self.assertEqual(r.code, 125, r)
        self.assertIn("TOKEN", r.err_text)
        self.assertIn("never stored", r.err_text)
        self.assertOk(airlock("start", vm, "--secret", "TOKEN=literal-value"))
        r = airlock("exec", vm, "--", "sh", "-c", 'cat /workspace/p; echo "$KEEP"; hostname')
        self.assertOk(r)
        self.assertEqual(r.text.splitlines(), ["persisted", "me", "again"])
        self.assertEqual(airlock("start", vm).code, 125)  # already running
        kinds = [e["lifecycle"]["event"] for e in self.events(vm) if e["type"] == "lifecycle"]
        self.assertEqual(kinds, ["created", "booted", "stopped", "started", "booted"])
        with open(os.path.join(home(), "vms", vm, "launch.json"), "rb") as f:
            self.assertNotIn(b"literal-value", f.read())


class CopyFolders(VmTestCase):
    def test_cp_folders_both_ways(self):
        vm = self.create_vm("--no-network")
        src = os.path.join(self.tmp.name, "proj")
        os.makedirs(os.path.join(src, "pkg"))
        with open(os.path.join(src, "pkg", "mod.py"), "w") as f:
            f.write("X = 1\n")
        os.chmod(os.path.join(src, "pkg"), 0o751)
        os.symlink("pkg/mod.py", os.path.join(src, "alias.py"))
        self.assertOk(airlock("cp", src, f"{vm}:/workspace"))  # into an existing folder
        r = airlock("exec", vm, "--", "sh", "-c",
                    "stat -c %a /workspace/proj/pkg; readlink /workspace/proj/alias.py; cat /workspace/proj/alias.py")
        self.assertEqual(r.text.splitlines(), ["751", "pkg/mod.py", "X = 1"])
        self.assertOk(airlock("cp", f"{src}/.", f"{vm}:/workspace/flat"))  # contents, cp -r style
        self.assertOk(airlock("exec", vm, "--", "test", "-f", "/workspace/flat/pkg/mod.py"))

        self.assertOk(airlock("exec", vm, "--", "sh", "-c",
                              "mkdir -p /workspace/res/a && echo r > /workspace/res/a/r && ln -s /etc/shadow /workspace/res/s"))
        dst = os.path.join(self.tmp.name, "back")
        self.assertOk(airlock("cp", f"{vm}:/workspace/res", dst))
        with open(os.path.join(dst, "a", "r")) as f:
            self.assertEqual(f.read(), "r\n")
        self.assertEqual(os.readlink(os.path.join(dst, "s")), "/etc/shadow")  # a link, never its target
        # A link the guest planted in a destination is refused, not followed.
        self.assertOk(airlock("exec", vm, "--", "ln", "-s", "/etc", "/workspace/evil"))
        r = airlock("cp", src, f"{vm}:/workspace/evil/x")
        self.assertNotEqual(r.code, 0)
        self.assertIn("symlink", r.err_text)


class Mounts(VmTestCase):
    def test_a_private_folder_of_another_owner_works_and_read_only_holds(self):
        rw = tempfile.mkdtemp(prefix="airlock-rw-")  # mode 0700, owned by whoever runs this
        ro = tempfile.mkdtemp(prefix="airlock-ro-")
        self.addCleanup(subprocess.run, ["rm", "-rf", rw, ro])
        with open(os.path.join(rw, "private.txt"), "w") as f:
            f.write("mine\n")
        os.chmod(os.path.join(rw, "private.txt"), 0o600)
        with open(os.path.join(ro, "kept.txt"), "w") as f:
            f.write("read only\n")
        self.assertEqual(stat.S_IMODE(os.stat(rw).st_mode), 0o700)
        vm = self.create_vm("--no-network", "-v", f"{rw}:rw", "-v", f"{ro}:ro:ro")
        r = airlock("exec", vm, "--", "sh", "-c",
                    "cat /workspace/rw/private.txt && echo guest > /workspace/rw/new.txt && mkdir /workspace/rw/d")
        self.assertOk(r)
        self.assertEqual(r.text, "mine\n")
        st = os.stat(os.path.join(rw, "new.txt"))
        self.assertEqual((st.st_uid, st.st_gid), (os.getuid(), os.getgid()))
        self.assertTrue(os.path.isdir(os.path.join(rw, "d")))
        self.assertEqual(airlock("exec", vm, "--", "cat", "/workspace/ro/kept.txt").text, "read only\n")
        r = airlock("exec", vm, "--privileged", "-u", "root", "--", "sh", "-c",
                    "echo x > /workspace/ro/new; echo y >> /workspace/ro/kept.txt; rm /workspace/ro/kept.txt")
        self.assertNotEqual(r.code, 0)
        self.assertEqual(sorted(os.listdir(ro)), ["kept.txt"])
        with open(os.path.join(ro, "kept.txt")) as f:
            self.assertEqual(f.read(), "read only\n")
        # QEMU runs in a user namespace here; it must still die with its supervisor.
        with open(os.path.join(home(), "vms", vm, "state.json")) as f:
            supervisor = json.load(f)["pid"]
        def cmdline(pid):
            with open(f"/proc/{pid}/cmdline") as f:
                return f.read()
        qemu = [int(p) for p in subprocess.run(["pgrep", "-f", "qemu-system"], capture_output=True,
                                               text=True).stdout.split() if vm in cmdline(p)]
        self.assertEqual(len(qemu), 1)
        os.kill(supervisor, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and os.path.exists(f"/proc/{qemu[0]}"):
            time.sleep(0.2)
        self.assertFalse(os.path.exists(f"/proc/{qemu[0]}"), "QEMU outlived its supervisor")


class MachineOptions(VmTestCase):
    def test_hostname_and_add_hosts(self):
        vm = self.create_vm("--no-network", "--hostname", "builder", "--add-host", "db.internal:10.1.2.3",
                            "--add-host", "v6:2001:db8::9")
        r = airlock("exec", vm, "--", "sh", "-c", "hostname; getent hosts db.internal; getent hosts v6")
        self.assertOk(r)
        lines = r.text.split("\n")
        self.assertEqual(lines[0], "builder")
        self.assertEqual(lines[1].split(), ["10.1.2.3", "db.internal"])
        self.assertEqual(lines[2].split(), ["2001:db8::9", "v6"])
        r = airlock("create", "--add-host", "no-colon")
        self.assertEqual(r.code, 2, r)
        r = airlock("create", "--hostname", "bad_name")
        self.assertEqual(r.code, 2, r)


if __name__ == "__main__":
    unittest.main()
