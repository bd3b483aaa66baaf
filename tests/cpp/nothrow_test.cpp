// The non-throwing half of elasticache.hpp, built with -fno-exceptions (the
// throwing calls must then not exist) against a real memcached whose address
// is in $ELASTICACHE_TEST_SERVER.
#include "elasticache.hpp"

#include "check.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>

#if ELASTICACHE_HPP_EXCEPTIONS || defined(__cpp_exceptions)
#error "nothrow_test must be built with -fno-exceptions"
#endif

namespace ec = elasticache;
using namespace std::chrono_literals;

// Without exceptions the throwing forms are not declared at all.
template <class C, class = void> struct has_throwing_get : std::false_type {};
template <class C>
struct has_throwing_get<C, std::void_t<decltype(std::declval<const C &>().get(std::string_view()))>> : std::true_type {};
static_assert(!has_throwing_get<ec::client>::value, "throwing API visible under -fno-exceptions");

int main() {
    const char *server = test_server();
    ec::options opts;
    CHECK(opts.try_set("io_timeout", 2000).ok());
    const auto bad_opt = opts.try_set("io_timeout", "soon");
    CHECK(!bad_opt && bad_opt.code() == ec::status::invalid_argument && !bad_opt.message().empty());

    auto made = ec::client::try_with_servers({server}, opts);
    CHECK(made.ok());
    if (!made)
        return 1;
    const ec::client c = std::move(made).value();

    CHECK(c.try_set("nothrow:k", "v1", 30s, 7).ok());
    auto got = c.try_get("nothrow:k");
    CHECK(got.ok() && got->has_value() && (*got)->str() == "v1" && (*got)->flags() == 7);
    auto miss = c.try_get("nothrow:missing");
    CHECK(miss.ok() && !miss->has_value());

    const auto added = c.try_add("nothrow:k", "v2");
    CHECK(added.ok() && !*added);
    const auto n = c.try_incr("nothrow:k");
    CHECK(!n && n.code() == ec::status::client_error && !n.message().empty());

    // The error path: a bad key is refused before anything is sent.
    const auto bad = c.try_set("bad key", "v");
    CHECK(!bad && bad.code() == ec::status::bad_key && bad.message().find("key") != std::string::npos);

    auto m = c.try_get_multi({"nothrow:k", "nothrow:missing"});
    CHECK(m.ok() && m->size() == 2);
    if (m) {
        for (const auto &[key, item] : *m)
            CHECK((key == "nothrow:k") == item.found());
    }
    const auto discovered = ec::config::try_discover(server);
    CHECK(!discovered && discovered.code() == ec::status::discovery);
    CHECK(c.try_remove("nothrow:k").value_or(false));

    return checks_done("nothrow_test");
}
