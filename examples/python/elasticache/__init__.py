"""elasticache: a pylibmc-compatible client for Amazon ElastiCache (memcached)
over libelasticache (auto-discovery, libmemcached-compatible placement).

    import elasticache
    mc = elasticache.Client.from_endpoint("mycluster.abc123.cfg.use1.cache.amazonaws.com:11211")
    mc.set("key", {"any": "picklable value"})
    mc.get("key")

`elasticache.Client([...servers...], behaviors={...})` takes pylibmc's
arguments; the exceptions carry pylibmc's names. `install_as_pylibmc()`
makes `import pylibmc` give this package. See README.md.
"""

from . import _native
from . import behaviors
from .behaviors import ALL_BEHAVIORS as all_behaviors
from .behaviors import ALL_CALLBACKS as all_callbacks
from .behaviors import DISTRIBUTIONS as _DISTRIBUTIONS
from .behaviors import HASHERS as _HASHERS
from .client import BehaviorDict, Client
from .discovery import discover, refresh
from .exceptions import *  # noqa: F401,F403 - pylibmc's exception names
from .exceptions import Error, MemcachedError, errors, exceptions  # noqa: F401
from .servers import server_type_tcp, server_type_udp, server_type_unix, translate_server_spec
from .pools import ClientPool, ThreadMappedPool
from . import autoconf, pools  # noqa: F401 - pylibmc.autoconf, pylibmc.pools
from . import events, metrics  # noqa: F401 - events go to the `elasticache` logger from import on
from .pylibmc_compat import install_as_pylibmc, libmemcached_version, libmemcached_version_hex

__version__ = "0.1.0"
library_path = _native.library_path
libelasticache_version = _native.version()
hashers = {name: i for i, name in enumerate(_HASHERS)}
distributions = {name: i for i, name in enumerate(_DISTRIBUTIONS)}
support_compression = True
support_sasl = False


def build_info():
    """pylibmc's build_info(), for this package."""
    return (f"elasticache {__version__} (libelasticache {libelasticache_version}) for libmemcached "
            f"{libmemcached_version} placement (compression={support_compression}, sasl={support_sasl})")


__all__ = ["Client", "BehaviorDict", "ClientPool", "ThreadMappedPool", "discover", "refresh", "Error",
           "MemcachedError", "all_behaviors", "all_callbacks", "hashers", "distributions", "library_path",
           "install_as_pylibmc", "libmemcached_version", "libmemcached_version_hex", "server_type_tcp",
           "server_type_udp", "server_type_unix", "support_compression", "support_sasl",
           "translate_server_spec", "build_info"] + [name for name, _ in exceptions]
