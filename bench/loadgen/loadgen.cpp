// HTTPS load generator for bench/proxy.
//
// Theory of operation: C worker coroutines share one io_context (run on --threads
// threads). Each worker opens a TCP connection to the server, or to an explicit HTTP proxy
// followed by a CONNECT to the server's host:port, then a TLS handshake that verifies the
// server's certificate against --ca with SNI and a host name (or IP) check, then sends
// GET requests and reads each response with a minimal HTTP/1.1 reader (status line,
// Content-Length; no chunked bodies, which the benchmark's server never sends).
//
//   keepalive  one connection per worker, requests back to back on it; a request's latency
//              is write-request to last-body-byte.
//   newconn    every request opens a new connection (TCP + CONNECT + full TLS handshake,
//              no session resumption), sends one request with "Connection: close" and
//              closes; a request's latency covers all of it.
//   --idle N   opens N connections (C at a time), one request each, prints one JSON line
//              and "READY", and holds them open until stdin reaches end of file.
//
// Only requests that finish before the deadline count. At the deadline the io_context is
// stopped, so requests still in flight are neither counted nor errors. Every failure
// (refused connection, proxy refusal, handshake or verification failure, bad response)
// counts as one error, then the worker pauses briefly and starts over; nothing throws on
// the request path. Output is one JSON line:
//   {"requests":N,"errors":E,"seconds":S,"rps":R,"p50_ms":P,"p99_ms":Q}
//
//   loadgen --url https://HOST:PORT/PATH [--proxy IP:PORT] --ca FILE [--connections C]
//           [--seconds S] [--mode keepalive|newconn] [--idle N] [--threads T]

#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without including it

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using Stream = ssl::stream<tcp::socket>;
using asio::awaitable;
using asio::use_awaitable;

namespace {

constexpr std::size_t kMaxHeaderBytes = 64 * 1024;
constexpr std::size_t kMaxBodyBytes = 64 * 1024 * 1024;
constexpr auto kPauseAfterError = std::chrono::milliseconds(10);

enum class Mode { keepalive, newconn };

struct Config {
    std::string host;   // from --url; SNI, Host header, certificate check
    std::string port;   // from --url
    std::string path = "/";
    std::string ca_file;
    std::optional<std::string> proxy_host, proxy_port;
    int connections = 8;
    double seconds = 10;
    Mode mode = Mode::keepalive;
    int idle = 0;
    int threads = 1;
};

/// What one worker measured; merged after the io_context stops.
struct Stats {
    std::vector<double> latencies_ms;
    std::uint64_t errors = 0;
};

/// Everything the workers share: read-only after setup, except the idle slots (one
/// writer per slot) and the idle bookkeeping (idle mode runs on one thread).
struct Shared {
    Config cfg;
    ssl::context tls{ssl::context::tls_client};
    tcp::resolver::results_type first_hop;  // proxy, or the server when direct
    Clock::time_point deadline;
    std::string request;
    std::atomic<int> next_idle{0};
    int idle_workers_left = 0;
    asio::steady_timer* stop_timer = nullptr;
    std::vector<std::unique_ptr<Stream>> idle_streams;
};

[[noreturn]] void usage(const std::string& why) {
    std::fprintf(stderr,
                 "loadgen: %s\nusage: loadgen --url https://HOST:PORT/PATH [--proxy IP:PORT] "
                 "--ca FILE [--connections C] [--seconds S] [--mode keepalive|newconn] "
                 "[--idle N] [--threads T]\n",
                 why.c_str());
    std::exit(2);
}

/// Splits "host:port" or "[v6]:port"; returns false when there is no port.
bool split_host_port(std::string_view s, std::string& host, std::string& port) {
    if (!s.empty() && s.front() == '[') {
        auto close = s.find("]:");
        if (close == std::string_view::npos) return false;
        host = std::string(s.substr(1, close - 1));
        port = std::string(s.substr(close + 2));
    } else {
        auto colon = s.rfind(':');
        if (colon == std::string_view::npos) return false;
        host = std::string(s.substr(0, colon));
        port = std::string(s.substr(colon + 1));
    }
    return !host.empty() && !port.empty();
}

/// Parses https://HOST[:PORT][/PATH] into the config.
void parse_url(std::string_view url, Config& cfg) {
    constexpr std::string_view scheme = "https://";
    if (url.substr(0, scheme.size()) != scheme) usage("--url must start with https://");
    url.remove_prefix(scheme.size());
    auto slash = url.find('/');
    std::string_view authority = url.substr(0, slash);
    cfg.path = slash == std::string_view::npos ? "/" : std::string(url.substr(slash));
    if (!split_host_port(authority, cfg.host, cfg.port)) {
        cfg.host = std::string(authority);
        cfg.port = "443";
    }
    if (cfg.host.empty()) usage("--url has no host");
}

int to_int(const std::string& s, const char* flag) {
    char* end = nullptr;
    long v = std::strtol(s.c_str(), &end, 10);
    if (end == s.c_str() || *end != '\0' || v < 0 || v > 1000000) usage(std::string("bad ") + flag);
    return static_cast<int>(v);
}

Config parse_args(int argc, char** argv) {
    Config cfg;
    bool have_url = false;
    for (int i = 1; i < argc; ++i) {
        std::string flag = argv[i];
        if (i + 1 >= argc) usage("missing value for " + flag);
        std::string value = argv[++i];
        if (flag == "--url") {
            parse_url(value, cfg);
            have_url = true;
        } else if (flag == "--proxy") {
            std::string h, p;
            if (!split_host_port(value, h, p)) usage("--proxy wants IP:PORT");
            cfg.proxy_host = h;
            cfg.proxy_port = p;
        } else if (flag == "--ca") {
            cfg.ca_file = value;
        } else if (flag == "--connections") {
            cfg.connections = std::max(1, to_int(value, "--connections"));
        } else if (flag == "--seconds") {
            cfg.seconds = std::strtod(value.c_str(), nullptr);
            if (!(cfg.seconds > 0)) usage("bad --seconds");
        } else if (flag == "--mode") {
            if (value == "keepalive") cfg.mode = Mode::keepalive;
            else if (value == "newconn") cfg.mode = Mode::newconn;
            else usage("--mode is keepalive or newconn");
        } else if (flag == "--idle") {
            cfg.idle = to_int(value, "--idle");
        } else if (flag == "--threads") {
            cfg.threads = std::max(1, to_int(value, "--threads"));
        } else {
            usage("unknown flag " + flag);
        }
    }
    if (!have_url) usage("--url is required");
    if (cfg.ca_file.empty()) usage("--ca is required");
    return cfg;
}

/// Case-insensitive prefix test for header names.
bool starts_with_nocase(std::string_view s, std::string_view prefix) {
    if (s.size() < prefix.size()) return false;
    for (std::size_t i = 0; i < prefix.size(); ++i) {
        char a = s[i], b = prefix[i];
        if (a >= 'A' && a <= 'Z') a = static_cast<char>(a - 'A' + 'a');
        if (a != b) return false;
    }
    return true;
}

/// The parts of a response head the reader needs.
struct Head {
    int status = 0;
    std::size_t content_length = 0;
    bool has_length = false;
    bool closes = false;
};

/// Parses a response head (status line and headers, up to the blank line).
std::optional<Head> parse_head(std::string_view head) {
    Head h;
    if (head.size() < 12 || head.substr(0, 7) != "HTTP/1.") return std::nullopt;
    h.status = std::atoi(std::string(head.substr(9, 3)).c_str());
    std::size_t pos = head.find("\r\n");
    while (pos != std::string_view::npos && pos + 2 < head.size()) {
        std::size_t start = pos + 2;
        std::size_t end = head.find("\r\n", start);
        std::string_view line = head.substr(start, end == std::string_view::npos ? head.npos : end - start);
        if (starts_with_nocase(line, "content-length:")) {
            std::string v(line.substr(15));
            char* stop = nullptr;
            unsigned long long n = std::strtoull(v.c_str(), &stop, 10);
            if (stop == v.c_str() || n > kMaxBodyBytes) return std::nullopt;
            h.content_length = static_cast<std::size_t>(n);
            h.has_length = true;
        } else if (starts_with_nocase(line, "connection:")) {
            std::string v(line.substr(11));
            for (auto& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            if (v.find("close") != std::string::npos) h.closes = true;
        }
        pos = end;
    }
    return h;
}

/// Reads one response on `s`; `buf` keeps bytes that arrived beyond it. True on a 200
/// with its whole body; `closes` reports whether the server will close the connection.
template <class S>
awaitable<bool> read_response(S& s, std::string& buf, bool& closes) {
    boost::system::error_code ec;
    std::size_t head_len = co_await asio::async_read_until(
        s, asio::dynamic_buffer(buf, kMaxHeaderBytes + kMaxBodyBytes), "\r\n\r\n",
        asio::redirect_error(use_awaitable, ec));
    if (ec || head_len > kMaxHeaderBytes) co_return false;
    auto head = parse_head(std::string_view(buf).substr(0, head_len));
    if (!head || !head->has_length) co_return false;
    std::size_t total = head_len + head->content_length;
    if (buf.size() < total) {
        co_await asio::async_read(s, asio::dynamic_buffer(buf), asio::transfer_exactly(total - buf.size()),
                                  asio::redirect_error(use_awaitable, ec));
        if (ec) co_return false;
    }
    buf.erase(0, total);
    closes = head->closes;
    co_return head->status == 200;
}

/// Reads the proxy's answer to CONNECT; true on 2xx with nothing after the head.
awaitable<bool> read_connect_reply(tcp::socket& sock) {
    std::string buf;
    boost::system::error_code ec;
    std::size_t head_len = co_await asio::async_read_until(
        sock, asio::dynamic_buffer(buf, kMaxHeaderBytes), "\r\n\r\n", asio::redirect_error(use_awaitable, ec));
    if (ec || buf.size() != head_len || head_len < 12 || buf.compare(0, 7, "HTTP/1.") != 0) co_return false;
    co_return buf[9] == '2';
}

/// Sets SNI (names only) and the certificate name or IP check on one TLS connection.
bool set_peer_name(Stream& s, const std::string& host) {
    SSL* ssl = s.native_handle();
    boost::system::error_code ec;
    asio::ip::make_address(host, ec);
    if (!ec) {
        X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
        return X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) == 1;
    }
    // SSL_set_tlsext_host_name, without the macro's C cast.
    if (SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, const_cast<char*>(host.c_str())) != 1)
        return false;
    return SSL_set1_host(ssl, host.c_str()) == 1;
}

/// Opens TCP (+ CONNECT) + TLS to the server; null on any failure.
awaitable<std::unique_ptr<Stream>> open_connection(Shared& sh) {
    auto exec = co_await asio::this_coro::executor;
    auto s = std::make_unique<Stream>(exec, sh.tls);
    boost::system::error_code ec;
    co_await asio::async_connect(s->next_layer(), sh.first_hop, asio::redirect_error(use_awaitable, ec));
    if (ec) co_return nullptr;
    s->next_layer().set_option(tcp::no_delay(true), ec);
    if (sh.cfg.proxy_host) {
        std::string authority = sh.cfg.host + ":" + sh.cfg.port;
        std::string connect = "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n\r\n";
        co_await asio::async_write(s->next_layer(), asio::buffer(connect), asio::redirect_error(use_awaitable, ec));
        if (ec) co_return nullptr;
        if (!co_await read_connect_reply(s->next_layer())) co_return nullptr;
    }
    if (!set_peer_name(*s, sh.cfg.host)) co_return nullptr;
    s->set_verify_mode(ssl::verify_peer, ec);
    co_await s->async_handshake(ssl::stream_base::client, asio::redirect_error(use_awaitable, ec));
    if (ec) co_return nullptr;
    co_return s;
}

/// Sends one request and reads its response on an open connection.
awaitable<bool> exchange(Stream& s, const std::string& request, std::string& buf, bool& closes) {
    boost::system::error_code ec;
    co_await asio::async_write(s, asio::buffer(request), asio::redirect_error(use_awaitable, ec));
    if (ec) co_return false;
    co_return co_await read_response(s, buf, closes);
}

double ms_since(Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

/// Waits a little after a failure so that a dead peer does not turn into a busy loop.
awaitable<void> pause_after_error() {
    asio::steady_timer t(co_await asio::this_coro::executor, kPauseAfterError);
    boost::system::error_code ec;
    co_await t.async_wait(asio::redirect_error(use_awaitable, ec));
}

/// One keep-alive connection at a time, requests back to back until the deadline.
awaitable<void> keepalive_worker(Shared& sh, Stats& st) {
    while (Clock::now() < sh.deadline) {
        auto s = co_await open_connection(sh);
        if (!s) {
            ++st.errors;
            co_await pause_after_error();
            continue;
        }
        std::string buf;
        bool closes = false;
        while (!closes && Clock::now() < sh.deadline) {
            auto t0 = Clock::now();
            bool ok = co_await exchange(*s, sh.request, buf, closes);
            if (!ok) {
                ++st.errors;
                break;
            }
            if (Clock::now() < sh.deadline) st.latencies_ms.push_back(ms_since(t0));
        }
    }
}

/// A new connection per request until the deadline.
awaitable<void> newconn_worker(Shared& sh, Stats& st) {
    while (Clock::now() < sh.deadline) {
        auto t0 = Clock::now();
        auto s = co_await open_connection(sh);
        std::string buf;
        bool closes = false;
        bool ok = s && co_await exchange(*s, sh.request, buf, closes);
        if (!ok) {
            ++st.errors;
            co_await pause_after_error();
            continue;
        }
        if (Clock::now() < sh.deadline) st.latencies_ms.push_back(ms_since(t0));
        boost::system::error_code ec;
        s->next_layer().close(ec);
    }
}

/// Opens idle connections, one request each, and parks them in their slots.
awaitable<void> idle_worker(Shared& sh, Stats& st) {
    for (int i = sh.next_idle++; i < sh.cfg.idle; i = sh.next_idle++) {
        auto t0 = Clock::now();
        auto s = co_await open_connection(sh);
        std::string buf;
        bool closes = false;
        if (!s || !co_await exchange(*s, sh.request, buf, closes) || closes) {
            ++st.errors;
            continue;
        }
        st.latencies_ms.push_back(ms_since(t0));
        sh.idle_streams[static_cast<std::size_t>(i)] = std::move(s);
    }
    if (--sh.idle_workers_left == 0) sh.stop_timer->cancel();
}

/// Nearest-rank percentile of sorted values.
double percentile(const std::vector<double>& sorted, double p) {
    if (sorted.empty()) return 0;
    auto rank = static_cast<std::size_t>(p / 100.0 * static_cast<double>(sorted.size()));
    return sorted[std::min(rank, sorted.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
    std::signal(SIGPIPE, SIG_IGN);
    Shared sh;
    sh.cfg = parse_args(argc, argv);
    const Config& cfg = sh.cfg;

    boost::system::error_code ec;
    sh.tls.set_options(ssl::context::no_sslv2 | ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                           ssl::context::no_tlsv1_1,
                       ec);
    sh.tls.load_verify_file(cfg.ca_file, ec);
    if (ec) usage("cannot load --ca " + cfg.ca_file + ": " + ec.message());

    asio::io_context io;
    {
        // Resolved once, IPv4 first: name resolution is not what is measured.
        tcp::resolver resolver(io);
        const std::string& h = cfg.proxy_host ? *cfg.proxy_host : cfg.host;
        const std::string& p = cfg.proxy_port ? *cfg.proxy_port : cfg.port;
        sh.first_hop = resolver.resolve(tcp::v4(), h, p, ec);
        if (ec) sh.first_hop = resolver.resolve(h, p, ec);
        if (ec) usage("cannot resolve " + h + ": " + ec.message());
    }
    std::string authority = cfg.host + ":" + cfg.port;
    sh.request = "GET " + cfg.path + " HTTP/1.1\r\nHost: " + authority + "\r\nUser-Agent: airlock-loadgen\r\n" +
                 (cfg.mode == Mode::newconn && cfg.idle == 0 ? "Connection: close\r\n" : "") + "\r\n";
    if (cfg.idle > 0) {
        sh.idle_streams.resize(static_cast<std::size_t>(cfg.idle));
        sh.idle_workers_left = cfg.connections;
        sh.cfg.threads = 1;  // the idle workers share a counter and the stop timer
    }

    std::vector<Stats> stats(static_cast<std::size_t>(cfg.connections));
    auto start = Clock::now();
    sh.deadline = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(cfg.seconds));
    for (auto& st : stats) {
        if (cfg.idle > 0) asio::co_spawn(io, idle_worker(sh, st), asio::detached);
        else if (cfg.mode == Mode::keepalive) asio::co_spawn(io, keepalive_worker(sh, st), asio::detached);
        else asio::co_spawn(io, newconn_worker(sh, st), asio::detached);
    }
    // Bounds every mode; in idle mode the last worker cancels it so run() returns early.
    asio::steady_timer stop(io, sh.deadline);
    sh.stop_timer = &stop;
    stop.async_wait([&io](const boost::system::error_code& e) {
        if (!e) io.stop();
    });

    std::vector<std::thread> extra;
    for (int i = 1; i < cfg.threads; ++i) extra.emplace_back([&io] { io.run(); });
    io.run();
    for (auto& t : extra) t.join();
    double elapsed = std::min(cfg.seconds, std::chrono::duration<double>(Clock::now() - start).count());

    std::vector<double> all;
    std::uint64_t errors = 0;
    for (auto& st : stats) {
        all.insert(all.end(), st.latencies_ms.begin(), st.latencies_ms.end());
        errors += st.errors;
    }
    std::sort(all.begin(), all.end());
    if (cfg.idle > 0) {
        std::size_t open = 0;
        for (auto& s : sh.idle_streams) open += s ? 1 : 0;
        errors = static_cast<std::uint64_t>(cfg.idle) - open;
        elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    }
    std::printf("{\"requests\":%zu,\"errors\":%llu,\"seconds\":%.3f,\"rps\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f}\n",
                all.size(), static_cast<unsigned long long>(errors), elapsed,
                elapsed > 0 ? static_cast<double>(all.size()) / elapsed : 0.0, percentile(all, 50),
                percentile(all, 99));
    std::fflush(stdout);
    if (cfg.idle > 0) {
        std::printf("READY\n");
        std::fflush(stdout);
        char scratch[256];
        while (std::fread(scratch, 1, sizeof scratch, stdin) > 0) {
        }
    }
    // Skip teardown: the stopped io_context still holds suspended worker frames and the
    // idle streams outlive it; the process is done either way.
    std::_Exit(0);
}
