"""Kafka connection options from settings: plaintext for the dev broker, TLS + SCRAM for a real cluster."""

from __future__ import annotations

import ssl

from greenzone_common.kafka import connection_options
from greenzone_common.settings import CommonSettings


def test_plaintext_by_default() -> None:
    options = connection_options(CommonSettings(kafka_bootstrap="127.0.0.1:9092"))
    assert options == {"bootstrap_servers": "127.0.0.1:9092", "security_protocol": "PLAINTEXT"}


def test_sasl_ssl_carries_scram_credentials_and_a_tls_context() -> None:
    settings = CommonSettings(
        kafka_bootstrap="kafka:9093",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="change-svc",
        kafka_sasl_password="s3cret",
    )
    options = connection_options(settings)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("change-svc", "s3cret")
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert "s3cret" not in repr(settings), "the password never shows in a settings dump"
