"""Single sign-on with OpenID Connect (Microsoft Entra ID or any OIDC provider).

The rules, in one place: what the configuration is (Settings → Sign-in, OIDC_* in the environment
win), the authorization request (code flow, PKCE S256, state and nonce), checking the ID token
(signature against the issuer's JWKS, iss, aud, exp, iat, nonce, a small leeway), which user a
token is (subject, else verified e-mail), who may come in (domains, tenants, deactivated), creating
accounts just in time (default role or pending), the group/app-role mapping, and whether a user may
still log in with a password (the break-glass admin). The web side is auth/routes_oidc.py; the
last step of every login is accounts.complete_login.

Which e-mail identifies a user: the ``email`` claim unless the provider says it is not verified
(``email_verified: false``); Entra ID sends no ``email_verified``, so for Entra ``email`` is taken
when present, else ``preferred_username`` (then ``upn``) when it looks like an address. After the
first match the IdP's subject (issuer + ``sub``) is stored on the user and later logins match by
subject, so a changed address still finds the same account.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Mapping, Optional
import requests
from authlib.common.errors import AuthlibBaseError as OAuthError
from authlib.integrations.requests_client import OAuth2Session
from flask import current_app
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import func, or_, select

from .. import crypto
from ..extensions import db
# Single sign-on is for the provider's staff: the portal's users have their own accounts (invitations).
from ..models import STAFF_ROLES, AuditLog, User, utcnow
from . import accounts, audit
from .settings import SettingsError, get_settings

ENTRA_AUTHORITY = "https://login.microsoftonline.com"
DEFAULT_BUTTON_LABEL = "Sign in with Microsoft"
LEEWAY_SECONDS = 120
HTTP_TIMEOUT = 10
SCOPE = "openid email profile"
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384"]


class SsoRefused(Exception):
    """The sign-in can't go on; ``reason`` is a short code for the audit log, the message is for the user."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


# --- Configuration ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class SsoConfig:
    issuer: str = ""
    client_id: str = ""
    client_secret: str = ""
    allowed_domains: tuple[str, ...] = ()
    allowed_tenants: tuple[str, ...] = ()
    button_label: str = DEFAULT_BUTTON_LABEL
    jit: bool = False
    default_role: Optional[str] = None
    role_mapping: dict = field(default_factory=dict)  # IdP group id / app role value -> role
    break_glass_only: bool = False
    break_glass_user_id: Optional[int] = None

    @property
    def configured(self) -> bool:
        return bool(self.issuer and self.client_id and self.client_secret)


def env_overrides() -> dict:
    """OIDC values set in the environment; they win over Settings → Sign-in."""
    return dict(current_app.config.get("OIDC_ENV_OVERRIDES") or {})


def issuer_for(issuer: Optional[str], tenant_id: Optional[str]) -> str:
    """The issuer URL: the one given, or Entra ID's for a tenant."""
    if issuer:
        return issuer.strip().rstrip("/")
    if tenant_id:
        return f"{ENTRA_AUTHORITY}/{tenant_id.strip()}/v2.0"
    return ""


def split_list(text: Optional[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(p.strip().lower() for p in (text or "").replace("\n", ",").split(",") if p.strip()))


def parse_mapping(text: Optional[str]) -> dict:
    """Lines "group-or-app-role = role" → {value: role}; SettingsError on a bad line."""
    mapping: dict = {}
    for number, line in enumerate((text or "").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, role = line.rpartition("=")
        key, role = key.strip(), role.strip().lower()
        if not sep or not key or role not in STAFF_ROLES:
            raise SettingsError(f"Role mapping line {number} must read 'group or app role = role' with a role of "
                                f"{', '.join(STAFF_ROLES)}.")
        mapping[key] = role
    return mapping


def current_config() -> SsoConfig:
    s = get_settings()
    env = env_overrides()

    def value(name: str) -> Optional[str]:
        return env.get(name) or getattr(s, name)

    try:
        mapping = parse_mapping(s.oidc_role_mapping)
    except SettingsError:
        mapping = {}
    return SsoConfig(
        issuer=issuer_for(value("oidc_issuer"), value("oidc_tenant_id")),
        client_id=(value("oidc_client_id") or "").strip(),
        client_secret=value("oidc_client_secret") or "",
        allowed_domains=split_list(value("oidc_allowed_domains")),
        allowed_tenants=split_list(value("oidc_allowed_tenants")),
        button_label=s.oidc_button_label or DEFAULT_BUTTON_LABEL,
        jit=bool(s.oidc_jit_enabled),
        default_role=s.oidc_default_role if s.oidc_default_role in STAFF_ROLES else None,
        role_mapping=mapping,
        break_glass_only=bool(s.oidc_password_break_glass_only),
        break_glass_user_id=s.oidc_break_glass_user_id,
    )


def password_login_allowed(user: User) -> bool:
    """False when SSO is set up and password login is kept for the break-glass admin only."""
    cfg = current_config()
    if not (cfg.configured and cfg.break_glass_only and cfg.break_glass_user_id):
        return True  # (no break-glass user any more, e.g. deleted: password login stays open, never nobody)
    return user.id == cfg.break_glass_user_id


# --- The authorization request ---------------------------------------------------------------------

def discover(issuer: str) -> dict:
    """The provider's metadata (discovery document); its issuer must be the one configured."""
    try:
        r = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=HTTP_TIMEOUT)
        r.raise_for_status()
        meta = r.json()
    except (requests.RequestException, ValueError) as exc:
        raise SsoRefused("provider_unreachable", "The sign-in provider can't be reached right now. Try again "
                         "later, or ask the break-glass admin to log in with a password.") from exc
    found = (meta.get("issuer") or "").rstrip("/")
    # Entra's multitenant endpoints (common, organizations) name "{tenantid}" in their issuer: each
    # token's iss is then checked against it with the token's own tid (verify_id_token).
    multitenant = issuer.startswith(ENTRA_AUTHORITY) and found == f"{ENTRA_AUTHORITY}/{{tenantid}}/v2.0"
    if found != issuer and not multitenant:
        raise SsoRefused("issuer_mismatch", "The sign-in provider's configuration does not match the issuer "
                         "set in Settings → Sign-in.")
    return meta


def _client(cfg: SsoConfig, redirect_uri: str) -> OAuth2Session:
    """Authlib's OAuth 2 client: PKCE with S256, the secret sent in the token request's body."""
    return OAuth2Session(cfg.client_id, cfg.client_secret, scope=SCOPE, redirect_uri=redirect_uri,
                         code_challenge_method="S256", token_endpoint_auth_method="client_secret_post")


def begin(redirect_uri: str, next_url: str) -> tuple[str, dict]:
    """(the URL to send the browser to, what the session keeps until the callback)."""
    cfg = current_config()
    if not cfg.configured:
        raise SsoRefused("not_configured", "Single sign-on is not set up.")
    meta = discover(cfg.issuer)
    pending = {"state": secrets.token_urlsafe(32), "nonce": secrets.token_urlsafe(32),
               "verifier": secrets.token_urlsafe(48), "next": next_url}
    with _client(cfg, redirect_uri) as client:
        url, _ = client.create_authorization_url(meta["authorization_endpoint"], state=pending["state"],
                                                 nonce=pending["nonce"], code_verifier=pending["verifier"])
    return url, pending


# --- The callback --------------------------------------------------------------------------------

def exchange_code(cfg: SsoConfig, meta: dict, code: str, verifier: str, redirect_uri: str) -> str:
    """The ID token for an authorization code (client_secret_post + the PKCE verifier)."""
    try:
        with _client(cfg, redirect_uri) as client:
            token = client.fetch_token(meta["token_endpoint"], code=code, code_verifier=verifier,
                                       timeout=HTTP_TIMEOUT)
    except OAuthError as exc:
        raise SsoRefused("token_refused", "The sign-in provider refused the sign-in. Try again.") from exc
    except (requests.RequestException, ValueError) as exc:
        raise SsoRefused("token_request_failed", "The sign-in provider did not answer. Try again.") from exc
    if not token.get("id_token"):
        raise SsoRefused("token_refused", "The sign-in provider sent no ID token. Try again.")
    return token["id_token"]


def verify_id_token(id_token: str, jwks: Mapping, *, issuer: str, client_id: str, nonce: str) -> dict:
    """The token's claims when its signature is one of the issuer's keys and iss, aud, exp, iat
    and nonce are right (LEEWAY_SECONDS of clock skew); SsoRefused otherwise."""
    try:
        token = jwt.decode(id_token, KeySet.import_key_set(dict(jwks)), algorithms=ALGORITHMS)
    except (JoseError, ValueError) as exc:
        raise SsoRefused("bad_signature", "The sign-in could not be verified. Try again.") from exc
    claims = dict(token.claims)
    if "{tenantid}" in issuer:  # Entra multitenant: the issuer of the token's own tenant
        issuer = issuer.replace("{tenantid}", str(claims.get("tid") or "?"))
    registry = jwt.JWTClaimsRegistry(leeway=LEEWAY_SECONDS, iss={"essential": True, "value": issuer},
                                     sub={"essential": True}, exp={"essential": True}, iat={"essential": True})
    try:
        registry.validate(claims)
    except JoseError as exc:
        raise SsoRefused("bad_token", "The sign-in could not be verified (expired or for another issuer). "
                         "Try again.") from exc
    aud = claims.get("aud")
    if client_id not in (aud if isinstance(aud, list) else [aud]):
        raise SsoRefused("bad_audience", "The sign-in was meant for another application.")
    if not nonce or not secrets.compare_digest(str(claims.get("nonce") or ""), nonce):
        raise SsoRefused("nonce_mismatch", "The sign-in could not be verified (it was replayed or mixed up). "
                         "Try again.")
    return claims


def fetch_jwks(meta: dict) -> dict:
    try:
        r = requests.get(meta["jwks_uri"], timeout=HTTP_TIMEOUT)
        r.raise_for_status()
        return r.json()
    except (requests.RequestException, ValueError, KeyError) as exc:
        raise SsoRefused("provider_unreachable", "The sign-in provider's keys can't be read right now.") from exc


def email_of(claims: Mapping) -> str:
    """The address that identifies the user (see the module's docstring); SsoRefused without one."""
    email = (claims.get("email") or "").strip()
    if email and claims.get("email_verified") is not False and "@" in email:
        return email.lower()
    for name in ("preferred_username", "upn"):
        value = (claims.get(name) or "").strip()
        if "@" in value and "email_verified" not in claims:
            return value.lower()
    raise SsoRefused("no_verified_email", "Your sign-in has no verified e-mail address, so it can't be matched "
                     "to an account.")


def check_allowed(cfg: SsoConfig, email: str, claims: Mapping) -> None:
    domain = email.rpartition("@")[2]
    if cfg.allowed_domains and domain not in cfg.allowed_domains:
        raise SsoRefused("domain_not_allowed", f"Accounts of {domain} may not sign in here. Ask an admin.")
    tid = str(claims.get("tid") or "").lower()
    if cfg.allowed_tenants and tid not in cfg.allowed_tenants:
        raise SsoRefused("tenant_not_allowed", "Accounts of your organisation (tenant) may not sign in here. "
                         "Ask an admin.")


def mapped_roles(cfg: SsoConfig, claims: Mapping) -> list[str]:
    values = []
    for name in ("groups", "roles"):
        v = claims.get(name) or []
        values.extend(v if isinstance(v, list) else [v])
    return [r for r in STAFF_ROLES if r in {cfg.role_mapping[str(v)] for v in values if str(v) in cfg.role_mapping}]


def find_or_create_user(cfg: SsoConfig, claims: Mapping, email: str) -> User:
    subject = f"{claims['iss']}|{claims['sub']}"
    user = db.session.execute(select(User).where(User.oidc_subject == subject)).scalar_one_or_none()
    if user is None:
        user = db.session.execute(select(User).where(User.oidc_subject.is_(None), or_(
            func.lower(User.email) == email, func.lower(User.username) == email)).order_by(User.id).limit(1)
        ).scalar_one_or_none()
        if user is not None:
            user.oidc_subject = subject
            audit.record("user.sso_link", f"{user.username} linked to single sign-on ({email})", user=user,
                         target_type="user", target_id=user.id, after={"email": email})
    if user is None:
        if not cfg.jit:
            raise SsoRefused("no_account", f"There is no account for {email}. Ask an admin to create one.")
        if len(email) > 80 or db.session.execute(
                select(User.id).where(func.lower(User.username) == email)).first():
            raise SsoRefused("no_account", f"An account for {email} can't be created. Ask an admin.")
        roles = roles_from_idp(cfg, claims)
        user = User(username=email, email=email, oidc_subject=subject,
                    password_hash=accounts.hash_password(secrets.token_urlsafe(32)))  # no usable password
        user.role_list = roles
        db.session.add(user)
        db.session.flush()
        audit.record("user.create", f"Created user {email} at single sign-on "
                     f"({', '.join(roles) if roles else 'pending: no role yet'})", user=user,
                     target_type="user", target_id=user.id, after={"username": email, "roles": roles})
    if not user.is_active_user:
        raise SsoRefused("deactivated", "This account is deactivated. Ask an admin to activate it.")
    if cfg.role_mapping:
        apply_mapped_roles(user, roles_from_idp(cfg, claims))
    return user


def roles_from_idp(cfg: SsoConfig, claims: Mapping) -> list[str]:
    """The mapped roles of the token's groups/app roles; none mapped (or no mapping): the default
    role of a new account, or no role at all (pending)."""
    roles = mapped_roles(cfg, claims) if cfg.role_mapping else []
    return roles or ([cfg.default_role] if cfg.default_role else [])


def apply_mapped_roles(user: User, roles: list[str]) -> None:
    """With a mapping set, the IdP's groups/app roles decide the user's roles at each login (none
    mapped: the default role, or pending). The last active admin keeps admin, so no mapping
    mistake locks everyone out."""
    before = user.role_list
    if "admin" in before and "admin" not in roles and accounts._active_admin_count(user.id) == 0:
        roles = [r for r in STAFF_ROLES if r in set(roles) | {"admin"}]
    if roles == before:
        return
    user.role_list = roles
    accounts.end_sessions(user)
    audit.record("user.roles", f"Roles of {user.username} from single sign-on: {', '.join(before) or 'none'} → "
                 f"{', '.join(roles) or 'none (pending)'}", user=None, target_type="user", target_id=user.id,
                 before={"roles": before}, after={"roles": roles})


def finish(pending: Optional[Mapping], args: Mapping[str, str], redirect_uri: str) -> User:
    """The user for a callback (the caller then completes the login); SsoRefused, nothing logged in."""
    if not pending or not args.get("state") or not secrets.compare_digest(str(args.get("state")),
                                                                           str(pending.get("state"))):
        raise SsoRefused("state_mismatch", "The sign-in could not be matched to this browser. Start again.")
    if args.get("error"):
        raise SsoRefused("provider_error", "The sign-in provider did not sign you in "
                         f"({str(args.get('error'))[:60]}). Try again.")
    cfg = current_config()
    if not cfg.configured:
        raise SsoRefused("not_configured", "Single sign-on is not set up.")
    meta = discover(cfg.issuer)
    id_token = exchange_code(cfg, meta, str(args.get("code") or ""), pending["verifier"], redirect_uri)
    claims = verify_id_token(id_token, fetch_jwks(meta), issuer=meta["issuer"].rstrip("/"),
                             client_id=cfg.client_id, nonce=pending["nonce"])
    email = email_of(claims)
    check_allowed(cfg, email, claims)
    return find_or_create_user(cfg, claims, email)


def record_refusal(exc: SsoRefused, ip: str) -> None:
    """Audit a refused sign-in (whatever else was begun is dropped), in its own commit. Like refused
    password logins, one ``login.sso_refused`` row per address and throttle window is kept and
    counted in place (the last reason, the count per reason), so forged callbacks can't flood the log."""
    db.session.rollback()
    ip = (ip or "?")[:64]
    since = utcnow() - accounts.throttle_window()
    row = db.session.execute(
        select(AuditLog).where(AuditLog.event == "login.sso_refused", AuditLog.ip_address == ip,
                               AuditLog.created_at >= since)
        .order_by(AuditLog.id.desc()).limit(1).with_for_update()).scalar_one_or_none()
    if row is None:
        row = audit.record("login.sso_refused", "", user=None, ip_address=ip)
        counts: dict = {"count": 0, "reasons": {}}
    else:
        counts = dict(row.after or {})
    reasons = dict(counts.get("reasons") or {})
    reasons[exc.reason] = reasons.get(exc.reason, 0) + 1
    counts.update(reason=exc.reason, reasons=reasons, count=int(counts.get("count") or 0) + 1)
    row.after = counts  # a new dict, so the JSON column is written
    row.summary = (f"Single sign-on refused from {ip}: {exc.reason}" if counts["count"] == 1 else
                   f"Single sign-on refused {counts['count']} times from {ip}; last: {exc.reason}")[:500]
    db.session.commit()


# --- Settings → Sign-in ----------------------------------------------------------------------------

SIGNIN_FIELDS = ("oidc_issuer", "oidc_tenant_id", "oidc_client_id", "oidc_allowed_domains", "oidc_allowed_tenants",
                 "oidc_button_label", "oidc_default_role", "oidc_role_mapping")


def form_values() -> dict:
    s = get_settings()
    env = env_overrides()
    values = {f: getattr(s, f) or "" for f in SIGNIN_FIELDS}
    values.update({k: v for k, v in env.items() if k != "oidc_client_secret"})
    values["oidc_jit_enabled"] = s.oidc_jit_enabled
    values["oidc_password_break_glass_only"] = s.oidc_password_break_glass_only
    values["oidc_break_glass_user_id"] = s.oidc_break_glass_user_id
    values["secret_set"] = bool(s.oidc_client_secret or env.get("oidc_client_secret"))
    return values


def admin_choices() -> list[User]:
    return db.session.execute(select(User).where(User.is_active_user.is_(True), User.roles.like("%admin%"))
                              .order_by(User.username)).scalars().all()


def save_signin(form: Mapping[str, str]) -> bool:
    """Save Settings → Sign-in; SettingsError: nothing saved. The secret is write-only (empty keeps it)."""
    env = env_overrides()

    def typed(name: str, limit: int) -> Optional[str]:
        v = (form.get(name) or "").strip()
        if len(v) > limit:
            raise SettingsError(f"{name.replace('oidc_', '').replace('_', ' ').capitalize()} is too long.")
        return v or None

    try:
        values: dict = {}
        for name, limit in (("oidc_issuer", 500), ("oidc_tenant_id", 100), ("oidc_client_id", 255),
                            ("oidc_allowed_domains", 2000), ("oidc_allowed_tenants", 2000)):
            if name not in env:
                values[name] = typed(name, limit)
        issuer = values.get("oidc_issuer")
        if issuer and not issuer.startswith(("https://", "http://localhost", "http://127.0.0.1")):
            raise SettingsError("The issuer URL must start with https://.")
        tenant = values.get("oidc_tenant_id")
        if tenant and not all(c.isalnum() or c in "-." for c in tenant):
            raise SettingsError("The tenant ID must be a GUID or a domain like contoso.onmicrosoft.com.")
        for domain in split_list(values.get("oidc_allowed_domains")):
            if "." not in domain or "@" in domain or " " in domain:
                raise SettingsError(f"'{domain}' is not a domain like example.com.")
        values["oidc_button_label"] = typed("oidc_button_label", 100)
        role = (form.get("oidc_default_role") or "").strip().lower()
        if role and role not in STAFF_ROLES:
            raise SettingsError(f"The default role must be one of {', '.join(STAFF_ROLES)}, or none (pending).")
        values["oidc_default_role"] = role or None
        values["oidc_jit_enabled"] = form.get("oidc_jit_enabled") in ("on", "1", "true", "y")
        mapping_text = (form.get("oidc_role_mapping") or "").strip()
        parse_mapping(mapping_text)
        values["oidc_role_mapping"] = mapping_text or None
        only = form.get("oidc_password_break_glass_only") in ("on", "1", "true", "y")
        raw_id = (form.get("oidc_break_glass_user_id") or "").strip()
        admin_ids = {u.id for u in admin_choices()}
        user_id = int(raw_id) if raw_id.isdigit() else None
        if raw_id and user_id not in admin_ids:
            raise SettingsError("The break-glass account must be an active admin.")
        if only and user_id is None:
            raise SettingsError("Choose the break-glass admin who keeps password login before turning password "
                                "login off for everyone else.")
        values["oidc_password_break_glass_only"] = only
        values["oidc_break_glass_user_id"] = user_id
    except SettingsError as exc:
        raise SettingsError(f"{exc} Nothing was saved.") from None
    if "oidc_client_secret" not in env:
        secret = (form.get("oidc_client_secret") or "").strip()
        if secret:
            if not crypto.can_store():
                raise SettingsError(f"{crypto.no_key_message()} Nothing was saved.")
            values["oidc_client_secret"] = secret
        elif form.get("clear_secret") == "on":
            values["oidc_client_secret"] = None
    from .settings import save_section

    return save_section("signin", values)
