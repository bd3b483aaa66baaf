"""django-elasticache's `get_cluster_info`, answered from the library's node cache."""

import elasticache


class WrongProtocolData(ValueError):
    """The endpoint's reply could not be used (django-elasticache's name)."""

    def __init__(self, cmd, response):
        super().__init__(f"Unexpected response {response!r} for command {cmd!r}")


def get_cluster_info(host, port, ignore_cluster_errors=False):
    """{"version": int, "nodes": ["ip:port", ...]} as django-elasticache returned it."""
    try:
        version, nodes = elasticache.discover(f"{host}:{port}", ignore_cluster_errors=ignore_cluster_errors)
    except elasticache.DiscoveryError as e:
        raise WrongProtocolData("config get cluster", str(e)) from None
    return {"version": version, "nodes": [f"{ip or h}:{p}" for h, ip, p in nodes]}
