// `airlock debug ...`: hidden helpers for benchmarks and troubleshooting.
//
// `debug probe-argv [--image NAME]` prints, as a JSON array, the QEMU argv of a bare boot
// of an image's kernel and initramfs under TCG with airlock.probe=1 (guest-init powers
// off as soon as it runs): no disk, no control channel, no supervisor. bench/boot uses it
// as the "bare QEMU" baseline, so both sides boot exactly the same kernel and initramfs
// with the same kernel arguments.
#include <iostream>

#include <nlohmann/json.hpp>

#include "runtime/cli/commands.hpp"
#include "runtime/vm/host_tsc.hpp"
#include "runtime/vm/machine_config.hpp"
#include "runtime/vm/qemu_argv.hpp"
#include "runtime/vm/vm_store.hpp"
#ifdef AIRLOCK_HAVE_IMAGES
#include "images/image_store.hpp"
#endif

namespace airlock::cli {

namespace {

int probe_argv(const std::string& image_name) {
#ifdef AIRLOCK_HAVE_IMAGES
  images::ImageStore store(runtime::airlock_home());
  std::optional<images::ImageInfo> image = store.find(image_name);
  if (!image) {
    std::cerr << "airlock: no image '" << image_name << "' (airlock image build " << image_name << ")\n";
    return kExitRuntime;
  }
  runtime::MachineConfig probe;
  probe.id = "probe";
  probe.kernel = image->vmlinux.empty() ? image->kernel : image->vmlinux;
  probe.initramfs = image->initramfs;
  probe.accel = runtime::Accel::tcg;
  probe.tsc_khz = runtime::measure_host_tsc_khz();
  probe.extra_cmdline = {{"probe", "1"}};
  std::cout << nlohmann::json(runtime::build_qemu_argv(probe)).dump() << "\n";
  return 0;
#else
  std::cerr << "airlock: this build has no image store (" << image_name << ")\n";
  return kExitRuntime;
#endif
}

}  // namespace

void register_debug_commands(CLI::App& app) {
  CLI::App* debug = app.add_subcommand("debug", "Helpers for benchmarks and troubleshooting");
  debug->group("");  // hidden from --help
  debug->require_subcommand(1);
  auto image = std::make_shared<std::string>("default");
  CLI::App* argv = debug->add_subcommand(
      "probe-argv", "Print the QEMU argv of a bare TCG boot that powers off at once");
  argv->add_option("--image", *image, "Image name");
  argv->callback([image] { set_exit_code(probe_argv(*image)); });
}

}  // namespace airlock::cli
