// Accelerator choice: forced values, the cache, and the probe with fake QEMUs (a script
// that exits at once, one that fails, one that hangs and must be killed at the deadline).
#include <doctest/doctest.h>

#include <stdlib.h>
#include <sys/stat.h>

#include <chrono>
#include <fstream>

#include "runtime/vm/accel.hpp"

using namespace airlock::runtime;
namespace fs = std::filesystem;

namespace {

struct TempHome {
  TempHome() {
    char tmpl[] = "/tmp/airlock-accel-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    std::ofstream(dir / "vmlinuz") << "kernel";
    std::ofstream(dir / "initramfs.cpio.gz") << "initramfs";
    std::ofstream(dir / "fake-kvm") << "";
  }
  ~TempHome() { fs::remove_all(dir); }
  fs::path script(const std::string& name, const std::string& body) {
    const fs::path p = dir / name;
    std::ofstream(p) << "#!/bin/sh\n" << body << "\n";
    ::chmod(p.c_str(), 0755);
    return p;
  }
  AccelProbeInputs inputs(const fs::path& qemu) {
    AccelProbeInputs in;
    in.qemu_binary = qemu.string();
    in.kernel = dir / "vmlinuz";
    in.initramfs = dir / "initramfs.cpio.gz";
    in.cache_file = dir / "accel.json";
    in.kvm_device = dir / "fake-kvm";
    in.deadline = std::chrono::seconds(15);  // a probe that must finish; the hang test sets its own
    in.request = "auto";
    return in;
  }
  fs::path dir;
};

// A fake QEMU: --version prints a version; a boot does what `boot` says.
std::string fake_qemu(const std::string& boot) {
  return "if [ \"$1\" = --version ]; then echo 'QEMU emulator version 9.9.9'; exit 0; fi\n" + boot;
}

}  // namespace

TEST_CASE("AIRLOCK_ACCEL parsing") {
  CHECK_FALSE(parse_accel_request("")->has_value());
  CHECK_FALSE(parse_accel_request("auto")->has_value());
  CHECK(**parse_accel_request("kvm") == Accel::kvm);
  CHECK(**parse_accel_request("tcg") == Accel::tcg);
  auto bad = parse_accel_request("hvf");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().find("hvf") != std::string::npos);
}

TEST_CASE("forced accelerators skip the probe") {
  TempHome h;
  auto in = h.inputs(h.script("qemu", "exit 99"));
  in.request = "tcg";
  CHECK(choose_accel(in)->accel == Accel::tcg);
  in.request = "kvm";
  auto c = choose_accel(in);
  CHECK(c->accel == Accel::kvm);
  CHECK(c->reason.find("AIRLOCK_ACCEL") != std::string::npos);
  in.request = "bogus";
  CHECK_FALSE(choose_accel(in).ok());
  CHECK_FALSE(fs::exists(in.cache_file));
}

TEST_CASE("no usable /dev/kvm means TCG") {
  TempHome h;
  auto in = h.inputs(h.script("qemu", fake_qemu("exit 0")));
  in.kvm_device = h.dir / "missing";
  auto c = choose_accel(in);
  CHECK(c->accel == Accel::tcg);
  CHECK(c->reason.find("can't be opened") != std::string::npos);
}

TEST_CASE("a probe boot that powers off picks KVM and is cached") {
  TempHome h;
  const fs::path marker = h.dir / "probed";
  auto in = h.inputs(h.script("qemu", fake_qemu("touch " + marker.string() +
                                                "\ncase \"$*\" in *airlock.probe=1*) exit 0;; esac\nexit 1")));
  auto c = choose_accel(in);
  CHECK(c->accel == Accel::kvm);
  CHECK_FALSE(c->from_cache);
  CHECK(fs::exists(marker));
  fs::remove(marker);
  auto again = choose_accel(in);
  CHECK(again->accel == Accel::kvm);
  CHECK(again->from_cache);
  CHECK_FALSE(fs::exists(marker));  // no second probe
}

TEST_CASE("a hanging probe is killed at the deadline and picks TCG") {
  TempHome h;
  auto in = h.inputs(h.script("qemu", fake_qemu("exec sleep 30")));
  in.deadline = std::chrono::milliseconds(500);
  const auto start = std::chrono::steady_clock::now();
  auto c = choose_accel(in);
  const auto took = std::chrono::steady_clock::now() - start;
  CHECK(c->accel == Accel::tcg);
  CHECK(c->reason.find("did not finish") != std::string::npos);
  CHECK(took < std::chrono::seconds(5));
  CHECK(choose_accel(in)->from_cache);
}

TEST_CASE("a failing probe picks TCG; a changed kernel invalidates the cache") {
  TempHome h;
  auto in = h.inputs(h.script("qemu", fake_qemu("echo 'failed to initialize kvm' >&2; exit 1")));
  auto c = choose_accel(in);
  CHECK(c->accel == Accel::tcg);
  CHECK(c->reason.find("failed to initialize kvm") != std::string::npos);
  // New kernel mtime: the probe runs again (now succeeding).
  h.script("qemu", fake_qemu("exit 0"));
  fs::last_write_time(in.kernel, fs::last_write_time(in.kernel) + std::chrono::seconds(10));
  auto fresh = choose_accel(in);
  CHECK_FALSE(fresh->from_cache);
  CHECK(fresh->accel == Accel::kvm);
}

TEST_CASE("cache text parsing is strict about the key") {
  AccelChoice c{Accel::kvm, "ok", false};
  const std::string text = accel_cache_text("k1", c);
  CHECK(accel_from_cache(text, "k1")->accel == Accel::kvm);
  CHECK_FALSE(accel_from_cache(text, "k2").has_value());
  CHECK_FALSE(accel_from_cache("{", "k1").has_value());
  CHECK_FALSE(accel_from_cache(R"({"key":"k1","accel":"hvf"})", "k1").has_value());
  CHECK(accel_cache_key("QEMU 7.2", "/k", 5) == "QEMU 7.2|/k|5");
}
