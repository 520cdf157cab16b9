"""The web config file is checked whole at start: a bad one is a single line naming its key
(and `circleci-exporter` exits 2)."""

from __future__ import annotations

import datetime
import os
import ssl
import subprocess
from pathlib import Path

import bcrypt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from exporter.settings import ConfigError
from exporter.web.webconfig import load_web_config
from tests.conftest import EXPORTER

HASH = bcrypt.hashpw(b"secret", bcrypt.gensalt(4)).decode()


@pytest.fixture
def certs(tmp_path: Path) -> Path:
    """A self-signed server.crt / server.key in tmp_path, also used as ca.crt."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (tmp_path / "server.crt").write_bytes(pem)
    (tmp_path / "ca.crt").write_bytes(pem)
    (tmp_path / "server.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (tmp_path / "garbage.pem").write_text("not a certificate\n")
    return tmp_path


TLS = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"


def test_a_full_file_loads(certs: Path) -> None:
    path = certs / "web.yml"
    path.write_text(
        TLS
        + "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n"
        + "  min_version: TLS13\n  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]\n"
        + "http_server_config:\n  headers:\n    X-Frame-Options: deny\n"
        + f"basic_auth_users:\n  prometheus: '{HASH}'\n"
    )
    config = load_web_config(path)
    assert config.tls is not None
    assert config.tls.cert_file == certs / "server.crt"  # relative to the file
    assert config.tls.verify_mode == ssl.CERT_REQUIRED
    assert config.tls.min_version == ssl.TLSVersion.TLSv1_3
    assert config.tls.ciphers == "ECDHE-ECDSA-AES128-GCM-SHA256"
    assert dict(config.headers) == {"X-Frame-Options": "deny"}
    assert bcrypt.checkpw(b"secret", config.users["prometheus"])


def test_an_empty_file_is_plain_http(tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    path.write_text("")
    config = load_web_config(path)
    assert config.tls is None and not config.users and not config.headers


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("tls_server_config: [1]\n", "tls_server_config: must be a mapping"),
        ("tls_config: {}\n", "tls_config: unknown key"),
        ("rate_limit: {interval: 1s}\n", "rate_limit: not supported by this exporter"),
        (TLS + "  client_allowed_sans: [a]\n",
         "tls_server_config.client_allowed_sans: not supported by this exporter"),
        ("tls_server_config: {cert_file: server.crt}\n",
         "tls_server_config.key_file: required with tls_server_config"),
        (TLS + "  client_auth_type: RequireAnyClientCert\n  client_ca_file: ca.crt\n",
         "tls_server_config.client_auth_type: 'RequireAnyClientCert' accepts any certificate "
         "unverified; use RequireAndVerifyClientCert"),
        (TLS + "  client_auth_type: Sometimes\n",
         "tls_server_config.client_auth_type: 'Sometimes' must be one of NoClientCert, "
         "VerifyClientCertIfGiven, RequireAndVerifyClientCert"),
        (TLS + "  client_auth_type: RequireAndVerifyClientCert\n",
         "tls_server_config.client_ca_file: required with RequireAndVerifyClientCert"),
        (TLS + "  min_version: SSL3\n",
         "tls_server_config.min_version: 'SSL3' must be one of TLS10, TLS11, TLS12, TLS13"),
        (TLS + "  min_version: TLS13\n  max_version: TLS12\n",
         "tls_server_config.min_version: is above max_version"),
        (TLS + "  cipher_suites: [TLS_FAST]\n",
         "tls_server_config.cipher_suites: unknown cipher suite 'TLS_FAST'"),
        ("tls_server_config: {cert_file: missing.crt, key_file: server.key}\n",
         "tls_server_config.cert_file: {dir}/missing.crt: No such file or directory"),
        ("tls_server_config: {cert_file: garbage.pem, key_file: server.key}\n",
         "tls_server_config.cert_file: {dir}/garbage.pem: "),
        (TLS + "  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: garbage.pem\n",
         "tls_server_config.client_ca_file: {dir}/garbage.pem: "),
        ("basic_auth_users: {prometheus: plaintext}\n",
         "basic_auth_users.prometheus: is not a bcrypt hash"),
        ("basic_auth_users: [prometheus]\n",
         "basic_auth_users: must be a mapping of user names to bcrypt hashes"),
        ("http_server_config: {headers: {Server: nginx}}\n",
         "http_server_config.headers.Server: not a header this file may set"),
        ("http_server_config: {headers: {X-Frame-Options: allow}}\n",
         "http_server_config.headers.X-Frame-Options: 'allow' must be one of deny, sameorigin"),
        ("basic_auth_users: {a: [\n", "{dir}/web.yml: line 2: "),
    ],
)  # fmt: skip
def test_a_bad_file_is_one_line_naming_the_key(certs: Path, text: str, problem: str) -> None:
    path = certs / "web.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_web_config(path)
    (line,) = caught.value.problems
    assert line.startswith("web.config.file: " + problem.format(dir=certs)), line


def test_the_exporter_refuses_a_bad_file_at_start_with_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    path.write_text("basic_auth_users: {prometheus: plaintext}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIRCLECI_")}
    result = subprocess.run(
        [str(EXPORTER), "--demo", "--web.config.file", str(path), "--web.listen-address", ":0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr == (
        "circleci-exporter: web.config.file: basic_auth_users.prometheus: is not a bcrypt hash\n"
    )
