"""JWT bearer tokens, rate limits and settings that refuse insecure values."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from aimds import Guard
from aimds.errors import ConfigError
from aimds.server.settings import ServiceSettings
from tests.server.conftest import Live, start_server

ISS, AUD = "https://idp.example.test", "aimds"


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def jwt_live(tmp_path_factory: pytest.TempPathFactory, guard: Guard, rsa_key: rsa.RSAPrivateKey) -> Iterator[Live]:
    d = tmp_path_factory.mktemp("aimds-jwt")
    pem = d / "idp.pem"
    pem.write_bytes(rsa_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo))
    server = start_server(d / "data", guard, jwt_public_key=pem, jwt_issuer=ISS, jwt_audience=AUD,
                          rate_limit_per_s=2, rate_limit_burst=3)
    yield server
    server.stop()


def _token(key: object, alg: str = "RS256", **claims: object) -> str:
    base = {"sub": "svc-1", "iss": ISS, "aud": AUD, "exp": int(time.time()) + 300, "aimds_role": "analyst"}
    base.update(claims)
    return jwt.encode({k: v for k, v in base.items() if v is not None}, key, algorithm=alg)  # type: ignore[arg-type]


def _get(live: Live, token: str, path: str = "/v1/events") -> httpx.Response:
    with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {token}"}) as c:
        return c.get(path)


def test_valid_rs256_token_is_accepted_with_its_role(jwt_live: Live, rsa_key: rsa.RSAPrivateKey) -> None:
    assert _get(jwt_live, _token(rsa_key)).status_code == 200
    assert _get(jwt_live, _token(rsa_key), "/v1/keys").status_code == 403


@pytest.mark.parametrize("claims", [{"exp": int(time.time()) - 3600}, {"aud": "other"}, {"iss": "https://evil"},
                                    {"exp": None}])
def test_bad_claims_are_rejected(jwt_live: Live, rsa_key: rsa.RSAPrivateKey, claims: dict) -> None:
    r = _get(jwt_live, _token(rsa_key, **claims))
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"


def test_forged_and_confused_tokens_are_rejected(jwt_live: Live, ec_key: ec.EllipticCurvePrivateKey,
                                                 rsa_key: rsa.RSAPrivateKey) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert _get(jwt_live, _token(other)).status_code == 401
    assert _get(jwt_live, _token(b"a-shared-secret-of-32-bytes-len!", alg="HS256")).status_code == 401
    assert _get(jwt_live, _token(rsa_key, aimds_role="root")).status_code == 403
    unsigned = jwt.encode({"sub": "x", "iss": ISS, "aud": AUD, "exp": int(time.time()) + 60,
                           "aimds_role": "admin"}, None, algorithm="none")  # type: ignore[arg-type]
    assert _get(jwt_live, unsigned).status_code == 401


def test_rate_limit_gives_429_with_retry_after(jwt_live: Live) -> None:
    with jwt_live.client("detector") as c:
        codes = [c.post("/v1/detect", json={"text": "hi"}) for _ in range(8)]
    limited = [r for r in codes if r.status_code == 429]
    assert limited and codes[0].status_code == 200
    assert int(limited[0].headers["Retry-After"]) >= 1 and limited[0].json()["error"]["code"] == "rate_limited"


def test_es256_via_jwks_file(tmp_path: Path, guard: Guard, ec_key: ec.EllipticCurvePrivateKey) -> None:
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key()))
    jwk.update({"kid": "k1", "alg": "ES256", "use": "sig"})
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [jwk]}))
    live = start_server(tmp_path / "data", guard, jwt_jwks_file=jwks, jwt_issuer=ISS, jwt_audience=AUD)
    try:
        token = jwt.encode({"sub": "a", "iss": ISS, "aud": AUD, "exp": int(time.time()) + 60, "aimds_role": "admin"},
                           ec_key, algorithm="ES256", headers={"kid": "k1"})
        assert _get(live, token, "/v1/keys").status_code == 200
        wrong_kid = jwt.encode({"sub": "a", "iss": ISS, "aud": AUD, "exp": int(time.time()) + 60,
                                "aimds_role": "admin"}, ec_key, algorithm="ES256", headers={"kid": "k2"})
        assert _get(live, wrong_kid, "/v1/keys").status_code == 401
    finally:
        live.stop()


def test_insecure_settings_are_refused_outside_development(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="auth_disabled"):
        ServiceSettings(data_dir=tmp_path, auth_disabled=True).validate()
    with pytest.raises(ConfigError, match="rate limit"):
        ServiceSettings(data_dir=tmp_path, rate_limit_per_s=0).validate()
    with pytest.raises(ConfigError, match="jwt_issuer"):
        ServiceSettings(data_dir=tmp_path, jwt_public_key=tmp_path / "k.pem").validate()
    with pytest.raises(ConfigError, match="asymmetric"):
        ServiceSettings(data_dir=tmp_path, jwt_algorithms=("HS256",)).validate()
    ServiceSettings(data_dir=tmp_path, auth_disabled=True, environment="development").validate()


def test_settings_round_trip_through_the_environment(tmp_path: Path) -> None:
    s = ServiceSettings(data_dir=tmp_path, rate_limit_per_s=7.5, store_raw_text=True, jwt_issuer=ISS)
    back = ServiceSettings.from_env(s.to_env())
    assert (back.rate_limit_per_s, back.store_raw_text, back.jwt_issuer, back.data_dir) == (7.5, True, ISS, tmp_path)
    with pytest.raises(ConfigError, match="AIMDS_RATE_LIMIT_PER_S"):
        ServiceSettings.from_env({"AIMDS_RATE_LIMIT_PER_S": "fast"})


def test_batch_character_budget(tmp_path: Path, guard: Guard) -> None:
    """One key cannot tie up the scan threads for everyone with a huge batch."""
    live = start_server(tmp_path / "data", guard, max_batch_chars=5_000)
    try:
        with live.client("detector") as c:
            r = c.post("/v1/detect/batch", json={"items": [{"text": "y" * 2_000}] * 3})
            assert r.status_code == 413 and r.json()["error"]["code"] == "batch_too_large"
            assert c.post("/v1/detect/batch", json={"items": [{"text": "y" * 2_000}] * 2}).status_code == 200
    finally:
        live.stop()
