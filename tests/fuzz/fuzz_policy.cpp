// Fuzzes the policy loader: any bytes must give a Policy or a PolicyError, never a crash,
// and a loaded policy must survive serialisation.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "policy/loader.hpp"
#include "policy/serialize.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  airlock::policy::EnvLookup env = [](const std::string& name) -> std::optional<std::string> {
    if (name == "FUZZ_SECRET") return std::string("s3cr3t-value");
    return std::nullopt;
  };
  try {
    auto policy = airlock::policy::load_policy_text(text, "fuzz.yaml", "/nonexistent", env);
    std::string yaml = airlock::policy::to_yaml(policy);
    // The value read from the environment must never come out (unless the input itself
    // spells it, e.g. as a path, which is no leak).
    if (text.find("s3cr3t-value") == std::string_view::npos &&
        yaml.find("s3cr3t-value") != std::string::npos)
      __builtin_trap();
  } catch (const airlock::policy::PolicyError&) {
  }
  return 0;
}
