"""A test Django project whose CACHES is django-elasticache's README example,
with the endpoint address replaced by the emulated one the fixtures start
(ELASTICACHE_TEST_ENDPOINT) and a plain memcached (ELASTICACHE_TEST_PLAIN)."""

import os

SECRET_KEY = "test"
USE_TZ = True
INSTALLED_APPS = []

CACHES = {
    # Exactly as django-elasticache's README (LOCATION aside).
    "default": {
        "BACKEND": "django_elasticache.memcached.ElastiCache",
        "LOCATION": os.environ["ELASTICACHE_TEST_ENDPOINT"],  # 'cache-c.draaaf.cfg.use1.cache.amazonaws.com:11211'
    },
    "direct": {
        "BACKEND": "elasticache.django.ElastiCache",
        "LOCATION": os.environ["ELASTICACHE_TEST_ENDPOINT"],
    },
    # README's IGNORE_CLUSTER_ERRORS example, against plain memcached.
    "plain": {
        "BACKEND": "django_elasticache.memcached.ElastiCache",
        "LOCATION": os.environ["ELASTICACHE_TEST_PLAIN"],
        "OPTIONS": {
            "IGNORE_CLUSTER_ERRORS": True,
        },
    },
}
