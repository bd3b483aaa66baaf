"""TLS from Python: library options by name (`options={"tls": True, ...}`)
against a real `memcached -Z`; what is written over TLS reads back through
pylibmc on the same server's plain listener."""

import os
import subprocess

import pylibmc
import pytest

import elasticache
from conftest import crate_example, free_port, require, require_tool, wait_serving


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    mc = require_tool("memcached")
    helptext = subprocess.run([mc, "-h"], capture_output=True, text=True).stdout
    require("TLS support in memcached (-Z, --enable-ssl)", "--enable-ssl" in helptext)
    # The crate's certificate maker (the Rust TLS tests' own): a CA, and a
    # certificate for localhost only.
    d = str(tmp_path_factory.mktemp("tls"))
    subprocess.run([crate_example("make_certs"), d], check=True, capture_output=True, timeout=60)
    good = start_tls_memcached(d, "node")
    expired = start_tls_memcached(d, "expired")
    yield {"port": good[1], "plain": good[2], "expired_port": expired[1], "ca": f"{d}/ca.pem"}
    for proc, _, _ in (good, expired):
        proc.kill()
        proc.wait()


def start_tls_memcached(d, cert):
    """memcached -Z with certificate `cert` (node, expired) from `d`, and a plain
    listener on the same cache: (process, TLS port, plain port)."""
    port, plain = free_port(), free_port()
    args = ["memcached", "-Z", "-o", f"ssl_chain_cert={d}/{cert}.crt,ssl_key={d}/{cert}.key",
            "-l", f"127.0.0.1:{port}", "-l", f"notls:127.0.0.1:{plain}", "-U", "0"]
    if os.geteuid() == 0:
        args += ["-u", "root"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_serving(proc, plain, f"memcached -Z ({cert})")
    return proc, port, plain


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
