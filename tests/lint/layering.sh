#!/usr/bin/env bash
# Layering check (docs/architecture.md): pure components never include Asio, sockets or
# threads. Fails naming each offending line.
set -u
cd "$(dirname "$0")/../.."
pure_dirs=(common audit policy certs protocol proxy/netstack proxy/dns proxy/tls proxy/http proxy/http2 proxy/mitm)
pattern='#include *[<"](boost/asio|sys/socket\.h|netinet/in\.h|netdb\.h|thread>|ares\.h)'
status=0
for dir in "${pure_dirs[@]}"; do
  [ -d "$dir" ] || continue
  if grep -rnE "$pattern" "$dir" --include='*.cpp' --include='*.hpp'; then
    status=1
  fi
done
if [ "$status" -ne 0 ]; then
  echo "layering: the lines above bring I/O into a pure component"
else
  echo "layering: pure components are free of sockets and Asio"
fi
exit "$status"
