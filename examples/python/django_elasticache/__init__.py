"""Compatibility shim: existing settings naming
`django_elasticache.memcached.ElastiCache` use elasticache's backend unchanged.
(Uninstall the old django-elasticache package: both provide this module.)"""
