"""services/oidc.py's pure rules: the ID token check (signature, iss, aud, exp, nonce, Entra's
multitenant issuer), which e-mail identifies a user, and the role mapping. No database, no provider:
tokens are signed here with keys made here, on the suite's frozen clock."""
from __future__ import annotations

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from backend.app.services import oidc
from backend.app.services.settings import SettingsError
from tests.clock import TEST_NOW

ISSUER = "https://login.microsoftonline.com/11111111-1111-4111-8111-111111111111/v2.0"
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})
OTHER = RSAKey.generate_key(2048, parameters={"kid": "k1"})  # same kid, another key
JWKS = KeySet([KEY]).as_dict(private=False)


def token(key=KEY, **claims):
    now = int(TEST_NOW.timestamp())  # the suite's frozen clock, which the check reads too
    body = {"iss": ISSUER, "aud": "client", "sub": "s1", "iat": now, "exp": now + 3600, "nonce": "n1", **claims}
    return jwt.encode({"alg": "RS256", "kid": "k1"}, body, key)


def verify(tok, issuer=ISSUER):
    return oidc.verify_id_token(tok, JWKS, issuer=issuer, client_id="client", nonce="n1")


def test_a_good_token_is_accepted():
    assert verify(token())["sub"] == "s1"


@pytest.mark.parametrize("make,reason", [
    (lambda: token(key=OTHER), "bad_signature"),
    (lambda: token(iss="https://evil.example/v2.0"), "bad_token"),
    (lambda: token(aud="another-app"), "bad_audience"),
    (lambda: token(nonce="n2"), "nonce_mismatch"),
    (lambda: token(exp=int(TEST_NOW.timestamp()) - 121), "bad_token"),
    (lambda: token(iat=int(TEST_NOW.timestamp()) + 600), "bad_token"),
    (lambda: "not.a.token", "bad_signature"),
])
def test_a_bad_token_is_refused(make, reason):
    with pytest.raises(oidc.SsoRefused) as refused:
        verify(make())
    assert refused.value.reason == reason


def test_a_little_clock_skew_is_allowed():
    assert verify(token(exp=int(TEST_NOW.timestamp()) - 60))


def test_entra_multitenant_checks_the_issuer_of_the_tokens_own_tenant():
    template = "https://login.microsoftonline.com/{tenantid}/v2.0"
    tid = "22222222-2222-4222-8222-222222222222"
    good = token(iss=f"https://login.microsoftonline.com/{tid}/v2.0", tid=tid)
    assert verify(good, issuer=template)["tid"] == tid
    with pytest.raises(oidc.SsoRefused):
        verify(token(iss=f"https://login.microsoftonline.com/{tid}/v2.0", tid="33333333-0000-4000-8000-000000000000"),
               issuer=template)


@pytest.mark.parametrize("claims,email", [
    ({"email": "A@Example.com", "email_verified": True}, "a@example.com"),
    ({"email": "a@example.com"}, "a@example.com"),  # Entra: no email_verified
    ({"preferred_username": "b@example.com"}, "b@example.com"),  # Entra without the email claim
    ({"upn": "c@example.com"}, "c@example.com"),
])
def test_the_email_that_identifies_a_user(claims, email):
    assert oidc.email_of(claims) == email


@pytest.mark.parametrize("claims", [
    {"email": "a@example.com", "email_verified": False},
    {"email": "a@example.com", "email_verified": False, "preferred_username": "a@example.com"},
    {"preferred_username": "not-an-address"},
    {},
])
def test_no_verified_email_is_refused(claims):
    with pytest.raises(oidc.SsoRefused):
        oidc.email_of(claims)


def test_role_mapping_lines():
    assert oidc.parse_mapping("# comment\n g1 = Operator\nApp.Admin=admin\n") == {"g1": "operator",
                                                                                "App.Admin": "admin"}
    for bad in ("g1", "g1 = root", "= viewer"):
        with pytest.raises(SettingsError):
            oidc.parse_mapping(bad)
    cfg = oidc.SsoConfig(role_mapping={"g1": "operator", "App.Admin": "admin"}, default_role="viewer")
    assert oidc.mapped_roles(cfg, {"groups": ["g1", "x"], "roles": ["App.Admin"]}) == ["admin", "operator"]
    assert oidc.roles_from_idp(cfg, {"groups": ["x"]}) == ["viewer"]


def test_the_issuer_of_a_tenant():
    assert (oidc.issuer_for(None, "contoso.onmicrosoft.com")
            == "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0")
    assert oidc.issuer_for("https://idp.example.com/realm/", "ignored") == "https://idp.example.com/realm"
