"""elasticache: a pylibmc-compatible client for Amazon ElastiCache (memcached)
over libelasticache (auto-discovery, libmemcached-compatible placement).

    import elasticache
    mc = elasticache.Client.from_endpoint("mycluster.abc123.cfg.use1.cache.amazonaws.com:11211")
    mc.set("key", {"any": "picklable value"})
    mc.get("key")

`elasticache.Client([...servers...], behaviors={...})` takes pylibmc's
arguments; the exceptions carry pylibmc's names. See README.md.
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

__version__ = "0.1.0"
library_path = _native.library_path
libelasticache_version = _native.version()
hashers = {name: i for i, name in enumerate(_HASHERS)}
distributions = {name: i for i, name in enumerate(_DISTRIBUTIONS)}
support_compression = True
support_sasl = False

__all__ = ["Client", "BehaviorDict", "discover", "refresh", "Error", "MemcachedError",
           "all_behaviors", "all_callbacks", "hashers", "distributions", "library_path"] + [
    name for name, _ in exceptions]
