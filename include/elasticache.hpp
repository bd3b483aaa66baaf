/*
 * elasticache.hpp: C++17 wrapper over the C API in elasticache.h. Header-only
 * (with elasticache_base.hpp, which it includes),
 * no behaviour of its own: every call is one C call (or a few, to read a
 * result), every owning type frees through the matching C `_free` call.
 *
 * - Owning types (client, value, multi_result, config, stats, options, ring)
 *   are move-only; a moved-from or default-constructed one holds NULL, which
 *   the C API answers with INVALID_ARGUMENT, never a crash.
 * - Keys are std::string_view; values are bytes_view, which takes strings,
 *   string literals, std::vector<char/unsigned char/std::byte>, std::array
 *   and (C++20) std::span of bytes.
 * - Every operation comes twice: `try_x(...)` returns a result<T> and never
 *   throws a library error (the path for code built with -fno-exceptions);
 *   `x(...)` returns the T and throws elasticache::error on failure (only
 *   declared when exceptions are enabled).
 * - Expected outcomes are values, not errors: a miss is an empty optional,
 *   `add` on an existing key is `false`, `cas` on a changed item is `false`.
 * - Views handed out (value::str(), multi entries, config nodes, stats
 *   entries, ring servers) live as long as the object they come from.
 * - Thread safety is the C API's: one client may be used from many threads.
 */
#ifndef ELASTICACHE_HPP
#define ELASTICACHE_HPP

#include "elasticache_base.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace elasticache {

/// One key's answer in a multi-get.
struct multi_item {
    status code;        ///< ok (hit), not_found (miss), or the error this key met
    bytes_view data;    ///< the value on a hit (lives as long as the multi_result)
    std::uint32_t flags;
    std::uint64_t cas;  ///< with get_multi(keys, true)
    const char *error_text; ///< the per-key error message, or NULL
    bool found() const noexcept { return code == status::ok; }
    explicit operator bool() const noexcept { return found(); }
    std::string_view str() const noexcept { return data.str(); }
    std::string_view error() const noexcept { return error_text ? error_text : ""; }
};

/// An element of a multi_result: `for (auto [key, item] : result)`.
struct multi_entry {
    std::string_view key;
    multi_item item;
};

/// The answer to get_multi: one entry per key asked, in order.
class multi_result : public detail::handle<elasticache_multi, elasticache_multi_free> {
  public:
    multi_result() noexcept = default;
    /// Takes `m` and a copy of the keys asked (back to back, with their lengths).
    multi_result(elasticache_multi *m, std::string keys, const std::vector<std::size_t> &lens)
        : handle(m), keys_(std::move(keys)), offsets_(lens.size() + 1, 0) {
        for (std::size_t i = 0; i < lens.size(); ++i)
            offsets_[i + 1] = offsets_[i] + lens[i];
    }
    std::size_t size() const noexcept { return elasticache_multi_count(p_); }
    /// Entry `i`, `i < size()`.
    multi_entry operator[](std::size_t i) const noexcept {
        const std::uint8_t *data = nullptr;
        std::size_t len = 0;
        std::uint32_t flags = 0;
        std::uint64_t cas = 0;
        const auto code = static_cast<status>(elasticache_multi_item(p_, i, &data, &len, &flags, &cas));
        std::string_view key;
        if (i + 1 < offsets_.size())
            key = std::string_view(keys_).substr(offsets_[i], offsets_[i + 1] - offsets_[i]);
        return {key, {code, bytes_view(data, len), flags, cas, elasticache_multi_error(p_, i)}};
    }
    detail::index_iterator<multi_result, multi_entry> begin() const noexcept { return {this, 0}; }
    detail::index_iterator<multi_result, multi_entry> end() const noexcept { return {this, size()}; }

  private:
    std::string keys_;
    std::vector<std::size_t> offsets_;
};

/// Node `i` of a stats result; iterable over its (name, value) entries.
class stats_node {
  public:
    stats_node(const elasticache_stats *s, std::size_t i) noexcept : s_(s), i_(i) {
        (void)elasticache_stats_node(s, i, &server_, &code_, &entries_);
    }
    std::string_view server() const noexcept { return server_; }
    /// The status of the request to this node (a failed node has no entries).
    status code() const noexcept { return static_cast<status>(code_); }
    /// What the request to this node met; empty when it answered.
    std::string_view error() const noexcept {
        const char *e = elasticache_stats_error(s_, i_);
        return e ? e : "";
    }
    std::size_t size() const noexcept { return entries_; }
    std::pair<std::string_view, std::string_view> operator[](std::size_t j) const noexcept {
        const char *name = "", *val = "";
        (void)elasticache_stats_entry(s_, i_, j, &name, &val);
        return {name, val};
    }
    using iterator = detail::index_iterator<stats_node, std::pair<std::string_view, std::string_view>>;
    iterator begin() const noexcept { return {this, 0}; }
    iterator end() const noexcept { return {this, size()}; }

  private:
    const elasticache_stats *s_;
    std::size_t i_;
    const char *server_ = "";
    std::uint32_t code_ = ELASTICACHE_STATUS_INVALID_ARGUMENT;
    std::size_t entries_ = 0;
};

/// Per-node answers to stats() or versions(); iterable over nodes.
class stats : public detail::handle<elasticache_stats, elasticache_stats_free> {
  public:
    using handle::handle;
    std::size_t size() const noexcept { return elasticache_stats_node_count(p_); }
    stats_node operator[](std::size_t i) const noexcept { return {p_, i}; }
    detail::index_iterator<stats, stats_node> begin() const noexcept { return {this, 0}; }
    detail::index_iterator<stats, stats_node> end() const noexcept { return {this, size()}; }
};

namespace detail {
/// Keys back to back in one buffer, with pointers into it and lengths, as the multi calls take.
struct key_list {
    std::string buf;
    std::vector<std::size_t> lens;
    std::vector<const std::uint8_t *> ptrs;
    template <class R> explicit key_list(const R &keys) {
        for (const auto &k : keys) {
            const std::string_view s(k);
            buf.append(s);
            lens.push_back(s.size());
        }
        std::size_t off = 0;
        for (const std::size_t n : lens)
            ptrs.push_back(u8(buf.data()) + off), off += n;
    }
};
inline void to_statuses(const std::vector<std::uint32_t> &raw, std::vector<status> *out) {
    if (!out)
        return;
    out->clear();
    for (const std::uint32_t s : raw)
        out->push_back(static_cast<status>(s));
}
} // namespace detail

/// A client over a cluster; safe to share between threads (every method is const).
class client : public detail::handle<elasticache_client, elasticache_client_free> {
  public:
    using handle::handle;
    using seconds = std::chrono::seconds;

    /// A client for the cluster behind a configuration endpoint ("host:port").
    static result<client> try_connect(std::string_view endpoint, const options &opts = {}) {
        const std::string ep(endpoint);
        elasticache_client *out = nullptr;
        if (const std::uint32_t rc = elasticache_client_new(ep.c_str(), opts.get(), &out); rc != 0)
            return detail::fail(rc);
        return client(out);
    }
    /// A client over a fixed server list; `weights` empty or one per server.
    template <class Servers>
    static result<client> try_with_servers(const Servers &servers, const options &opts = {},
                                           const std::vector<std::uint32_t> &weights = {}) {
        const auto strs = detail::c_strings(servers);
        const auto ptrs = detail::c_ptrs(strs);
        if (!detail::weights_fit(weights, ptrs.size()))
            return detail::bad_weights(weights, ptrs.size());
        elasticache_client *out = nullptr;
        const std::uint32_t rc = elasticache_client_new_servers(
            ptrs.data(), ptrs.size(), weights.empty() ? nullptr : weights.data(), opts.get(), &out);
        if (rc != ELASTICACHE_STATUS_OK)
            return detail::fail(rc);
        return client(out);
    }
    static result<client> try_with_servers(std::initializer_list<std::string_view> servers, const options &opts = {},
                                           const std::vector<std::uint32_t> &weights = {}) {
        return try_with_servers<std::initializer_list<std::string_view>>(servers, opts, weights);
    }

    /// The value, or an empty optional on a miss.
    result<std::optional<value>> try_get(std::string_view key) const { return read(elasticache_get, key); }
    /// As try_get, with the cas id read too.
    result<std::optional<value>> try_gets(std::string_view key) const { return read(elasticache_gets, key); }
    /// Stores `v` under `key`; `exptime` 0 = never (beyond 30 days: a unix time).
    result<void> try_set(std::string_view key, bytes_view v, seconds exptime = {}, std::uint32_t flags = 0) const {
        return detail::check(store(elasticache_set, key, v, exptime, flags));
    }
    /// false when the key already exists.
    result<bool> try_add(std::string_view key, bytes_view v, seconds exptime = {}, std::uint32_t flags = 0) const {
        return stored(store(elasticache_add, key, v, exptime, flags));
    }
    /// false when the key does not exist (so for append and prepend).
    result<bool> try_replace(std::string_view key, bytes_view v, seconds exptime = {}, std::uint32_t flags = 0) const {
        return stored(store(elasticache_replace, key, v, exptime, flags));
    }
    result<bool> try_append(std::string_view key, bytes_view v) const {
        return stored(store(elasticache_append, key, v, {}, 0));
    }
    result<bool> try_prepend(std::string_view key, bytes_view v) const {
        return stored(store(elasticache_prepend, key, v, {}, 0));
    }
    /// false when the item changed since gets() read `cas_id`, or is gone.
    result<bool> try_cas(std::string_view key, bytes_view v, std::uint64_t cas_id, seconds exptime = {},
                         std::uint32_t flags = 0) const {
        const std::uint32_t rc = elasticache_cas(p_, detail::u8(key.data()), key.size(), v.u8(), v.size(), flags,
                                                 exptime.count(), cas_id);
        return rc == ELASTICACHE_STATUS_EXISTS || rc == ELASTICACHE_STATUS_NOT_FOUND ? result<bool>(false) : stored(rc);
    }
    /// false when the key did not exist.
    result<bool> try_remove(std::string_view key) const {
        return found(elasticache_delete(p_, detail::u8(key.data()), key.size()));
    }
    /// false when the key did not exist.
    result<bool> try_touch(std::string_view key, seconds exptime) const {
        return found(elasticache_touch(p_, detail::u8(key.data()), key.size(), exptime.count()));
    }
    /// The new number, or an empty optional on a miss.
    result<std::optional<std::uint64_t>> try_incr(std::string_view key, std::uint64_t delta = 1) const {
        return count(elasticache_incr, key, delta);
    }
    result<std::optional<std::uint64_t>> try_decr(std::string_view key, std::uint64_t delta = 1) const {
        return count(elasticache_decr, key, delta);
    }
    result<void> try_flush_all(seconds delay = {}) const {
        return detail::check(elasticache_flush_all(p_, static_cast<std::uint32_t>(delay.count())));
    }
    /// "host:port" of the node that owns `key` now.
    result<std::string> try_server_for_key(std::string_view key) const {
        std::string buf(63, '\0');
        for (;;) {
            std::size_t n = 0;
            const std::uint32_t rc = elasticache_server_for_key(p_, detail::u8(key.data()), key.size(), &buf[0],
                                                                buf.size() + 1, &n);
            if (rc == ELASTICACHE_STATUS_BUFFER_TOO_SMALL && n > buf.size()) {
                buf.assign(n, '\0');
                continue;
            }
            if (rc != ELASTICACHE_STATUS_OK)
                return detail::fail(rc);
            buf.resize(n);
            return buf;
        }
    }
    /// Position of the node owning `key` in the client's node list.
    result<std::size_t> try_server_index_for_key(std::string_view key) const {
        std::size_t i = 0;
        if (const std::uint32_t rc = elasticache_server_index_for_key(p_, detail::u8(key.data()), key.size(), &i);
            rc != 0)
            return detail::fail(rc);
        return i;
    }
    /// Every key asked, one request per node; per-key outcomes in the result.
    template <class Keys> result<multi_result> try_get_multi(const Keys &keys, bool with_cas = false) const {
        detail::key_list k(keys);
        elasticache_multi *out = nullptr;
        const std::uint32_t rc =
            elasticache_get_multi(p_, k.ptrs.data(), k.lens.data(), k.lens.size(), with_cas, &out);
        if (rc != ELASTICACHE_STATUS_OK)
            return detail::fail(rc);
        return multi_result(out, std::move(k.buf), k.lens);
    }
    result<multi_result> try_get_multi(std::initializer_list<std::string_view> keys, bool with_cas = false) const {
        return try_get_multi<std::initializer_list<std::string_view>>(keys, with_cas);
    }
    /// Stores every (key, value) pair of `items` (set, or add when `add`); fails
    /// with the first failing item's status; `per_item` (when given) gets every one.
    template <class Items>
    result<void> try_set_multi(const Items &items, seconds exptime = {}, std::vector<status> *per_item = nullptr,
                               bool add = false) const {
        std::vector<std::string_view> keys;
        std::vector<const std::uint8_t *> vals;
        std::vector<std::size_t> vlens;
        for (const auto &it : items) {
            keys.emplace_back(it.first);
            const bytes_view v(it.second);
            vals.push_back(v.u8());
            vlens.push_back(v.size());
        }
        detail::key_list k(keys);
        std::vector<std::uint32_t> raw(keys.size());
        const std::uint32_t rc = elasticache_set_multi(p_, k.ptrs.data(), k.lens.data(), vals.data(), vlens.data(),
                                                       nullptr, exptime.count(), add, keys.size(), raw.data());
        detail::to_statuses(raw, per_item);
        return detail::check(rc);
    }
    result<void> try_set_multi(std::initializer_list<std::pair<std::string_view, bytes_view>> items,
                               seconds exptime = {}, std::vector<status> *per_item = nullptr, bool add = false) const {
        return try_set_multi<decltype(items)>(items, exptime, per_item, add);
    }
    /// Deletes every key; not_found for one that did not exist.
    template <class Keys> result<void> try_delete_multi(const Keys &keys, std::vector<status> *per_item = nullptr) const {
        detail::key_list k(keys);
        std::vector<std::uint32_t> raw(k.lens.size());
        const std::uint32_t rc = elasticache_delete_multi(p_, k.ptrs.data(), k.lens.data(), k.lens.size(), raw.data());
        detail::to_statuses(raw, per_item);
        return detail::check(rc);
    }
    result<void> try_delete_multi(std::initializer_list<std::string_view> keys,
                                  std::vector<status> *per_item = nullptr) const {
        return try_delete_multi<decltype(keys)>(keys, per_item);
    }
    /// `stats` (or `stats ARG`) from every node.
    result<elasticache::stats> try_stats(std::string_view arg = {}) const {
        const std::string a(arg);
        elasticache_stats *out = nullptr;
        if (const std::uint32_t rc = elasticache_client_stats(p_, arg.empty() ? nullptr : a.c_str(), &out); rc != 0)
            return detail::fail(rc);
        return elasticache::stats(out);
    }
    result<elasticache::stats> try_versions() const {
        elasticache_stats *out = nullptr;
        if (const std::uint32_t rc = elasticache_client_versions(p_, &out); rc != 0)
            return detail::fail(rc);
        return elasticache::stats(out);
    }
    result<void> try_refresh() const { return detail::check(elasticache_client_refresh(p_)); }
    result<void> try_disconnect_all() const { return detail::check(elasticache_client_disconnect_all(p_)); }

#if ELASTICACHE_HPP_EXCEPTIONS
    /// The throwing forms: the same calls, throwing error instead of returning a failed result.
    explicit client(std::string_view endpoint, const options &opts = {}) : client(try_connect(endpoint, opts).value()) {}
    template <class Servers>
    static client with_servers(const Servers &servers, const options &opts = {},
                               const std::vector<std::uint32_t> &weights = {}) {
        return try_with_servers(servers, opts, weights).value();
    }
    static client with_servers(std::initializer_list<std::string_view> servers, const options &opts = {},
                               const std::vector<std::uint32_t> &weights = {}) {
        return try_with_servers(servers, opts, weights).value();
    }
    std::optional<value> get(std::string_view key) const { return try_get(key).value(); }
    std::optional<value> gets(std::string_view key) const { return try_gets(key).value(); }
    void set(std::string_view key, bytes_view v, seconds exptime = {}, std::uint32_t flags = 0) const {
        try_set(key, v, exptime, flags).value();
    }
    bool add(std::string_view key, bytes_view v, seconds exptime = {}, std::uint32_t flags = 0) const {
        return try_add(key, v, exptime, flags).value();
    }
    bool replace(std::string_view key, bytes_view v, seconds exptime = {}, std::uint32_t flags = 0) const {
        return try_replace(key, v, exptime, flags).value();
    }
    bool append(std::string_view key, bytes_view v) const { return try_append(key, v).value(); }
    bool prepend(std::string_view key, bytes_view v) const { return try_prepend(key, v).value(); }
    bool cas(std::string_view key, bytes_view v, std::uint64_t cas_id, seconds exptime = {},
             std::uint32_t flags = 0) const {
        return try_cas(key, v, cas_id, exptime, flags).value();
    }
    bool remove(std::string_view key) const { return try_remove(key).value(); }
    bool touch(std::string_view key, seconds exptime) const { return try_touch(key, exptime).value(); }
    std::optional<std::uint64_t> incr(std::string_view key, std::uint64_t delta = 1) const {
        return try_incr(key, delta).value();
    }
    std::optional<std::uint64_t> decr(std::string_view key, std::uint64_t delta = 1) const {
        return try_decr(key, delta).value();
    }
    void flush_all(seconds delay = {}) const { try_flush_all(delay).value(); }
    std::string server_for_key(std::string_view key) const { return try_server_for_key(key).value(); }
    std::size_t server_index_for_key(std::string_view key) const { return try_server_index_for_key(key).value(); }
    template <class Keys> multi_result get_multi(const Keys &keys, bool with_cas = false) const {
        return try_get_multi(keys, with_cas).value();
    }
    multi_result get_multi(std::initializer_list<std::string_view> keys, bool with_cas = false) const {
        return try_get_multi(keys, with_cas).value();
    }
    template <class Items>
    void set_multi(const Items &items, seconds exptime = {}, std::vector<status> *per_item = nullptr,
                   bool add = false) const {
        try_set_multi(items, exptime, per_item, add).value();
    }
    void set_multi(std::initializer_list<std::pair<std::string_view, bytes_view>> items, seconds exptime = {},
                   std::vector<status> *per_item = nullptr, bool add = false) const {
        try_set_multi(items, exptime, per_item, add).value();
    }
    template <class Keys> void delete_multi(const Keys &keys, std::vector<status> *per_item = nullptr) const {
        try_delete_multi(keys, per_item).value();
    }
    void delete_multi(std::initializer_list<std::string_view> keys, std::vector<status> *per_item = nullptr) const {
        try_delete_multi(keys, per_item).value();
    }
    elasticache::stats stats(std::string_view arg = {}) const { return try_stats(arg).value(); }
    elasticache::stats versions() const { return try_versions().value(); }
    void refresh() const { try_refresh().value(); }
    void disconnect_all() const { try_disconnect_all().value(); }
#endif

  private:
    using read_fn = elasticache_status (*)(const elasticache_client *, const std::uint8_t *, std::size_t,
                                           elasticache_value **);
    using store_fn = elasticache_status (*)(const elasticache_client *, const std::uint8_t *, std::size_t,
                                            const std::uint8_t *, std::size_t, std::uint32_t, std::int64_t);
    using count_fn = elasticache_status (*)(const elasticache_client *, const std::uint8_t *, std::size_t,
                                            std::uint64_t, std::uint64_t *);
    result<std::optional<value>> read(read_fn f, std::string_view key) const {
        elasticache_value *out = nullptr;
        const std::uint32_t rc = f(p_, detail::u8(key.data()), key.size(), &out);
        if (rc == ELASTICACHE_STATUS_NOT_FOUND)
            return std::optional<value>();
        if (rc != ELASTICACHE_STATUS_OK)
            return detail::fail(rc);
        return std::optional<value>(value(out));
    }
    std::uint32_t store(store_fn f, std::string_view key, bytes_view v, seconds exptime, std::uint32_t flags) const {
        return f(p_, detail::u8(key.data()), key.size(), v.u8(), v.size(), flags, exptime.count());
    }
    static result<bool> stored(std::uint32_t rc) {
        if (rc == ELASTICACHE_STATUS_NOT_STORED)
            return false;
        if (rc != ELASTICACHE_STATUS_OK)
            return detail::fail(rc);
        return true;
    }
    static result<bool> found(std::uint32_t rc) {
        if (rc == ELASTICACHE_STATUS_NOT_FOUND)
            return false;
        if (rc != ELASTICACHE_STATUS_OK)
            return detail::fail(rc);
        return true;
    }
    result<std::optional<std::uint64_t>> count(count_fn f, std::string_view key, std::uint64_t delta) const {
        std::uint64_t n = 0;
        const std::uint32_t rc = f(p_, detail::u8(key.data()), key.size(), delta, &n);
        if (rc == ELASTICACHE_STATUS_NOT_FOUND)
            return std::optional<std::uint64_t>();
        if (rc != ELASTICACHE_STATUS_OK)
            return detail::fail(rc);
        return std::optional<std::uint64_t>(n);
    }
};
} // namespace elasticache

#endif /* ELASTICACHE_HPP */
