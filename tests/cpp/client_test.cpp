// elasticache.hpp end to end against a real memcached whose address is in
// $ELASTICACHE_TEST_SERVER (scripts/test_cpp.sh starts it). Built with
// exceptions; run under ASan+UBSan and once under valgrind, so every owning
// type must free what it holds.
#include "elasticache.hpp"

#include "check.hpp"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

namespace ec = elasticache;
using namespace std::chrono_literals;

// Runs `f`, which must throw ec::error with `code`; returns the message.
template <class F> static std::string expect_error(ec::status code, F &&f) {
    try {
        f();
    } catch (const ec::error &e) {
        if (e.code() != code)
            std::fprintf(stderr, "expected %s, got %s: %s\n", ec::status_str(code), ec::status_str(e.code()), e.what());
        CHECK(e.code() == code);
        return e.what();
    }
    std::fprintf(stderr, "expected %s, nothing thrown\n", ec::status_str(code));
    failures++;
    return {};
}

static_assert(!std::is_copy_constructible_v<ec::client> && std::is_nothrow_move_constructible_v<ec::client>);
static_assert(!std::is_copy_assignable_v<ec::value> && std::is_nothrow_move_assignable_v<ec::value>);
static_assert(!std::is_copy_constructible_v<ec::multi_result> && std::is_move_constructible_v<ec::multi_result>);
static_assert(!std::is_copy_constructible_v<ec::options> && !std::is_copy_constructible_v<ec::config>);
static_assert(!std::is_copy_constructible_v<ec::stats> && !std::is_copy_constructible_v<ec::ring>);

static void options_and_errors(const std::string &server) {
    ec::options opts;
    CHECK(!opts); // empty until the first set: the library's defaults
    opts.set("io_timeout", 2000).set("tcp_nodelay", true).set("distribution", "ketama");
    CHECK(opts);
    std::string msg = expect_error(ec::status::invalid_argument, [&] { opts.set("no_such_option", "1"); });
    CHECK(msg.find("no_such_option") != std::string::npos);
    auto bad = opts.try_set("distribution", "no_such_distribution");
    CHECK(!bad && bad.code() == ec::status::invalid_argument && !bad.message().empty());

    // A plain memcached is no configuration endpoint: discovery fails, with the
    // library's message, unless told to treat it as one node.
    msg = expect_error(ec::status::discovery, [&] { ec::config::discover(server); });
    CHECK(msg.find("configuration endpoint") != std::string::npos);
    opts.set("ignore_cluster_errors", true);
    const ec::config cfg = ec::config::discover(server, opts);
    CHECK(cfg.version() == 0 && !cfg.is_serverless() && cfg.size() == 1);
    int nodes = 0;
    for (const auto &[host, ip, port] : cfg) {
        CHECK(server == std::string(host) + ":" + std::to_string(port) ||
              server == std::string(ip) + ":" + std::to_string(port));
        nodes++;
    }
    CHECK(nodes == 1);
    ec::client by_endpoint(server, opts);
    by_endpoint.set("cpp:endpoint", "yes");
    auto v = by_endpoint.get("cpp:endpoint");
    CHECK(v && v->str() == "yes");

    expect_error(ec::status::invalid_argument, [] { ec::client::with_servers(std::vector<std::string>{}); });
    auto none = ec::client::try_with_servers(std::vector<std::string>{});
    CHECK(!none && none.code() == ec::status::invalid_argument);
    // A moved-from client holds NULL: the C API refuses it, nothing crashes.
    ec::client moved = std::move(by_endpoint);
    CHECK(moved && !by_endpoint);
    CHECK(by_endpoint.try_get("k").code() == ec::status::invalid_argument);
}

static void single_key(const ec::client &c) {
    c.flush_all();
    c.set("cpp:k1", "hello", 0s, 42);
    std::optional<ec::value> v = c.get("cpp:k1");
    CHECK(v.has_value() && v->str() == "hello" && v->size() == 5 && v->flags() == 42);
    CHECK(!c.get("cpp:missing").has_value());

    // Binary values through every byte-view source.
    const std::array<unsigned char, 6> bin{{'a', '\r', '\n', 0, 0xff, 'E'}};
    c.set("cpp:bin", bin);
    v = c.get("cpp:bin");
    CHECK(v && v->size() == bin.size() && std::memcmp(v->data(), bin.data(), bin.size()) == 0);
    const std::vector<std::byte> bytes{std::byte{0}, std::byte{1}, std::byte{2}};
    c.set("cpp:bytes", bytes);
    v = c.get("cpp:bytes");
    CHECK(v && std::vector<std::byte>(v->bytes().begin(), v->bytes().end()) == bytes);
    c.set("cpp:str", std::string("with\0nul", 8));
    CHECK(c.get("cpp:str")->str() == std::string_view("with\0nul", 8));
    c.set("cpp:empty", "");
    v = c.get("cpp:empty");
    CHECK(v && v->size() == 0);
#ifdef __cpp_lib_span
    c.set("cpp:span", std::span<const std::byte>(bytes));
    v = c.get("cpp:span");
    CHECK(v && v->bytes().span().size() == 3 && v->bytes().span()[2] == std::byte{2});
#endif

    CHECK(!c.add("cpp:k1", "x"));
    CHECK(c.add("cpp:new", "x", 60s));
    CHECK(!c.replace("cpp:nokey", "x"));
    CHECK(c.replace("cpp:new", "y"));
    CHECK(c.append("cpp:k1", "!") && c.prepend("cpp:k1", ">"));
    CHECK(!c.append("cpp:nokey", "!"));
    v = c.gets("cpp:k1");
    CHECK(v && v->str() == ">hello!" && v->cas() != 0);
    const std::uint64_t cas = v->cas();
    CHECK(c.cas("cpp:k1", "swapped", cas));
    CHECK(!c.cas("cpp:k1", "stale", cas)); // the item changed since
    CHECK(c.get("cpp:k1")->str() == "swapped");

    c.set("cpp:n", "10");
    CHECK(c.incr("cpp:n", 5) == std::optional<std::uint64_t>(15));
    CHECK(c.decr("cpp:n") == std::optional<std::uint64_t>(14));
    CHECK(!c.incr("cpp:nonum").has_value());
    expect_error(ec::status::client_error, [&] { (void)c.incr("cpp:k1"); });
    CHECK(c.touch("cpp:n", 100s) && !c.touch("cpp:nokey", 1s));
    CHECK(c.remove("cpp:n") && !c.remove("cpp:n"));

    // Error path: nothing is sent for a bad key; the error names the problem.
    const std::string msg = expect_error(ec::status::bad_key, [&] { c.set("bad key", "v"); });
    CHECK(!msg.empty());
    expect_error(ec::status::bad_key, [&] { (void)c.get(std::string(251, 'k')); });
    auto r = c.try_get("");
    CHECK(!r && r.code() == ec::status::bad_key && !r.message().empty());
    CHECK(ec::last_error_message() == r.message()); // the same thread's message
    CHECK(std::move(r).value_or(std::optional<ec::value>()) == std::nullopt);

    CHECK(c.server_for_key("cpp:k1") == test_server());
    CHECK(c.server_index_for_key("cpp:k1") == 0);
}

static void multi_key(const ec::client &c) {
    std::vector<ec::status> per_item;
    c.set_multi({{"cpp:m1", "one"}, {"cpp:m2", "two"}, {"cpp:m3", ""}}, 60s, &per_item);
    CHECK(per_item.size() == 3 && per_item[0] == ec::status::ok && per_item[2] == ec::status::ok);
    const std::map<std::string, std::string> more{{"cpp:m4", "four"}, {"cpp:m5", "five"}};
    c.set_multi(more);

    // A hit, a miss, a bad key, all in one call: per-key outcomes, in order.
    const std::vector<std::string> keys{"cpp:m1", "cpp:nope", "bad key", "cpp:m3", "cpp:m5"};
    const ec::multi_result m = c.get_multi(keys, true);
    CHECK(m.size() == keys.size());
    std::size_t i = 0;
    for (const auto &[key, item] : m) {
        CHECK(key == keys[i]);
        i++;
    }
    CHECK(i == keys.size());
    CHECK(m[0].item && m[0].item.str() == "one" && m[0].item.cas != 0 && m[0].item.error().empty());
    CHECK(!m[1].item && m[1].item.code == ec::status::not_found && m[1].item.error().empty());
    CHECK(m[2].item.code == ec::status::bad_key && !m[2].item.error().empty());
    CHECK(m[3].item && m[3].item.data.empty());
    CHECK(m[4].item.str() == "five");

    // The result owns its data and its copy of the keys: moving it keeps both.
    ec::multi_result moved;
    {
        ec::multi_result tmp = c.get_multi({std::string("cpp:m2"), std::string("cpp:m4")});
        moved = std::move(tmp);
        CHECK(!tmp && tmp.size() == 0);
    }
    CHECK(moved.size() == 2 && moved[0].key == "cpp:m2" && moved[0].item.str() == "two");
    CHECK(moved[1].key == "cpp:m4" && moved[1].item.str() == "four");
    CHECK(c.get_multi(std::vector<std::string_view>{}).size() == 0);

    CHECK(!c.try_set_multi({{"cpp:m1", "x"}}, 0s, &per_item, true)); // add: exists
    CHECK(per_item.size() == 1 && per_item[0] == ec::status::not_stored);
    expect_error(ec::status::not_found, [&] { c.delete_multi({"cpp:m1", "cpp:nope"}, &per_item); });
    CHECK(per_item.size() == 2 && per_item[0] == ec::status::ok && per_item[1] == ec::status::not_found);
    CHECK(!c.get("cpp:m1"));
}

static void stats_and_ring(const ec::client &c, const std::string &server) {
    const ec::stats s = c.stats();
    CHECK(s.size() == 1);
    for (const ec::stats_node &node : s) {
        CHECK(node.server() == server && node.code() == ec::status::ok && node.size() > 10);
        bool pid = false;
        for (const auto &[name, val] : node)
            pid = pid || (name == "pid" && !val.empty());
        CHECK(pid);
    }
    const ec::stats v = c.versions();
    CHECK(v.size() == 1 && v[0].size() == 1 && v[0][0].first == "version" && !v[0][0].second.empty());

    // The ring places keys as a client over the same servers does.
    const std::vector<std::string> servers{"10.0.0.1:11211", "10.0.0.2:11211", "10.0.0.3:11211"};
    const ec::ring r = ec::ring::create(servers);
    const ec::client fixed = ec::client::with_servers(servers);
    CHECK(r.size() == 3 && r.server(1) == "10.0.0.2:11211" && r.server(7).empty());
    for (const char *key : {"a", "user:1", "session:42", "z"}) {
        CHECK(r.lookup(key) == fixed.server_index_for_key(key));
        CHECK(r.server(r.lookup(key)) == fixed.server_for_key(key));
    }
    expect_error(ec::status::invalid_argument, [] { ec::ring::create({"a:1", "b:2"}, {}, {1}); });
}

int main() {
    const std::string server = test_server();
    CHECK(ec::library_version() == ELASTICACHE_VERSION);
    CHECK(std::string(ec::status_str(ec::status::not_found)).size() > 0);
    try {
        options_and_errors(server);
        ec::options opts;
        opts.set("io_timeout", 2000);
        const ec::client c = ec::client::with_servers({server}, opts);
        single_key(c);
        multi_key(c);
        stats_and_ring(c, server);
    } catch (const ec::error &e) {
        std::fprintf(stderr, "unexpected error %s: %s\n", ec::status_str(e.code()), e.what());
        failures++;
    }
    return checks_done("client_test");
}
