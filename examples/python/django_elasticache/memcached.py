"""`django_elasticache.memcached.ElastiCache`, now provided by elasticache."""

from elasticache.django import ElastiCache  # noqa: F401

__all__ = ["ElastiCache"]
