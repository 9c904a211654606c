"""`pip install ./sdk/python` works offline, with Debian's setuptools and wheel (no
index, no build isolation), into a fresh virtual environment; the installed package
imports and carries its type marker. No VM."""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def interpreter():
    """Debian's python3 (where scripts/setup installs python3-setuptools and -wheel), else
    this one."""
    for candidate in ("/usr/bin/python3", sys.executable):
        if candidate and os.path.exists(candidate):
            probe = subprocess.run([candidate, "-c", "import setuptools, wheel, venv"], capture_output=True)
            if probe.returncode == 0:
                return candidate
    return None


class Install(unittest.TestCase):
    def test_pip_install_offline(self):
        python = interpreter()
        self.assertIsNotNone(python, "no python3 with setuptools and wheel: run scripts/setup "
                                     "(python3-setuptools, python3-wheel, python3-venv)")
        tmp = tempfile.mkdtemp(prefix="airlock-venv-")
        self.addCleanup(shutil.rmtree, tmp)
        venv = os.path.join(tmp, "venv")
        subprocess.run([python, "-m", "venv", "--system-site-packages", venv], check=True, timeout=120)
        env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
        r = subprocess.run([os.path.join(venv, "bin", "pip"), "install", "--no-build-isolation",
                            os.path.join(ROOT, "sdk", "python")], capture_output=True, text=True, timeout=300, env=env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        probe = ("import airlock, airlock.aio, os; "
                 "print(os.path.exists(os.path.join(os.path.dirname(airlock.__file__), 'py.typed')), "
                 "airlock.Sandbox.__name__, airlock.aio.Sandbox.__name__)")
        r = subprocess.run([os.path.join(venv, "bin", "python"), "-c", probe], capture_output=True, text=True,
                           cwd=tmp, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.split(), ["True", "Sandbox", "Sandbox"])


if __name__ == "__main__":
    unittest.main()
