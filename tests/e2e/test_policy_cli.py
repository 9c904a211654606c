"""`airlock policy check|eval` from the command line: outputs and exit codes."""
import json
import os
import unittest

from airlock_e2e import airlock, airlock_clean_env

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "config", "examples")
AGENT = os.path.join(EXAMPLES, "agent.yaml")
SECRET_ENV = {"OPENAI_API_KEY": "sk-e2e-real-value-123"}


class PolicyCheck(unittest.TestCase):
    def test_prints_normalised_policy_without_secret_values(self):
        r = airlock("policy", "check", "--json", AGENT, env=SECRET_ENV)
        self.assertEqual(r.code, 0, r)
        policy = json.loads(r.out)
        self.assertEqual(policy["resources"]["memory_mb"], 2048)
        self.assertIn("*.githubusercontent.com:443", policy["network"]["allowed_hosts"])
        self.assertEqual(policy["network"]["secrets"]["OPENAI_API_KEY"]["value"], "[REDACTED]")
        self.assertNotIn(b"sk-e2e-real-value-123", r.out + r.err)

    def test_yaml_output_is_the_default(self):
        r = airlock("policy", "check", AGENT, env=SECRET_ENV)
        self.assertEqual(r.code, 0, r)
        self.assertIn(b"allowed_hosts:", r.out)
        self.assertNotIn(b"sk-e2e-real-value-123", r.out + r.err)

    def test_bad_policy_names_file_line_and_key(self):
        path = os.path.join(os.path.dirname(__file__), "data", "bad-policy.yaml")
        r = airlock("policy", "check", path)
        self.assertEqual(r.code, 2, r)
        self.assertIn("bad-policy.yaml:4:7: network.allowed_hosts[1]: invalid host pattern", r.err_text)

    def test_missing_env_secret_is_an_error(self):
        env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
        r = airlock_clean_env("policy", "check", AGENT, env=env)
        self.assertEqual(r.code, 2, r)
        self.assertIn("network.secrets.OPENAI_API_KEY.value_from_env: environment variable "
                      "OPENAI_API_KEY is not set", r.err_text)

    def test_flags_merge_over_the_file(self):
        r = airlock("policy", "check", "--json", AGENT, "--allow-host", "example.org:8443",
                    "--memory", "1G", "--secret", "TOK=abc123secret@example.org", env=SECRET_ENV)
        self.assertEqual(r.code, 0, r)
        policy = json.loads(r.out)
        self.assertIn("example.org:8443", policy["network"]["allowed_hosts"])
        self.assertEqual(policy["resources"]["memory_mb"], 1024)
        self.assertEqual(policy["network"]["secrets"]["TOK"]["hosts"], ["example.org"])
        self.assertNotIn(b"abc123secret", r.out + r.err)


class PolicyEval(unittest.TestCase):
    def eval(self, url, *extra):
        r = airlock("policy", "eval", AGENT, url, *extra, env=SECRET_ENV)
        self.assertIn(r.code, (0, 1, 2), r)
        return r

    def test_allowed_exits_0(self):
        r = self.eval("https://pypi.org/simple/")
        self.assertEqual(r.code, 0, r)
        out = json.loads(r.out)
        self.assertTrue(out["allowed"])
        self.assertEqual(out["reason"], "allowed")
        self.assertEqual(out["rule"], "allowed_hosts: pypi.org:443")

    def test_blocked_exits_1_with_reason(self):
        cases = {
            "https://evil.com/": "host_not_allowed",
            "https://api.openai.com.evil.com/": "host_not_allowed",
            "https://api.openai.com@evil.com/": "host_not_allowed",
            "https://gist.githubusercontent.com/x": "blocked_host",
            "http://2130706433/": "private_address",
            "http://0x7f.1/": "private_address",
            "http://[::ffff:169.254.169.254]/": "private_address",
        }
        for url, reason in cases.items():
            with self.subTest(url=url):
                r = self.eval(url)
                self.assertEqual(r.code, 1, r)
                out = json.loads(r.out)
                self.assertFalse(out["allowed"])
                self.assertEqual(out["reason"], reason)

    def test_rules_judge_method_and_normalised_path(self):
        for target in ("/org/repo.git/git-receive-pack", "/org/x/../repo.git//git-receive-pack",
                       "/org/repo.git/git-%72eceive-pack"):
            with self.subTest(target=target):
                r = self.eval("https://github.com" + target, "--method", "POST")
                self.assertEqual(r.code, 1, r)
                out = json.loads(r.out)
                self.assertEqual((out["reason"], out["rule"], out["method"]),
                                 ("denied_by_rule", "rules: no-push", "POST"))
        r = self.eval("https://github.com/org/repo.git/info/refs?service=git-upload-pack")
        self.assertEqual(r.code, 0, r)
        self.assertEqual(json.loads(r.out)["rule"], "allowed_hosts: github.com:443")
        r = self.eval("https://github.com/org/repo.git/../../../x")
        self.assertEqual(json.loads(r.out)["reason"], "unsafe_path")
        # A connection on its own: opaque bytes can't pass where a path rule might refuse.
        r = self.eval("github.com:443")
        self.assertEqual(r.code, 0, r)
        self.assertFalse(json.loads(r.out)["opaque_allowed"])

    def test_resolved_ip_goes_through_the_guard(self):
        r = self.eval("https://api.openai.com/v1", "--resolved-ip", "10.0.0.7")
        self.assertEqual(r.code, 1, r)
        self.assertEqual(json.loads(r.out)["reason"], "private_address")
        r = self.eval("https://api.openai.com/v1", "--resolved-ip", "104.18.6.192")
        self.assertEqual(r.code, 0, r)

    def test_usage_errors_exit_2(self):
        self.assertEqual(self.eval("ftp://x/").code, 2)
        self.assertEqual(self.eval("https://a.com/", "--resolved-ip", "nope").code, 2)
        r = airlock("policy", "eval", "/nonexistent.yaml", "https://a.com/")
        self.assertEqual(r.code, 2, r)
        self.assertEqual(airlock("policy", "eval", AGENT).code, 2)
        self.assertEqual(airlock("policy", "frobnicate").code, 2)


if __name__ == "__main__":
    unittest.main()
