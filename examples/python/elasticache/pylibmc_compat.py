"""`install_as_pylibmc()`: code that imports pylibmc gets this client.

    import elasticache
    elasticache.install_as_pylibmc()   # before anything imports pylibmc
    import pylibmc                     # elasticache, under pylibmc's names

(PyMySQL's `install_as_MySQLdb()` convention.) Django's PyLibMCCache,
Flask-Caching and dogpile.cache then run on elasticache without a change.
Registered: `pylibmc` (the elasticache package), `pylibmc.client`,
`pylibmc.pools`, `pylibmc.autoconf`, `pylibmc.consts` and `_pylibmc`, pylibmc's
C module (whose `client` is elasticache.Client).
"""

import sys
import types

from . import autoconf, behaviors, client, pools, servers
from .exceptions import errors as _errors
from .exceptions import exceptions as _exception_list

# The libmemcached release whose behaviour (placement, names) this client
# reproduces; code that checks pylibmc's libmemcached version reads these.
libmemcached_version = "1.0.18"
libmemcached_version_hex = 0x01000018

# libmemcached's numbers for its hashes and distributions, as _pylibmc has them.
_HASH_NUMBERS = {"default": 0, "md5": 1, "crc": 2, "fnv1_64": 3, "fnv1a_64": 4, "fnv1_32": 5,
                 "fnv1a_32": 6, "hsieh": 7, "murmur": 8, "jenkins": 9}
_DISTRIBUTION_NUMBERS = {"modula": 0, "consistent": 1, "consistent ketama": 2, "random": 3,
                         "consistent ketama spy": 4, "consistent weighted": 5, "virtual bucket": 6,
                         "consistent max": 7}


def _c_module():
    """A stand-in for pylibmc's C extension module `_pylibmc`."""
    import elasticache

    m = types.ModuleType("_pylibmc", "elasticache's stand-in for pylibmc's C module")
    for name, exc in _exception_list:
        setattr(m, name, exc)
    m.client = client.Client
    m.exceptions = _exception_list
    m.all_behaviors = behaviors.ALL_BEHAVIORS
    m.all_callbacks = behaviors.ALL_CALLBACKS
    m.callback_namespace = "namespace"
    m.__version__ = elasticache.__version__
    m.libmemcached_version = libmemcached_version
    m.libmemcached_version_hex = libmemcached_version_hex
    m.support_compression = elasticache.support_compression
    m.support_sasl = elasticache.support_sasl
    m.server_type_tcp, m.server_type_udp, m.server_type_unix = (
        servers.server_type_tcp, servers.server_type_udp, servers.server_type_unix)
    for name, num in _HASH_NUMBERS.items():
        setattr(m, "hash_" + name, num)
    for name, num in _DISTRIBUTION_NUMBERS.items():
        setattr(m, "distribution_" + name.replace(" ", "_"), num)
    return m


def _consts_module():
    m = types.ModuleType("pylibmc.consts", "pylibmc.consts on elasticache")
    m.errors = _errors
    m.all_behaviors = behaviors.ALL_BEHAVIORS
    m.all_callbacks = behaviors.ALL_CALLBACKS
    m.hashers = dict(_HASH_NUMBERS)
    m.hashers_rvs = {v: k for k, v in _HASH_NUMBERS.items()}
    m.distributions = dict(_DISTRIBUTION_NUMBERS)
    m.distributions_rvs = {v: k for k, v in _DISTRIBUTION_NUMBERS.items()}
    m.BehaviorDict = client.BehaviorDict
    for name, exc in _exception_list:
        setattr(m, name, exc)
    return m


def install_as_pylibmc():
    """Register elasticache under pylibmc's module names (see the module doc).
    Returns the module now imported as `pylibmc`. Call it before the code
    that imports pylibmc; a real pylibmc already imported is replaced only
    for later imports."""
    import elasticache

    sys.modules["pylibmc"] = elasticache
    sys.modules["pylibmc.client"] = client
    sys.modules["pylibmc.pools"] = pools
    sys.modules["pylibmc.autoconf"] = autoconf
    sys.modules["pylibmc.consts"] = elasticache.consts = _consts_module()
    sys.modules["_pylibmc"] = _c_module()
    return elasticache
