"""Server specs: pylibmc's forms ("host", "host:port", "host:port:weight",
"[v6]:port", "udp:...", "/unix/path", (type, host, port[, weight]) tuples),
translated to the "host:port" text the library parses itself."""

server_type_tcp = 1
server_type_udp = 2
server_type_unix = 4


def translate_server_spec(server, port=11211, weight=1):
    """pylibmc's `translate_server_spec`: a spec -> (type, address, port, weight),
    type being server_type_tcp, server_type_udp or server_type_unix. Only the
    parsing: UDP and UNIX sockets parse here but a Client refuses them."""
    if server.startswith("/"):
        return (server_type_unix, server, 0, int(weight))
    stype = server_type_tcp
    if server.startswith("udp:"):
        stype, server = server_type_udp, server[4:]
    rest = ""
    if server.startswith("["):
        close = server.find("]")
        if close < 0:
            raise ValueError(server)
        addr, rest = server[1:close], server[close + 1:]
        if rest and not rest.startswith(":"):
            raise ValueError(server)
        rest = rest[1:]
    else:
        addr, _, rest = server.partition(":")
    if rest:
        p, _, w = rest.partition(":")
        port = p
        if w:
            weight = w
    return (stype, str(addr), int(port), int(weight))


def split_server(spec):
    """A server spec -> ("host:port" text for the library, weight); UDP and
    UNIX sockets are refused (ValueError)."""
    if isinstance(spec, tuple):
        if len(spec) < 3 or spec[0] != server_type_tcp:
            raise ValueError(f"unsupported server {spec!r}: only TCP servers are supported")
        host, port = spec[1], spec[2]
        weight = spec[3] if len(spec) > 3 else 1
    else:
        if not isinstance(spec, str):
            raise TypeError(f"server must be a 'host:port' string, not {type(spec).__name__}")
        if spec.startswith("unix:") or spec.startswith("/"):
            raise ValueError(f"unsupported server {spec!r}: UNIX sockets are not supported")
        if spec.startswith("udp:"):
            raise ValueError(f"unsupported server {spec!r}: UDP is not supported")
        if ":" in spec and not spec.startswith("[") and spec.count(":") > 2:
            return spec, 1  # a bare IPv6 address: the library reads it whole
        _, host, port, weight = translate_server_spec(spec)
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{port}", int(weight)

