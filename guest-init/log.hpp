// Console logging for guest-init: one line per message on stderr, which is the guest's
// console (the serial port the host writes to console.log). Kept deliberately tiny and
// allocation-light so it can also be used in a forked child before exec.
#pragma once

#include <string_view>

namespace airlock::guest {

void log_line(std::string_view message);
// Appends ": <strerror(err)>" to the message.
void log_errno(std::string_view message, int err);

}  // namespace airlock::guest
