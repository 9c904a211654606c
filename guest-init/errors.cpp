// errno -> protocol error code (see errors.hpp).
#include "guest-init/errors.hpp"

#include <cerrno>
#include <cstring>

#include "protocol/messages.hpp"

namespace airlock::guest {

std::string_view error_code_for_errno(int err) {
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return protocol::error_code::not_found;
    case EACCES:
    case EPERM:
    case EROFS:
      return protocol::error_code::permission_denied;
    case E2BIG:
    case EINVAL:
    case ENOEXEC:
    case ENAMETOOLONG:
    case EISDIR:
    case EEXIST:
    case ENOTEMPTY:
    case ELOOP:
      return protocol::error_code::invalid;
    case EFBIG:
    case ENOSPC:
    case EDQUOT:
      return protocol::error_code::too_large;
    case EAGAIN:
    case EMFILE:
    case ENFILE:
    case ENOMEM:
    case EBUSY:
      return protocol::error_code::busy;
    default:
      return protocol::error_code::io;
  }
}

std::string errno_error(int err, std::string_view what) {
  std::string message(what);
  message += ": ";
  message += std::strerror(err);
  return protocol::make_error(error_code_for_errno(err), message);
}

}  // namespace airlock::guest
