"""pylibmc's `autoconf.elasticache()`, on this library's discovery.

`elasticache(address="host:port")` asks the configuration endpoint now
(`config get cluster`, or the `AmazonElastiCache:cluster` item of older
engines) and returns a Client for the cluster behind it, kept up to date by
the library's refresh (pylibmc's returned a fixed list). Behaviors default to
pylibmc's (modula), so keys land where pylibmc's autoconf client put them.
"""

from . import discovery
from .client import Client
from .exceptions import DiscoveryError


class UnsupportedAutoconfMethod(Exception):
    """The endpoint does not support the configuration command asked for."""


class NoAutoconfFound(Exception):
    """The address is a memcached without any cluster configuration."""


def elasticache(address="127.0.0.1:11211", config_key=b"cluster", mc_key="AmazonElastiCache:cluster",
                behaviors=None, **kwargs):
    """A Client for the ElastiCache cluster whose configuration endpoint is
    `address`; NoAutoconfFound when it is plain memcached with no
    configuration. `behaviors` and other keywords go to Client.from_endpoint."""
    if config_key not in (b"cluster", "cluster") or mc_key != "AmazonElastiCache:cluster":
        raise UnsupportedAutoconfMethod(
            f"only config_key b'cluster' and mc_key 'AmazonElastiCache:cluster' are supported, "
            f"not {config_key!r}, {mc_key!r}")
    try:
        # Ask now (pylibmc's autoconf always asks); this also updates the
        # process-wide node cache the client below starts from.
        discovery.refresh(address)
    except DiscoveryError as e:
        if "not an ElastiCache configuration endpoint" in str(e):
            raise NoAutoconfFound(str(e)) from None
        raise
    return Client.from_endpoint(address, behaviors={} if behaviors is None else behaviors, **kwargs)
