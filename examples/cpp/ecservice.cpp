// ecservice: a small C++ service over elasticache.hpp. A pool of worker
// threads answers "profile" requests through one shared client (cache-aside:
// a miss is built from the "database" and stored), a batch request reads many
// profiles with one multi-get, and a request with a malformed id shows the
// error path: the library refuses the key before sending anything and the
// service answers 400 with the library's message.
//
//   ecservice --servers HOST:PORT[,HOST:PORT...] [--threads N] [--requests N]
//   ecservice --endpoint CFG_HOST:PORT ...     (an ElastiCache configuration endpoint)
#include "elasticache.hpp"

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <queue>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace ec = elasticache;
using namespace std::chrono_literals;

namespace {

/// A fixed set of workers draining one queue; the destructor finishes the queue.
class thread_pool {
  public:
    explicit thread_pool(unsigned n) {
        for (unsigned i = 0; i < n; ++i)
            workers_.emplace_back([this] { run(); });
    }
    ~thread_pool() {
        {
            std::lock_guard<std::mutex> lock(mu_);
            stopping_ = true;
        }
        cv_.notify_all();
        for (auto &t : workers_)
            t.join();
    }
    thread_pool(const thread_pool &) = delete;
    thread_pool &operator=(const thread_pool &) = delete;
    void submit(std::function<void()> job) {
        {
            std::lock_guard<std::mutex> lock(mu_);
            jobs_.push(std::move(job));
        }
        cv_.notify_one();
    }

  private:
    void run() {
        for (;;) {
            std::function<void()> job;
            {
                std::unique_lock<std::mutex> lock(mu_);
                cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
                if (jobs_.empty())
                    return;
                job = std::move(jobs_.front());
                jobs_.pop();
            }
            job();
        }
    }
    std::vector<std::thread> workers_;
    std::queue<std::function<void()>> jobs_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool stopping_ = false;
};

/// The service: stateless apart from the shared client and its counters.
class profile_service {
  public:
    profile_service(const ec::client &cache, std::string prefix) : cache_(cache), prefix_(std::move(prefix)) {}

    /// One request: an HTTP-like status and body.
    std::pair<int, std::string> profile(const std::string &user) {
        const std::string key = prefix_ + user;
        try {
            if (auto hit = cache_.get(key)) {
                hits_++;
                return {200, std::string(hit->str())};
            }
            misses_++;
            std::string body = load_from_database(user);
            cache_.set(key, body, 60s);
            return {200, body};
        } catch (const ec::error &e) {
            if (e.code() == ec::status::bad_key)
                return {400, std::string("bad user id: ") + e.what()};
            // The cache is down or slow: serve from the source of truth.
            std::fprintf(stderr, "cache unavailable (%s): %s\n", ec::status_str(e.code()), e.what());
            return {200, load_from_database(user)};
        }
    }

    /// Many profiles in one round trip per node; the ones not cached are reported.
    std::pair<int, int> batch(const std::vector<std::string> &users) {
        std::vector<std::string> keys;
        for (const auto &u : users)
            keys.push_back(prefix_ + u);
        int hits = 0, missing = 0;
        for (const auto &[key, item] : cache_.get_multi(keys)) {
            if (item)
                hits++;
            else if (item.code == ec::status::not_found)
                missing++;
            else
                std::fprintf(stderr, "%.*s: %.*s\n", static_cast<int>(key.size()), key.data(),
                             static_cast<int>(item.error().size()), item.error().data());
        }
        return {hits, missing};
    }

    unsigned hits() const { return hits_; }
    unsigned misses() const { return misses_; }

  private:
    static std::string load_from_database(const std::string &user) { return "{\"user\":\"" + user + "\"}"; }
    const ec::client &cache_;
    std::string prefix_;
    std::atomic<unsigned> hits_{0}, misses_{0};
};

std::vector<std::string> split(const std::string &s) {
    std::vector<std::string> out;
    std::size_t start = 0;
    for (std::size_t comma; (comma = s.find(',', start)) != std::string::npos; start = comma + 1)
        out.push_back(s.substr(start, comma - start));
    out.push_back(s.substr(start));
    return out;
}

int usage() {
    std::fprintf(stderr, "usage: ecservice (--servers H:P[,H:P...] | --endpoint H:P) [--threads N] [--requests N]\n");
    return 2;
}

} // namespace

int main(int argc, char **argv) {
    std::string servers, endpoint;
    unsigned threads = 4, requests = 400;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string opt = argv[i], val = argv[i + 1];
        if (opt == "--servers")
            servers = val;
        else if (opt == "--endpoint")
            endpoint = val;
        else if (opt == "--threads")
            threads = static_cast<unsigned>(std::strtoul(val.c_str(), nullptr, 10));
        else if (opt == "--requests")
            requests = static_cast<unsigned>(std::strtoul(val.c_str(), nullptr, 10));
        else
            return usage();
    }
    if (servers.empty() == endpoint.empty() || threads == 0 || argc % 2 == 0)
        return usage();

    try {
        ec::options opts;
        opts.set("io_timeout", 1000).set("connect_timeout", 1000);
        const ec::client cache =
            endpoint.empty() ? ec::client::with_servers(split(servers), opts) : ec::client(endpoint, opts);
        // A run's keys are its own: concurrent runs against one server do not mix.
        profile_service svc(cache, "ecservice:" + std::to_string(getpid()) + ":");

        const unsigned users = 50;
        std::atomic<unsigned> ok{0};
        {
            thread_pool pool(threads);
            for (unsigned i = 0; i < requests; ++i)
                pool.submit([&, i] {
                    if (svc.profile("user" + std::to_string(i % users)).first == 200)
                        ok++;
                });
        }
        std::printf("served %u/%u requests on %u threads: %u hits, %u misses\n", ok.load(), requests, threads,
                    svc.hits(), svc.misses());

        std::vector<std::string> wanted;
        for (unsigned u = 0; u < 20; ++u)
            wanted.push_back("user" + std::to_string(u));
        wanted.push_back("nobody");
        const auto [hits, missing] = svc.batch(wanted);
        std::printf("batch of %zu: %d hits, %d missing\n", wanted.size(), hits, missing);

        const auto [code, body] = svc.profile("robert'); drop table");
        std::printf("error path: %d %s\n", code, body.c_str());
        return ok == requests ? 0 : 1;
    } catch (const ec::error &e) {
        std::fprintf(stderr, "ecservice: %s: %s\n", ec::status_str(e.code()), e.what());
        return 1;
    }
}
