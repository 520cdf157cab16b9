"""`--web.config.file` on the installed exporter (the demo: the simulator runs inside it): the
real Prometheus scrapes it over TLS with basic auth and a client certificate; a wrong password is
a counted 401; a client without a certificate is refused; the webhook listener is protected
too; and a new password or certificate applies without a restart."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import httpx
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import EXPORTER
from tests.rules.binaries import (
    Server,
    free_port,
    running_process,
    running_prometheus,
    wait_until,
)

pytestmark = pytest.mark.e2e

USER = "prometheus"
PASSWORD = "correct horse battery staple"
JOB = "circleci-tls"


@dataclass(frozen=True)
class KeyPair:
    cert: Path
    key: Path


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class Authority:
    """A test CA that issues server and client certificates into `directory`."""

    def __init__(self, directory: Path, name: str) -> None:
        self.directory = directory
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(self.name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.key, hashes.SHA256())
        )
        self.cert_file = directory / f"{name}.crt"
        self.cert_file.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))

    def issue(self, name: str, *, server: bool) -> KeyPair:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        certificate = builder.sign(self.key, hashes.SHA256())
        pair = KeyPair(self.directory / f"{name}.crt", self.directory / f"{name}.key")
        pair.cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        pair.key.write_bytes(_key_pem(key))
        return pair


def bcrypt_hash(password: str) -> str:
    # Cost 4, the lowest: the test checks the format, not the work factor.
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()


@dataclass
class Pki:
    ca: Authority
    server: KeyPair
    client: KeyPair


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca = Authority(tmp_path, "test-ca")
    return Pki(ca, ca.issue("server", server=True), ca.issue("client", server=False))


def write_web_config(path: Path, pki: Pki, password: str, server: KeyPair | None = None) -> None:
    server = server or pki.server
    path.write_text(
        yaml.safe_dump(
            {
                "tls_server_config": {
                    "cert_file": server.cert.name,
                    "key_file": server.key.name,
                    "client_auth_type": "RequireAndVerifyClientCert",
                    "client_ca_file": pki.ca.cert_file.name,
                    "min_version": "TLS12",
                },
                "http_server_config": {"headers": {"X-Content-Type-Options": "nosniff"}},
                "basic_auth_users": {USER: bcrypt_hash(password)},
            }
        )
    )


def client(pki: Pki, *, cert: bool = True, auth: tuple[str, str] | None = None) -> httpx.Client:
    """A client trusting the test CA, with the client certificate unless `cert` is False."""
    context = ssl.create_default_context(cafile=pki.ca.cert_file)
    if cert:
        context.load_cert_chain(pki.client.cert, pki.client.key)
    return httpx.Client(verify=context, auth=auth, timeout=10.0)


@dataclass
class Exporter:
    server: Server
    webhook_url: str

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def server_port(self) -> int:
        return int(self.server.url.rsplit(":", 1)[1])


@contextmanager
def running_exporter(tmp_path: Path, web_config: Path, pki: Pki) -> Iterator[Exporter]:
    """The demo exporter once it serves (/healthz): these tests need no collected data, and its
    first collection can take long on a loaded machine."""
    port, webhook_port = free_port(), free_port()
    command = [
        str(EXPORTER), "--demo",
        "--web.listen-address", f"127.0.0.1:{port}",
        "--webhook.listen-address", f"127.0.0.1:{webhook_port}",
        "--web.config.file", str(web_config),
        "--log.level", "warn",
    ]  # fmt: skip
    env = {"PATH": "/usr/bin:/bin", "CIRCLECI_WEBHOOK_SECRET": "webhook-test-secret"}
    with (
        client(pki) as ready_client,
        running_process(
            "exporter", command, port, tmp_path, ready_path="/healthz", env=env,
            ready_client=ready_client,
        ) as server,
    ):  # fmt: skip
        yield Exporter(server, f"https://127.0.0.1:{webhook_port}")


@pytest.fixture
def web_config(tmp_path: Path, pki: Pki) -> Path:
    path = tmp_path / "web-config.yml"
    write_web_config(path, pki, PASSWORD)
    return path


def auth_failures(exporter: Exporter, pki: Pki, listener: str) -> float:
    with client(pki, auth=(USER, PASSWORD)) as http:
        text = http.get(f"{exporter.url}/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "circleci_exporter_web_auth_failures_total" and sample.labels == {
                "listener": listener
            }:
                return sample.value
    raise AssertionError("circleci_exporter_web_auth_failures_total is not served")


def test_prometheus_scrapes_over_tls_with_basic_auth_and_a_client_certificate(
    tmp_path: Path, pki: Pki, web_config: Path
) -> None:
    with running_exporter(tmp_path, web_config, pki) as exporter:
        config = tmp_path / "prometheus.yml"
        config.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "scrape_configs": [
                        {
                            "job_name": JOB,
                            "scheme": "https",
                            "scrape_timeout": "1s",
                            "basic_auth": {"username": USER, "password": PASSWORD},
                            "tls_config": {
                                "ca_file": str(pki.ca.cert_file),
                                "cert_file": str(pki.client.cert),
                                "key_file": str(pki.client.key),
                            },
                            "static_configs": [
                                {"targets": [exporter.url.removeprefix("https://")]}
                            ],
                        }
                    ],
                }
            )
        )
        with running_prometheus(config, tmp_path) as prometheus:

            def query(promql: str) -> list[dict[str, object]]:
                response = httpx.get(
                    f"{prometheus.url}/api/v1/query", params={"query": promql}, timeout=10.0
                )
                response.raise_for_status()
                result: list[dict[str, object]] = response.json()["data"]["result"]
                return result

            wait_until(
                lambda: bool(query(f'up{{job="{JOB}"}} == 1')),
                "Prometheus to scrape the exporter over TLS with basic auth",
                60.0,
            )
            # Data, not only a successful scrape: the demo's CircleCI series came through.
            wait_until(
                lambda: bool(query(f'circleci_project_info{{job="{JOB}"}}')),
                "the demo's CircleCI series in Prometheus",
                60.0,
            )
            assert query(f'circleci_exporter_build_info{{job="{JOB}"}}')
        # Prometheus' scrapes carried the right password: none was refused.
        assert auth_failures(exporter, pki, "metrics") == 0


def test_a_wrong_password_is_a_counted_401(tmp_path: Path, pki: Pki, web_config: Path) -> None:
    with running_exporter(tmp_path, web_config, pki) as exporter:
        with client(pki, auth=(USER, "wrong")) as http:
            response = http.get(f"{exporter.url}/metrics")
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Basic ")
        assert response.headers["x-content-type-options"] == "nosniff"
        with client(pki) as http:  # no credentials at all
            assert http.get(f"{exporter.url}/metrics").status_code == 401
            # The probes carry no credentials and say nothing: they stay open (over TLS).
            assert http.get(f"{exporter.url}/healthz").status_code == 200
        assert auth_failures(exporter, pki, "metrics") == 2
        with client(pki, auth=(USER, PASSWORD)) as http:
            response = http.get(f"{exporter.url}/metrics")
        assert response.status_code == 200
        assert response.headers["x-content-type-options"] == "nosniff"


def test_a_client_without_a_certificate_is_refused(
    tmp_path: Path, pki: Pki, web_config: Path
) -> None:
    with running_exporter(tmp_path, web_config, pki) as exporter:
        with (
            client(pki, cert=False, auth=(USER, PASSWORD)) as http,
            pytest.raises(httpx.TransportError),
        ):
            http.get(f"{exporter.url}/metrics")
        # A certificate from another CA is refused the same way.
        (tmp_path / "stranger").mkdir()
        stranger = Authority(tmp_path / "stranger", "stranger-ca")
        stranger_client = stranger.issue("stranger-client", server=False)
        context = ssl.create_default_context(cafile=pki.ca.cert_file)
        context.load_cert_chain(stranger_client.cert, stranger_client.key)
        with (
            httpx.Client(verify=context, auth=(USER, PASSWORD)) as http,
            pytest.raises(httpx.TransportError),
        ):
            http.get(f"{exporter.url}/metrics")
        # Plain HTTP on the TLS port gets nothing.
        with pytest.raises(httpx.TransportError):
            httpx.get(exporter.url.replace("https://", "http://") + "/metrics", timeout=5.0)


def test_the_webhook_listener_is_protected_too(tmp_path: Path, pki: Pki, web_config: Path) -> None:
    with running_exporter(tmp_path, web_config, pki) as exporter:
        url = f"{exporter.webhook_url}/webhooks/circleci"
        with client(pki, cert=False) as http, pytest.raises(httpx.TransportError):
            http.post(url, content=b"{}")
        with client(pki) as http:
            refused = http.post(url, content=b"{}")
        assert refused.status_code == 401
        assert refused.text == "Unauthorized\n"
        with client(pki, auth=(USER, PASSWORD)) as http:
            # Past basic auth, the receiver checks CircleCI's signature itself.
            unsigned = http.post(url, content=b"{}")
        assert unsigned.status_code == 401
        assert unsigned.text == "invalid_signature\n"
        assert auth_failures(exporter, pki, "webhooks") == 1


def test_a_new_password_and_certificate_apply_without_a_restart(
    tmp_path: Path, pki: Pki, web_config: Path
) -> None:
    with running_exporter(tmp_path, web_config, pki) as exporter:
        pid = exporter.server.process.pid
        write_web_config(web_config, pki, "new password")

        def answers(password: str) -> int:
            with client(pki, auth=(USER, password)) as http:
                return http.get(f"{exporter.url}/metrics").status_code

        wait_until(lambda: answers("new password") == 200, "the new password to apply", 10.0)
        assert answers(PASSWORD) == 401

        renewed = pki.ca.issue("server-renewed", server=True)
        write_web_config(web_config, pki, "new password", server=renewed)
        expected = x509.load_pem_x509_certificate(renewed.cert.read_bytes()).serial_number

        def served_serial() -> int:
            with socket.create_connection(("127.0.0.1", exporter.server_port), timeout=5) as raw:
                context = ssl.create_default_context(cafile=pki.ca.cert_file)
                context.load_cert_chain(pki.client.cert, pki.client.key)
                with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                    der = tls.getpeercert(binary_form=True)
            assert der is not None
            return x509.load_der_x509_certificate(der).serial_number

        wait_until(lambda: served_serial() == expected, "the renewed certificate", 10.0)
        assert exporter.server.process.pid == pid and exporter.server.process.poll() is None

        # A broken change is refused: the last good config stays and the gauge says so.
        web_config.write_text("tls_server_config: {cert_file: missing.crt, key_file: x.key}\n")

        def reload_ok() -> float:
            with client(pki, auth=(USER, "new password")) as http:
                text = http.get(f"{exporter.url}/metrics").text
            line = next(
                line for line in text.splitlines()
                if line.startswith("circleci_exporter_web_config_last_reload_successful ")
            )  # fmt: skip
            return float(line.split()[1])

        wait_until(lambda: reload_ok() == 0.0, "the refused reload to show", 10.0)
        assert served_serial() == expected
