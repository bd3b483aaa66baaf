/*
 * elasticache_base.hpp: the part of the C++ API that needs no client (status,
 * error, result<T>, bytes_view, value, options, config, ring). Include
 * elasticache.hpp, which includes this file; the conventions are described there.
 */
#ifndef ELASTICACHE_BASE_HPP
#define ELASTICACHE_BASE_HPP

#include "elasticache.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>
#if __cplusplus >= 202002L && defined(__has_include)
#if __has_include(<span>)
#include <span>
#endif
#endif

#ifndef ELASTICACHE_HPP_EXCEPTIONS
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
#define ELASTICACHE_HPP_EXCEPTIONS 1
#else
#define ELASTICACHE_HPP_EXCEPTIONS 0
#endif
#endif

namespace elasticache {

/// The C status codes (same numbers, see elasticache.h).
enum class status : std::uint32_t {
    ok = ELASTICACHE_STATUS_OK,
    not_found = ELASTICACHE_STATUS_NOT_FOUND,
    not_stored = ELASTICACHE_STATUS_NOT_STORED,
    exists = ELASTICACHE_STATUS_EXISTS,
    bad_key = ELASTICACHE_STATUS_BAD_KEY,
    too_big = ELASTICACHE_STATUS_TOO_BIG,
    timeout = ELASTICACHE_STATUS_TIMEOUT,
    connection = ELASTICACHE_STATUS_CONNECTION,
    protocol = ELASTICACHE_STATUS_PROTOCOL,
    server_error = ELASTICACHE_STATUS_SERVER_ERROR,
    client_error = ELASTICACHE_STATUS_CLIENT_ERROR,
    discovery = ELASTICACHE_STATUS_DISCOVERY,
    no_servers = ELASTICACHE_STATUS_NO_SERVERS,
    invalid_argument = ELASTICACHE_STATUS_INVALID_ARGUMENT,
    panic = ELASTICACHE_STATUS_PANIC,
    host_lookup = ELASTICACHE_STATUS_HOST_LOOKUP,
    tls = ELASTICACHE_STATUS_TLS,
    buffer_too_small = ELASTICACHE_STATUS_BUFFER_TOO_SMALL,
    server_dead = ELASTICACHE_STATUS_SERVER_DEAD,
};

/// A static description of a status code ("not found", ...).
inline const char *status_str(status s) noexcept { return elasticache_status_str(static_cast<std::uint32_t>(s)); }

/// This thread's last error message (empty after a successful call).
inline std::string last_error_message() {
    std::string msg(255, '\0');
    for (;;) {
        std::size_t n = 0;
        const std::uint32_t rc = elasticache_last_error_message(&msg[0], msg.size() + 1, &n);
        if (rc == ELASTICACHE_STATUS_BUFFER_TOO_SMALL && n > msg.size()) {
            msg.assign(n, '\0');
            continue;
        }
        msg.resize(rc == ELASTICACHE_STATUS_OK ? n : 0);
        return msg;
    }
}

/// The library's version ("0.1.0"); compare with ELASTICACHE_VERSION.
inline std::string_view library_version() noexcept { return elasticache_version(); }

/// What the throwing calls throw: the status code and the library's message
/// (which names the node or endpoint and the command).
class error : public std::runtime_error {
  public:
    error(status code, const std::string &message)
        : std::runtime_error(message.empty() ? std::string(status_str(code)) : message), code_(code) {}
    status code() const noexcept { return code_; }

  private:
    status code_;
};

namespace detail {
/// A failure on its way into any result<T>.
struct failure {
    status code;
    std::string message;
};
/// The failure of the C call that just returned `rc`, with this thread's message.
inline failure fail(std::uint32_t rc) { return {static_cast<status>(rc), last_error_message()}; }

[[noreturn]] inline void raise(status code, const std::string &message) {
#if ELASTICACHE_HPP_EXCEPTIONS
    throw error(code, message);
#else
    std::fprintf(stderr, "elasticache: unchecked error: %s (%s)\n", message.c_str(), status_str(code));
    std::abort();
#endif
}

inline const std::uint8_t *u8(const char *p) noexcept { return reinterpret_cast<const std::uint8_t *>(p); }

template <class T>
using elem_t = std::remove_cv_t<std::remove_pointer_t<decltype(std::data(std::declval<const T &>()))>>;
template <class E>
constexpr bool is_byte_v = std::is_same_v<E, char> || std::is_same_v<E, unsigned char> ||
                           std::is_same_v<E, signed char> || std::is_same_v<E, std::byte>;
template <class T, class = void> struct is_byte_range : std::false_type {};
template <class T>
struct is_byte_range<T, std::void_t<elem_t<T>, decltype(std::size(std::declval<const T &>()))>>
    : std::bool_constant<is_byte_v<elem_t<T>> && !std::is_array_v<T>> {};

/// Owns one C object and frees it with `Free`; move-only.
template <class T, void (*Free)(T *)> class handle {
  public:
    handle() noexcept = default;
    explicit handle(T *p) noexcept : p_(p) {}
    handle(handle &&o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    handle &operator=(handle &&o) noexcept {
        if (this != &o)
            reset(std::exchange(o.p_, nullptr));
        return *this;
    }
    handle(const handle &) = delete;
    handle &operator=(const handle &) = delete;
    ~handle() { Free(p_); }
    /// The C object (still owned here).
    T *get() const noexcept { return p_; }
    /// Gives up ownership: the caller frees the C object.
    T *release() noexcept { return std::exchange(p_, nullptr); }
    void reset(T *p = nullptr) noexcept { Free(std::exchange(p_, p)); }
    explicit operator bool() const noexcept { return p_ != nullptr; }

  protected:
    T *p_ = nullptr;
};

/// Iterates `owner[0..size())` by value, so elements may be proxies that
/// structured bindings take apart.
template <class Owner, class Item> class index_iterator {
  public:
    using iterator_category = std::input_iterator_tag;
    using value_type = Item;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = Item;
    index_iterator(const Owner *o, std::size_t i) noexcept : o_(o), i_(i) {}
    Item operator*() const { return (*o_)[i_]; }
    index_iterator &operator++() noexcept { return ++i_, *this; }
    index_iterator operator++(int) noexcept { return {o_, i_++}; }
    bool operator==(const index_iterator &b) const noexcept { return i_ == b.i_; }
    bool operator!=(const index_iterator &b) const noexcept { return i_ != b.i_; }

  private:
    const Owner *o_;
    std::size_t i_;
};
} // namespace detail

/// The outcome of a try_ call: a T, or a status code and message.
template <class T> class [[nodiscard]] result {
  public:
    result(T v) : value_(std::move(v)) {}
    result(detail::failure f) : code_(f.code), message_(std::move(f.message)) {}
    bool ok() const noexcept { return value_.has_value(); }
    explicit operator bool() const noexcept { return ok(); }
    /// status::ok on success.
    status code() const noexcept { return code_; }
    /// The library's message on failure, empty on success.
    const std::string &message() const noexcept { return message_; }
    /// The value; on failure throws error (aborts without exceptions: check ok() first).
    T &value() & { return check(), *value_; }
    const T &value() const & { return check(), *value_; }
    T &&value() && { return check(), std::move(*value_); }
    T &operator*() & { return value(); }
    const T &operator*() const & { return value(); }
    T &&operator*() && { return std::move(*this).value(); }
    T *operator->() { return &value(); }
    const T *operator->() const { return &value(); }
    template <class U> T value_or(U &&fallback) && {
        return ok() ? std::move(*value_) : static_cast<T>(std::forward<U>(fallback));
    }

  private:
    void check() const {
        if (!ok())
            detail::raise(code_, message_);
    }
    std::optional<T> value_;
    status code_ = status::ok;
    std::string message_;
};

/// The outcome of a try_ call that returns nothing.
template <> class [[nodiscard]] result<void> {
  public:
    result() noexcept = default;
    result(detail::failure f) : code_(f.code), message_(std::move(f.message)) {}
    bool ok() const noexcept { return code_ == status::ok; }
    explicit operator bool() const noexcept { return ok(); }
    status code() const noexcept { return code_; }
    const std::string &message() const noexcept { return message_; }
    /// Throws error on failure (aborts without exceptions).
    void value() const {
        if (!ok())
            detail::raise(code_, message_);
    }

  private:
    status code_ = status::ok;
    std::string message_;
};

namespace detail {
inline result<void> check(std::uint32_t rc) {
    if (rc != ELASTICACHE_STATUS_OK)
        return fail(rc);
    return {};
}
} // namespace detail

/// A non-owning view of bytes (a value to store, or a value read).
class bytes_view {
  public:
    constexpr bytes_view() noexcept = default;
    constexpr bytes_view(const std::byte *data, std::size_t size) noexcept : data_(data), size_(size) {}
    bytes_view(const void *data, std::size_t size) noexcept : data_(static_cast<const std::byte *>(data)), size_(size) {}
    /// A NUL-terminated string, without its NUL.
    bytes_view(const char *s) noexcept : bytes_view(std::string_view(s)) {}
    /// Any contiguous range of char, unsigned char or std::byte: std::string(_view),
    /// std::vector, std::array, std::span.
    template <class R, std::enable_if_t<detail::is_byte_range<R>::value, int> = 0>
    bytes_view(const R &r) noexcept : bytes_view(static_cast<const void *>(std::data(r)), std::size(r)) {}
    const std::byte *data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    const std::byte *begin() const noexcept { return data_; }
    const std::byte *end() const noexcept { return data_ + size_; }
    std::byte operator[](std::size_t i) const noexcept { return data_[i]; }
    /// The same bytes as text (not copied).
    std::string_view str() const noexcept { return {reinterpret_cast<const char *>(data_), size_}; }
#ifdef __cpp_lib_span
    std::span<const std::byte> span() const noexcept { return {data_, size_}; }
#endif
    const std::uint8_t *u8() const noexcept { return reinterpret_cast<const std::uint8_t *>(data_); }

  private:
    const std::byte *data_ = nullptr;
    std::size_t size_ = 0;
};

/// A value read by get/gets: bytes, flags and cas id.
class value : public detail::handle<elasticache_value, elasticache_value_free> {
  public:
    using handle::handle;
    const std::byte *data() const noexcept {
        return reinterpret_cast<const std::byte *>(elasticache_value_data(p_));
    }
    std::size_t size() const noexcept { return elasticache_value_len(p_); }
    bytes_view bytes() const noexcept { return {data(), size()}; }
    std::string_view str() const noexcept { return bytes().str(); }
    std::uint32_t flags() const noexcept { return elasticache_value_flags(p_); }
    /// Set by gets(); 0 otherwise.
    std::uint64_t cas() const noexcept { return elasticache_value_cas(p_); }
};

/// Options by name (see elasticache_options_set for the names). An empty
/// object (the default) stands for the library's defaults; the first set()
/// creates the C object.
class options : public detail::handle<elasticache_options, elasticache_options_free> {
  public:
    using handle::handle;
    result<void> try_set(std::string_view name, std::string_view value) {
        if (!p_) {
            if (auto r = detail::check(elasticache_options_new(&p_)); !r)
                return r;
        }
        const std::string n(name), v(value);
        return detail::check(elasticache_options_set(p_, n.c_str(), v.c_str()));
    }
    /// Numbers and booleans, written as the text the C call parses.
    template <class T, std::enable_if_t<std::is_integral_v<T>, int> = 0> result<void> try_set(std::string_view name, T v) {
        if constexpr (std::is_same_v<T, bool>)
            return try_set(name, std::string_view(v ? "true" : "false"));
        else
            return try_set(name, std::string_view(std::to_string(v)));
    }
#if ELASTICACHE_HPP_EXCEPTIONS
    /// Throws error on an unknown name or a bad value; returns *this to chain.
    template <class V> options &set(std::string_view name, const V &v) {
        try_set(name, v).value();
        return *this;
    }
#endif
};

/// Node `i` of a config.
struct config_node {
    std::string_view host;
    std::string_view ip; ///< empty when the endpoint listed none
    std::uint16_t port;
};

/// A discovered cluster configuration; iterable over its nodes.
class config : public detail::handle<elasticache_config, elasticache_config_free> {
  public:
    using handle::handle;
    /// Discovery through the process-global node cache.
    static result<config> try_discover(std::string_view endpoint, const options &opts = {}) {
        return call(elasticache_discover, endpoint, opts);
    }
    /// Asks the endpoint again now and updates the cache.
    static result<config> try_refresh(std::string_view endpoint, const options &opts = {}) {
        return call(elasticache_refresh, endpoint, opts);
    }
#if ELASTICACHE_HPP_EXCEPTIONS
    static config discover(std::string_view endpoint, const options &opts = {}) {
        return try_discover(endpoint, opts).value();
    }
    static config refresh(std::string_view endpoint, const options &opts = {}) {
        return try_refresh(endpoint, opts).value();
    }
#endif
    std::uint64_t version() const noexcept { return elasticache_config_version(p_); }
    bool is_serverless() const noexcept { return elasticache_config_is_serverless(p_); }
    std::size_t size() const noexcept { return elasticache_config_node_count(p_); }
    /// Node `i`, `i < size()`.
    config_node operator[](std::size_t i) const noexcept {
        const char *host = "", *ip = "";
        std::uint16_t port = 0;
        (void)elasticache_config_node(p_, i, &host, &ip, &port);
        return {host, ip, port};
    }
    detail::index_iterator<config, config_node> begin() const noexcept { return {this, 0}; }
    detail::index_iterator<config, config_node> end() const noexcept { return {this, size()}; }

  private:
    using fn = elasticache_status (*)(const char *, const elasticache_options *, elasticache_config **);
    static result<config> call(fn f, std::string_view endpoint, const options &opts) {
        const std::string ep(endpoint);
        elasticache_config *out = nullptr;
        if (const std::uint32_t rc = f(ep.c_str(), opts.get(), &out); rc != ELASTICACHE_STATUS_OK)
            return detail::fail(rc);
        return config(out);
    }
};
namespace detail {
/// Strings for a C `const char *const *` list (kept alive by the caller).
template <class R> std::vector<std::string> c_strings(const R &r) {
    std::vector<std::string> out;
    for (const auto &s : r)
        out.emplace_back(std::string_view(s));
    return out;
}
inline std::vector<const char *> c_ptrs(const std::vector<std::string> &v) {
    std::vector<const char *> out;
    for (const auto &s : v)
        out.push_back(s.c_str());
    return out;
}
// The C calls read one weight per server: a shorter vector must never reach them.
inline bool weights_fit(const std::vector<std::uint32_t> &w, std::size_t n) noexcept { return w.empty() || w.size() == n; }
inline failure bad_weights(const std::vector<std::uint32_t> &w, std::size_t n) {
    return {status::invalid_argument,
            "weights: " + std::to_string(w.size()) + " given for " + std::to_string(n) + " servers"};
}
} // namespace detail

/// A placement ring over a fixed server list (libmemcached's placement, no client).
class ring : public detail::handle<elasticache_ring, elasticache_ring_free> {
  public:
    using handle::handle;
    /// `weights` empty (all 1) or one per server.
    template <class Servers>
    static result<ring> try_create(const Servers &servers, const options &opts = {},
                                   const std::vector<std::uint32_t> &weights = {}) {
        const auto strs = detail::c_strings(servers);
        const auto ptrs = detail::c_ptrs(strs);
        if (!detail::weights_fit(weights, ptrs.size()))
            return detail::bad_weights(weights, ptrs.size());
        elasticache_ring *out = nullptr;
        const std::uint32_t rc = elasticache_ring_new(ptrs.data(), ptrs.size(), weights.empty() ? nullptr : weights.data(),
                                                      opts.get(), &out);
        if (rc != ELASTICACHE_STATUS_OK)
            return detail::fail(rc);
        return ring(out);
    }
    static result<ring> try_create(std::initializer_list<std::string_view> servers, const options &opts = {},
                                   const std::vector<std::uint32_t> &weights = {}) {
        return try_create<std::initializer_list<std::string_view>>(servers, opts, weights);
    }
    /// The index of the server owning `key`.
    result<std::size_t> try_lookup(std::string_view key) const {
        std::size_t i = 0;
        if (const std::uint32_t rc = elasticache_ring_lookup(p_, detail::u8(key.data()), key.size(), &i); rc != 0)
            return detail::fail(rc);
        return i;
    }
#if ELASTICACHE_HPP_EXCEPTIONS
    template <class Servers>
    static ring create(const Servers &servers, const options &opts = {}, const std::vector<std::uint32_t> &weights = {}) {
        return try_create(servers, opts, weights).value();
    }
    static ring create(std::initializer_list<std::string_view> servers, const options &opts = {},
                       const std::vector<std::uint32_t> &weights = {}) {
        return try_create(servers, opts, weights).value();
    }
    std::size_t lookup(std::string_view key) const { return try_lookup(key).value(); }
#endif
    std::size_t size() const noexcept { return elasticache_ring_server_count(p_); }
    /// Server `i`'s "host:port" (empty for an index out of range).
    std::string_view server(std::size_t i) const noexcept {
        const char *hp = "";
        (void)elasticache_ring_server(p_, i, &hp);
        return hp;
    }
};
} // namespace elasticache

#endif /* ELASTICACHE_BASE_HPP */
