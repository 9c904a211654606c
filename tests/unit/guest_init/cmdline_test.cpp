// Kernel command line parsing for guest-init.
#include <doctest/doctest.h>

#include "guest-init/cmdline.hpp"

using namespace airlock::guest;

TEST_CASE("split_cmdline honours quotes") {
  CHECK(split_cmdline("a b  \"c d\" e\"f g\"\n") == std::vector<std::string>{"a", "b", "c d", "ef g"});
  CHECK(split_cmdline("").empty());
}

TEST_CASE("defaults when no airlock keys are given") {
  const BootConfig c = parse_cmdline("console=ttyS0 quiet panic=-1");
  CHECK(c.hostname == "airlock");
  CHECK(c.workspace == "/workspace");
  CHECK(c.mounts.empty());
  CHECK_FALSE(c.probe);
  CHECK(c.uid == 1000);
  CHECK(c.warnings.empty());
}

TEST_CASE("all keys are parsed") {
  const BootConfig c = parse_cmdline(
      "console=ttyS0 airlock.hostname=vm-1 airlock.workspace=/work airlock.probe=1 airlock.uid=1234 "
      "airlock.mounts=fs0:/work/src:ro,fs1:/data:rw,fs2:/x virtio_mmio.device=4K@0xfeb00000:12");
  CHECK(c.hostname == "vm-1");
  CHECK(c.workspace == "/work");
  CHECK(c.probe);
  CHECK(c.uid == 1234);
  REQUIRE(c.mounts.size() == 3);
  CHECK(c.mounts[0].tag == "fs0");
  CHECK(c.mounts[0].guest_path == "/work/src");
  CHECK(c.mounts[0].read_only);
  CHECK(c.mounts[1].guest_path == "/data");
  CHECK_FALSE(c.mounts[1].read_only);
  CHECK(c.mounts[2].guest_path == "/x");
  CHECK_FALSE(c.mounts[2].read_only);
  CHECK(c.warnings.empty());
}

TEST_CASE("bad values are skipped with warnings") {
  const BootConfig c = parse_cmdline(
      "airlock.hostname=bad_name! airlock.workspace=relative airlock.uid=0 airlock.mounts=:/x,fs0:rel,fs1:/ok "
      "airlock.frobnicate=1 airlock.ip=10.0.0.2");
  CHECK(c.hostname == "airlock");
  CHECK(c.workspace == "/workspace");
  CHECK(c.uid == 1000);
  REQUIRE(c.mounts.size() == 1);
  CHECK(c.mounts[0].tag == "fs1");
  CHECK(c.warnings.size() == 6);  // hostname, workspace, uid, two mounts, unknown key
}

TEST_CASE("a guest path may contain colons") {
  ShareMount m;
  REQUIRE(parse_share_mount("fs0:/a:b:ro", m));
  CHECK(m.guest_path == "/a:b");
  CHECK(m.read_only);
}
