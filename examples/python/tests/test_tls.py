"""TLS from Python: library options by name (`options={"tls": True, ...}`)
against a real `memcached -Z`; what is written over TLS reads back through
pylibmc on the same server's plain listener."""

import subprocess

import pylibmc
import pytest

import elasticache
from conftest import LocalCluster, crate_example, require, require_tool


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    mc = require_tool("memcached")
    helptext = subprocess.run([mc, "-h"], capture_output=True, text=True).stdout
    require("TLS support in memcached (-Z, --enable-ssl)", "--enable-ssl" in helptext)
    # The crate's certificate maker (the Rust TLS tests' own): a CA, and a
    # certificate for localhost only.
    d = str(tmp_path_factory.mktemp("tls"))
    subprocess.run([crate_example("make_certs"), d], check=True, capture_output=True, timeout=60)
    # memcached -Z with a plain listener on the same cache, each certificate
    # (node, expired) on a node of its own.
    with LocalCluster.start(tls=(f"{d}/node.crt", f"{d}/node.key")) as good, \
            LocalCluster.start(tls=(f"{d}/expired.crt", f"{d}/expired.key")) as expired:
        yield {"port": good.nodes[0].port, "plain": good.nodes[0].plain_port,
               "expired_port": expired.nodes[0].port, "ca": f"{d}/ca.pem"}


def test_values_written_over_tls_read_back_through_pylibmc(tls_server):
    c = elasticache.Client([f"localhost:{tls_server['port']}"],
                           options={"tls": True, "tls_ca_file": tls_server["ca"]})
    c.set("py-tls", "over tls")
    c.set_multi({f"m{i}": i for i in range(50)})
    assert c.get("py-tls") == "over tls"
    assert c.get_multi([f"m{i}" for i in range(50)]) == {f"m{i}": i for i in range(50)}
    plain = pylibmc.Client([f"127.0.0.1:{tls_server['plain']}"])
    assert plain.get("py-tls") == "over tls"
    assert plain.get("m7") == 7


def test_a_name_mismatch_is_a_clear_error(tls_server):
    c = elasticache.Client([f"127.0.0.1:{tls_server['port']}"],
                           options={"tls": True, "tls_ca_file": tls_server["ca"]})
    with pytest.raises(elasticache.TLSError) as e:
        c.set("k", "v")
    assert "not valid for name" in str(e.value) and str(tls_server["port"]) in str(e.value)
    # One name for every node (tls_server_name) makes the IP acceptable.
    c = elasticache.Client([f"127.0.0.1:{tls_server['port']}"],
                           options={"tls": True, "tls_ca_file": tls_server["ca"],
                                    "tls_server_name": "localhost"})
    c.set("k", "v")
    assert c.get("k") == "v"


def test_an_expired_certificate_is_a_tls_error_saying_so(tls_server):
    c = elasticache.Client([f"localhost:{tls_server['expired_port']}"],
                           options={"tls": True, "tls_ca_file": tls_server["ca"]})
    with pytest.raises(elasticache.TLSError) as e:
        c.set("k", "v")
    assert "expired" in str(e.value).lower() and str(tls_server["expired_port"]) in str(e.value)


def test_tls_keywords_and_unknown_keyword(tls_server):
    c = elasticache.Client([f"localhost:{tls_server['port']}"], tls=True, tls_ca_file=tls_server["ca"])
    c.set("kw-tls", b"yes")
    assert c.get("kw-tls") == b"yes"
    with pytest.raises(TypeError):
        elasticache.Client([f"localhost:{tls_server['port']}"], tls_bogus=True)


def test_django_options_carry_tls_settings(tls_server, django_caches):
    """TLS settings in a Django cache's OPTIONS reach the library; with only TLS
    settings the django-elasticache default behaviors (ketama) stay."""
    from elasticache.django import ElastiCache

    cache = ElastiCache(f"localhost:{tls_server['port']}", {
        "OPTIONS": {"TLS": True, "TLS_CA_FILE": tls_server["ca"], "SERVERLESS": True},
    })
    assert cache._behaviors.get("ketama") is True
    cache.set("dj-tls", "value", 30)
    assert cache.get("dj-tls") == "value"
    plain = pylibmc.Client([f"127.0.0.1:{tls_server['plain']}"])
    assert plain.get(":1:dj-tls") == "value"
