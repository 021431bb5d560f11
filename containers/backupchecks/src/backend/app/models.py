"""The domain model. Table names are stable: a rename needs a migration. The column types are in
``column_types``.

All timestamps are stored as timezone-aware UTC (``UTCDateTime``); pages
convert them to the configured UI timezone.
"""
from __future__ import annotations

from sqlalchemy import Index, UniqueConstraint, text

from .column_types import EncryptedText, UTCDateTime, utcnow
from .extensions import db

# The staff roles, and the fifth kind of user: a customer's own staff on the read-only portal,
# bound to one or more customers (``user_customers``) and never holding a staff role too. Which
# customers a user may see has one home: services/scope.py.
STAFF_ROLES = ("admin", "operator", "reporter", "viewer")
PORTAL_ROLE = "portal"
ROLES = STAFF_ROLES + (PORTAL_ROLE,)
THEMES = ("light", "dark", "auto")
STATUSES = ("Success", "Warning", "Failed", "Missed")


class TimestampMixin:
    created_at = db.Column(UTCDateTime(), nullable=False, default=utcnow)
    updated_at = db.Column(UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow)


# --- Accounts, settings, audit ---------------------------------------------------------

class User(TimestampMixin, db.Model):
    __tablename__ = "users"

    id = db.Column(db.Integer, primary_key=True)
    username = db.Column(db.String(80), nullable=False, unique=True)
    password_hash = db.Column(db.String(255), nullable=False)
    roles = db.Column(db.String(120), nullable=False, default="viewer")  # comma-separated
    active_role = db.Column(db.String(20), nullable=True)  # remembered across logins
    theme = db.Column(db.String(10), nullable=False, default="auto")
    is_active_user = db.Column(db.Boolean, nullable=False, default=True)
    last_login_at = db.Column(UTCDateTime(), nullable=True)
    last_dashboard_date = db.Column(db.String(10), nullable=True)  # YYYY-MM-DD in UI timezone
    # Stored in the session at login; logout, a password change, a role change and deactivation
    # raise it, so every session made before is refused at its next request (security.py).
    session_generation = db.Column(db.Integer, nullable=False, default=0, server_default="0")
    # The morning digest (profile): sent to ``email`` while subscribed; "all clear" days only when asked.
    email = db.Column(db.String(320), nullable=True)
    digest_subscribed = db.Column(db.Boolean, nullable=False, default=False, server_default=text("false"))
    digest_all_clear = db.Column(db.Boolean, nullable=False, default=False, server_default=text("false"))
    # Two-factor authentication (services/two_factor.py): the TOTP secret (encrypted; set while
    # enrolling, in force once ``totp_enabled_at`` is set), the last time-step a code was accepted
    # for (a code is used once), and the version of the user's credentials that a "remember this
    # browser" cookie is bound to (raised by a password change, 2FA change or reset, deactivation).
    totp_secret = db.Column(EncryptedText(), nullable=True)
    totp_enabled_at = db.Column(UTCDateTime(), nullable=True)
    totp_last_step = db.Column(db.BigInteger, nullable=True)
    credential_generation = db.Column(db.Integer, nullable=False, default=0, server_default="0")
    # Single sign-on: the IdP's subject ("<iss>|<sub>"), stored at the first SSO login (matched by
    # e-mail then), so later logins match by subject. Roles may be empty: a pending SSO account.
    oidc_subject = db.Column(db.String(600), nullable=True, unique=True)
    # A portal user: may the mail bodies of their customers' runs be shown (off unless an admin allows it).
    portal_mail_bodies = db.Column(db.Boolean, nullable=False, default=False, server_default=text("false"))

    customers = db.relationship("Customer", secondary="user_customers", lazy="select", order_by="Customer.name")

    @property
    def is_portal(self) -> bool:
        return PORTAL_ROLE in self.role_list

    @property
    def has_two_factor(self) -> bool:
        return self.totp_enabled_at is not None and bool(self.totp_secret)

    # Flask-Login protocol -----------------------------------------------------
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return bool(self.is_active_user)

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)

    # Roles ---------------------------------------------------------------------
    @property
    def role_list(self) -> list[str]:
        return [r for r in (self.roles or "").split(",") if r in ROLES]

    @role_list.setter
    def role_list(self, value) -> None:
        wanted = [r for r in ROLES if r in set(value)]
        self.roles = ",".join(wanted)
        if self.active_role not in wanted:
            self.active_role = wanted[0] if wanted else None

    @property
    def current_role(self) -> str | None:
        roles = self.role_list
        if self.active_role in roles:
            return self.active_role
        return roles[0] if roles else None


class SystemSettings(db.Model):
    """One row (id=1) of settings kept in the database and edited on /settings."""

    __tablename__ = "system_settings"

    id = db.Column(db.Integer, primary_key=True)
    # General
    ui_timezone = db.Column(db.String(64), nullable=False, default="Europe/Amsterdam")
    sandbox_mode = db.Column(db.Boolean, nullable=False, default=False)
    dashboard_first = db.Column(db.Boolean, nullable=False, default=False)  # dashboard policy
    daily_status_rule = db.Column(db.String(10), nullable=False, default="worst")  # worst|last|best
    company_name = db.Column(db.String(200), nullable=False, default="")
    # On: an imported run whose effective status is a success is reviewed on arrival (no reviewer)
    auto_review_successes = db.Column(db.Boolean, nullable=False, default=False, server_default=text("false"))
    # Two-factor authentication: the roles that must have it (comma-separated; "" = nobody must),
    # and whether "Remember this browser for 30 days" is offered at the code step
    two_factor_required_roles = db.Column(db.String(120), nullable=False, default="", server_default="")
    two_factor_remember_allowed = db.Column(db.Boolean, nullable=False, default=False,
                                            server_default=text("false"))
    # Mail (Microsoft Graph)
    graph_tenant_id = db.Column(db.String(100), nullable=True)
    graph_client_id = db.Column(db.String(100), nullable=True)
    graph_client_secret = db.Column(EncryptedText(), nullable=True)  # write-only in the UI, encrypted
    graph_mailbox = db.Column(db.String(255), nullable=True)
    graph_incoming_folder = db.Column(db.String(500), nullable=True)
    graph_processed_folder = db.Column(db.String(500), nullable=True)
    # Mail import source: graph (Microsoft 365) | imap; MAIL_SOURCE in the environment wins
    mail_source = db.Column(db.String(10), nullable=False, default="graph", server_default="graph")
    # Mail (IMAP); IMAP_* in the environment win
    imap_host = db.Column(db.String(255), nullable=True)
    imap_port = db.Column(db.Integer, nullable=True)
    imap_tls = db.Column(db.String(10), nullable=True)  # ssl | starttls | none
    imap_username = db.Column(db.String(255), nullable=True)
    imap_password = db.Column(EncryptedText(), nullable=True)  # write-only in the UI, encrypted
    imap_folder = db.Column(db.String(500), nullable=True)
    imap_processed_folder = db.Column(db.String(500), nullable=True)
    # Imports
    auto_import_enabled = db.Column(db.Boolean, nullable=False, default=False)
    import_interval_minutes = db.Column(db.Integer, nullable=False, default=15)
    import_batch_size = db.Column(db.Integer, nullable=False, default=50)
    manual_import_batch_size = db.Column(db.Integer, nullable=False, default=50)
    keep_raw_mails = db.Column(db.Boolean, nullable=False, default=True)
    raw_retention_days = db.Column(db.Integer, nullable=False, default=90)
    # Autotask
    autotask_enabled = db.Column(db.Boolean, nullable=False, default=False)
    autotask_environment = db.Column(db.String(20), nullable=False, default="sandbox")
    autotask_api_user = db.Column(db.String(255), nullable=True)
    autotask_secret = db.Column(EncryptedText(), nullable=True)  # write-only in the UI, encrypted
    autotask_integration_code = db.Column(db.String(255), nullable=True)
    autotask_base_url = db.Column(db.String(500), nullable=True)  # Backupchecks URL for deep links
    autotask_default_queue_id = db.Column(db.Integer, nullable=True)
    autotask_default_source_id = db.Column(db.Integer, nullable=True)
    autotask_default_priority_id = db.Column(db.Integer, nullable=True)
    autotask_default_status_id = db.Column(db.Integer, nullable=True)
    autotask_reference_data = db.Column(db.JSON, nullable=True)
    autotask_reference_refreshed_at = db.Column(UTCDateTime(), nullable=True)
    # Reports
    report_retention_days = db.Column(db.Integer, nullable=False, default=90)
    # Mail sending (e-mail channels, the digest): SMTP server; SMTP_* in the environment win
    smtp_host = db.Column(db.String(255), nullable=True)
    smtp_port = db.Column(db.Integer, nullable=True)
    smtp_security = db.Column(db.String(10), nullable=True)  # starttls | ssl | none
    smtp_username = db.Column(db.String(255), nullable=True)
    smtp_password = db.Column(EncryptedText(), nullable=True)  # write-only in the UI, encrypted
    smtp_from = db.Column(db.String(320), nullable=True)
    # The morning digest (Settings → Digest)
    digest_enabled = db.Column(db.Boolean, nullable=False, default=False, server_default=text("false"))
    digest_time = db.Column(db.String(5), nullable=False, default="08:00", server_default="08:00")  # HH:MM, UI zone
    digest_recipients = db.Column(db.Text, nullable=True)  # extra addresses, comma separated
    digest_transport = db.Column(db.String(10), nullable=False, default="graph", server_default="graph")  # graph|smtp
    # Single sign-on (Settings → Sign-in); OIDC_* in the environment win
    oidc_issuer = db.Column(db.String(500), nullable=True)
    oidc_tenant_id = db.Column(db.String(100), nullable=True)
    oidc_client_id = db.Column(db.String(255), nullable=True)
    oidc_client_secret = db.Column(EncryptedText(), nullable=True)  # write-only in the UI, encrypted
    oidc_allowed_domains = db.Column(db.Text, nullable=True)  # comma separated
    oidc_allowed_tenants = db.Column(db.Text, nullable=True)  # comma separated tid values
    oidc_button_label = db.Column(db.String(100), nullable=True)
    oidc_jit_enabled = db.Column(db.Boolean, nullable=False, default=False, server_default=text("false"))
    oidc_default_role = db.Column(db.String(20), nullable=True)  # one of ROLES, or None: pending
    oidc_role_mapping = db.Column(db.Text, nullable=True)  # lines "group-or-app-role = role"
    oidc_password_break_glass_only = db.Column(db.Boolean, nullable=False, default=False,
                                               server_default=text("false"))
    oidc_break_glass_user_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    updated_at = db.Column(UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow)

    @classmethod
    def secret_columns(cls) -> tuple[str, ...]:
        """Every column that holds a secret (the encrypted ones)."""
        return tuple(c.name for c in cls.__table__.columns if isinstance(c.type, EncryptedText))


class AuditLog(db.Model):
    __tablename__ = "audit_logs"

    id = db.Column(db.Integer, primary_key=True)
    created_at = db.Column(UTCDateTime(), nullable=False, default=utcnow, index=True)
    user_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"), nullable=True, index=True)
    username = db.Column(db.String(80), nullable=True)  # kept when the user is deleted
    event = db.Column(db.String(80), nullable=False, index=True)
    target_type = db.Column(db.String(50), nullable=True)
    target_id = db.Column(db.String(50), nullable=True)
    summary = db.Column(db.String(500), nullable=False, default="")
    before = db.Column(db.JSON, nullable=True)
    after = db.Column(db.JSON, nullable=True)
    ip_address = db.Column(db.String(64), nullable=True)

    # The Audit log filtered by a user, newest first, without reading the whole log.
    __table_args__ = (db.Index("ix_audit_logs_user_time", db.func.lower(username), created_at, id),)


class RecoveryCode(db.Model):
    """A user's one-time 2FA recovery codes, stored hashed (services/two_factor.py); a used one is deleted."""

    __tablename__ = "recovery_codes"

    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    code_hash = db.Column(db.String(64), nullable=False)
    created_at = db.Column(UTCDateTime(), nullable=False, default=utcnow)


class LoginAttempt(db.Model):
    """Failed logins, for throttling per user and per address across processes."""

    __tablename__ = "login_attempts"

    id = db.Column(db.Integer, primary_key=True)
    username = db.Column(db.String(80), nullable=False)  # lower case: the throttle is per name, any capitalisation
    ip_address = db.Column(db.String(64), nullable=False)
    created_at = db.Column(UTCDateTime(), nullable=False, default=utcnow, index=True)  # pruning after the window

    __table_args__ = (
        Index("ix_login_attempts_username_created", "username", "created_at"),
        Index("ix_login_attempts_ip_created", "ip_address", "created_at"),
    )


class ApiToken(db.Model):
    """A user's token for the JSON API (services/api_tokens.py): shown once, stored as the SHA-256 of
    the secret (the secret has 256 random bits), read-only or read-write within the user's role."""

    __tablename__ = "api_tokens"

    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    name = db.Column(db.String(100), nullable=False)
    token_hash = db.Column(db.String(64), nullable=False, unique=True)
    prefix = db.Column(db.String(16), nullable=False)  # the first characters, to tell tokens apart in lists
    read_only = db.Column(db.Boolean, nullable=False, default=True)
    created_at = db.Column(UTCDateTime(), nullable=False, default=utcnow)
    expires_at = db.Column(UTCDateTime(), nullable=True)
    last_used_at = db.Column(UTCDateTime(), nullable=True)
    last_used_ip = db.Column(db.String(64), nullable=True)
    revoked_at = db.Column(UTCDateTime(), nullable=True)

    user = db.relationship("User")


class ApiRateWindow(db.Model):
    """The API rate limit of one token: the current fixed window (a UTC minute) and the requests
    counted in it. One row per token, reused when a new minute starts (services/api_rate_limit.py:
    one UPSERT … RETURNING per request), so there are no old windows to prune."""

    __tablename__ = "api_rate_windows"

    token_id = db.Column(db.Integer, db.ForeignKey("api_tokens.id", ondelete="CASCADE"), primary_key=True)
    window_start = db.Column(UTCDateTime(), nullable=False)
    count = db.Column(db.Integer, nullable=False)


class PortalInvitation(db.Model):
    """A one-time link that lets a customer's own staff make their portal account
    (services/invitations.py): the secret is shown once, stored as its SHA-256; it binds the new
    user to ``customers`` and expires, is used once, or is revoked."""

    __tablename__ = "portal_invitations"

    id = db.Column(db.Integer, primary_key=True)
    token_hash = db.Column(db.String(64), nullable=False, unique=True)
    note = db.Column(db.String(200), nullable=False, default="", server_default="")  # for whom (admins only)
    mail_bodies = db.Column(db.Boolean, nullable=False, default=False, server_default=text("false"))
    created_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    created_at = db.Column(UTCDateTime(), nullable=False, default=utcnow)
    expires_at = db.Column(UTCDateTime(), nullable=False)
    used_at = db.Column(UTCDateTime(), nullable=True)
    used_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    revoked_at = db.Column(UTCDateTime(), nullable=True)

    customers = db.relationship("Customer", secondary="portal_invitation_customers", lazy="select",
                                order_by="Customer.name")
    created_by = db.relationship("User", foreign_keys=[created_by_id])
    used_by = db.relationship("User", foreign_keys=[used_by_id])


# --- Customers, jobs, mail, runs ------------------------------------------------------------

class Customer(TimestampMixin, db.Model):
    __tablename__ = "customers"

    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(200), nullable=False, unique=True)
    active = db.Column(db.Boolean, nullable=False, default=True)
    autotask_company_id = db.Column(db.Integer, nullable=True)
    autotask_company_name = db.Column(db.String(255), nullable=True)
    autotask_mapping_status = db.Column(db.String(20), nullable=True)  # ok|renamed|missing|invalid
    autotask_checked_at = db.Column(UTCDateTime(), nullable=True)

    jobs = db.relationship("Job", back_populates="customer", lazy="select")


class CustomerBadge(db.Model):
    """A customer's status badge for NOC screens (services/badges.py): an unauthenticated URL with a
    key of 192 random bits. Looked up by the SHA-256 of the key; the key itself is kept encrypted so
    the URL can be shown to admins and operators again. At most one live badge per customer;
    a revoked one answers 404."""

    __tablename__ = "customer_badges"

    id = db.Column(db.Integer, primary_key=True)
    customer_id = db.Column(db.Integer, db.ForeignKey("customers.id", ondelete="CASCADE"), nullable=False,
                            index=True)
    key_hash = db.Column(db.String(64), nullable=False, unique=True)
    key = db.Column(EncryptedText(), nullable=True)  # None only when no configured key can read it
    created_at = db.Column(UTCDateTime(), nullable=False, default=utcnow)
    revoked_at = db.Column(UTCDateTime(), nullable=True)

    customer = db.relationship("Customer")

    __table_args__ = (
        # One live badge per customer: creating a new one revokes the old one in the same transaction.
        Index("uq_customer_badges_live", "customer_id", unique=True,
              postgresql_where=text("revoked_at IS NULL")),
    )


user_customers = db.Table(
    "user_customers",
    db.Column("user_id", db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    db.Column("customer_id", db.Integer, db.ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True,
              index=True),
)


portal_invitation_customers = db.Table(
    "portal_invitation_customers",
    db.Column("invitation_id", db.Integer, db.ForeignKey("portal_invitations.id", ondelete="CASCADE"),
              primary_key=True),
    db.Column("customer_id", db.Integer, db.ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True,
              index=True),
)


class Job(TimestampMixin, db.Model):
    __tablename__ = "jobs"

    id = db.Column(db.Integer, primary_key=True)
    customer_id = db.Column(db.Integer, db.ForeignKey("customers.id"), nullable=False, index=True)
    # Identity: sender + job name + software (normalised in identity_key).
    sender = db.Column(db.String(320), nullable=False, default="")
    job_name = db.Column(db.String(500), nullable=False)
    software = db.Column(db.String(120), nullable=False, default="")
    backup_type = db.Column(db.String(120), nullable=True)
    identity_key = db.Column(db.String(1000), nullable=False)
    archived = db.Column(db.Boolean, nullable=False, default=False)
    archived_at = db.Column(UTCDateTime(), nullable=True)
    # Schedule: learned from runs, or set by hand (the manual one wins).
    schedule_kind = db.Column(db.String(20), nullable=False, default="unknown")  # daily|weekly|monthly|every_n_days|irregular|unknown
    learned_schedule = db.Column(db.JSON, nullable=True)
    learned_at = db.Column(UTCDateTime(), nullable=True)
    manual_schedule = db.Column(db.JSON, nullable=True)
    next_expected_at = db.Column(UTCDateTime(), nullable=True)  # slot + grace: when "missed" is decided
    next_expected_slot = db.Column(UTCDateTime(), nullable=True)
    last_run_at = db.Column(UTCDateTime(), nullable=True)
    last_status = db.Column(db.String(20), nullable=True)
    # Notifications: send a failure only when the job has failed this many times in a row (NULL: each
    # channel's own "after N consecutive failures").
    alert_after_failures = db.Column(db.Integer, nullable=True)

    customer = db.relationship("Customer", back_populates="jobs")
    runs = db.relationship("JobRun", back_populates="job", lazy="dynamic", passive_deletes=True)

    __table_args__ = (
        UniqueConstraint("identity_key", name="uq_jobs_identity_key"),
        # The missed-run loop asks this index for expired deadlines only.
        Index("ix_jobs_next_expected_due", "next_expected_at",
              postgresql_where=text("archived = false AND next_expected_at IS NOT NULL")),
    )


class MailMessage(db.Model):
    __tablename__ = "mail_messages"

    id = db.Column(db.Integer, primary_key=True)
    source = db.Column(db.String(20), nullable=False, default="upload")  # graph|imap|upload|folder|cli|smtp
    source_id = db.Column(db.String(500), nullable=True)
    internet_message_id = db.Column(db.String(998), nullable=True)
    from_address = db.Column(db.String(320), nullable=False, default="")
    subject = db.Column(db.String(1000), nullable=False, default="")
    received_at = db.Column(UTCDateTime(), nullable=True)  # the mail's Date
    imported_at = db.Column(UTCDateTime(), nullable=False, default=utcnow)
    raw = db.Column(db.LargeBinary, nullable=True)
    raw_size = db.Column(db.Integer, nullable=True)
    raw_sha256 = db.Column(db.String(64), nullable=True)
    raw_purged_at = db.Column(UTCDateTime(), nullable=True)
    body_text = db.Column(db.Text, nullable=True)
    body_html = db.Column(db.Text, nullable=True)
    # Parse result
    parsed = db.Column(db.Boolean, nullable=False, default=False)
    is_report = db.Column(db.Boolean, nullable=False, default=True)
    parser_name = db.Column(db.String(100), nullable=True)
    parse_reason = db.Column(db.String(1000), nullable=True)
    parse_error = db.Column(db.Text, nullable=True)
    software = db.Column(db.String(120), nullable=True)
    backup_type = db.Column(db.String(120), nullable=True)
    job_name = db.Column(db.String(500), nullable=True)
    overall_status = db.Column(db.String(20), nullable=True)
    parse_result = db.Column(db.JSON, nullable=True)  # objects, started_at, ended_at
    # Workflow
    state = db.Column(db.String(20), nullable=False, default="inbox")  # inbox|processed|ignored|error|deleted
    job_id = db.Column(db.Integer, db.ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True, index=True)
    deleted_at = db.Column(UTCDateTime(), nullable=True)
    deleted_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"), nullable=True)

    job = db.relationship("Job")

    __table_args__ = (
        UniqueConstraint("source", "source_id", name="uq_mail_messages_source_source_id"),
        UniqueConstraint("internet_message_id", name="uq_mail_messages_internet_message_id"),
        Index("ix_mail_messages_state_received", "state", "received_at"),
    )


class JobRun(db.Model):
    __tablename__ = "job_runs"

    id = db.Column(db.Integer, primary_key=True)
    job_id = db.Column(db.Integer, db.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False)
    mail_message_id = db.Column(db.Integer, db.ForeignKey("mail_messages.id", ondelete="SET NULL"), nullable=True, index=True)
    status = db.Column(db.String(20), nullable=False)  # Success|Warning|Failed|Missed
    effective_status = db.Column(db.String(20), nullable=False)  # after overrides
    override_id = db.Column(db.Integer, db.ForeignKey("overrides.id", ondelete="SET NULL"), nullable=True)
    started_at = db.Column(UTCDateTime(), nullable=True)
    ended_at = db.Column(UTCDateTime(), nullable=True)
    missed = db.Column(db.Boolean, nullable=False, default=False)
    missed_slot = db.Column(UTCDateTime(), nullable=True)  # the expected slot a missed run stands for
    message = db.Column(db.Text, nullable=True)
    reviewed_at = db.Column(UTCDateTime(), nullable=True)
    reviewed_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    autotask_ticket_id = db.Column(db.Integer, nullable=True)
    autotask_ticket_number = db.Column(db.String(50), nullable=True)
    autotask_ticket_created_at = db.Column(UTCDateTime(), nullable=True)
    autotask_ticket_created_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    created_at = db.Column(UTCDateTime(), nullable=False, default=utcnow)

    job = db.relationship("Job", back_populates="runs")
    mail_message = db.relationship("MailMessage")
    objects = db.relationship("RunObject", back_populates="run", cascade="all, delete-orphan",
                              order_by="RunObject.id")
    reviewed_by = db.relationship("User", foreign_keys=[reviewed_by_id])

    @property
    def reviewed_on_arrival(self) -> bool:
        """Reviewed by the system when it was imported ("Successful runs need no review"): no
        reviewer, and reviewed at the moment it was created. A run whose reviewer was deleted
        later has no reviewer either, but was reviewed after it arrived."""
        return (self.reviewed_at is not None and self.reviewed_by_id is None
                and self.created_at is not None and self.reviewed_at == self.created_at)

    __table_args__ = (
        Index("ix_job_runs_job_started", "job_id", "started_at"),
        Index("ix_job_runs_unreviewed", "job_id", postgresql_where=text("reviewed_at IS NULL")),
        # Runs by start time; the dashboard's 30-day chart reads status and override from the index alone.
        Index("ix_job_runs_started_status", "started_at", postgresql_include=["effective_status", "override_id"]),
        # The JSON API's run list: newest first by when the backup started (else stored), then id (keyset paging).
        Index("ix_job_runs_run_time", db.func.coalesce(started_at, created_at), "id"),
        # At most one missed run per job and expected slot.
        UniqueConstraint("job_id", "missed_slot", name="uq_job_runs_job_id_missed_slot"),
    )


class RunObject(db.Model):
    __tablename__ = "run_objects"

    id = db.Column(db.Integer, primary_key=True)
    job_run_id = db.Column(db.Integer, db.ForeignKey("job_runs.id", ondelete="CASCADE"), nullable=False, index=True)
    name = db.Column(db.String(500), nullable=False)
    type = db.Column(db.String(100), nullable=True)
    status = db.Column(db.String(20), nullable=True)
    effective_status = db.Column(db.String(20), nullable=True)
    message = db.Column(db.Text, nullable=True)
    override_id = db.Column(db.Integer, db.ForeignKey("overrides.id", ondelete="SET NULL"), nullable=True)

    run = db.relationship("JobRun", back_populates="objects")


class Override(TimestampMixin, db.Model):
    __tablename__ = "overrides"

    id = db.Column(db.Integer, primary_key=True)
    level = db.Column(db.String(10), nullable=False)  # global|job|object
    software = db.Column(db.String(120), nullable=True)
    backup_type = db.Column(db.String(120), nullable=True)
    job_name_pattern = db.Column(db.String(500), nullable=True)
    job_id = db.Column(db.Integer, db.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=True, index=True)
    object_name = db.Column(db.String(500), nullable=True)
    match_status = db.Column(db.String(20), nullable=True)  # empty = any
    match_text = db.Column(db.String(1000), nullable=True)
    match_mode = db.Column(db.String(12), nullable=False, default="contains")  # contains|exact|starts|ends
    valid_from = db.Column(UTCDateTime(), nullable=True)
    valid_until = db.Column(UTCDateTime(), nullable=True)
    treat_as_success = db.Column(db.Boolean, nullable=False, default=True)
    comment = db.Column(db.String(1000), nullable=True)
    active = db.Column(db.Boolean, nullable=False, default=True)
    created_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"), nullable=True)

    job = db.relationship("Job")


# --- Tickets and remarks ---------------------------------------------------------------------

class _OpenUntilResolved:
    """What tickets and remarks share: in force from ``active_from`` until resolved."""
    active_from = db.Column(UTCDateTime(), nullable=False, default=utcnow)
    created_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    resolved_at = db.Column(UTCDateTime(), nullable=True)
    resolved_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    resolution_note = db.Column(db.Text, nullable=True)


class _Scope:
    """One scope of a ticket or remark: a customer, a job, or one object of a job."""
    scope_type = db.Column(db.String(10), nullable=False)  # customer|job|object
    customer_id = db.Column(db.Integer, db.ForeignKey("customers.id", ondelete="CASCADE"), nullable=True, index=True)
    job_id = db.Column(db.Integer, db.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=True, index=True)
    object_name = db.Column(db.String(500), nullable=True)


class _RunLink:
    """A run a ticket or remark was linked to (when it was open as the run came in)."""
    job_run_id = db.Column(db.Integer, db.ForeignKey("job_runs.id", ondelete="CASCADE"), primary_key=True, index=True)
    linked_at = db.Column(UTCDateTime(), nullable=False, default=utcnow)


class Ticket(_OpenUntilResolved, TimestampMixin, db.Model):
    __tablename__ = "tickets"

    id = db.Column(db.Integer, primary_key=True)
    code = db.Column(db.String(100), nullable=False, index=True)
    description = db.Column(db.Text, nullable=False, default="")
    autotask_ticket_id = db.Column(db.Integer, nullable=True, index=True)

    scopes = db.relationship("TicketScope", back_populates="ticket", cascade="all, delete-orphan")


class TicketScope(_Scope, db.Model):
    __tablename__ = "ticket_scopes"

    id = db.Column(db.Integer, primary_key=True)
    ticket_id = db.Column(db.Integer, db.ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False, index=True)

    ticket = db.relationship("Ticket", back_populates="scopes")


class TicketJobRun(_RunLink, db.Model):
    __tablename__ = "ticket_job_runs"

    ticket_id = db.Column(db.Integer, db.ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)


class Remark(_OpenUntilResolved, TimestampMixin, db.Model):
    __tablename__ = "remarks"

    id = db.Column(db.Integer, primary_key=True)
    body = db.Column(db.Text, nullable=False, default="")

    scopes = db.relationship("RemarkScope", back_populates="remark", cascade="all, delete-orphan")


class RemarkScope(_Scope, db.Model):
    __tablename__ = "remark_scopes"

    id = db.Column(db.Integer, primary_key=True)
    remark_id = db.Column(db.Integer, db.ForeignKey("remarks.id", ondelete="CASCADE"), nullable=False, index=True)

    remark = db.relationship("Remark", back_populates="scopes")


class RemarkJobRun(_RunLink, db.Model):
    __tablename__ = "remark_job_runs"

    remark_id = db.Column(db.Integer, db.ForeignKey("remarks.id", ondelete="CASCADE"), primary_key=True)


# --- Feedback and news -------------------------------------------------------------------------

class FeedbackItem(TimestampMixin, db.Model):
    __tablename__ = "feedback_items"

    id = db.Column(db.Integer, primary_key=True)
    kind = db.Column(db.String(10), nullable=False, default="bug")  # bug|feature|question
    title = db.Column(db.String(200), nullable=False)
    description = db.Column(db.Text, nullable=False, default="")  # Markdown
    # The Markdown as sanitised HTML, rendered when saved, and the renderer version (services/markdown_render.py)
    description_html = db.Column(db.Text, nullable=False, default="", server_default="")
    html_version = db.Column(db.Integer, nullable=False, default=0, server_default="0")
    status = db.Column(db.String(20), nullable=False, default="open")
    created_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    deleted_at = db.Column(UTCDateTime(), nullable=True)
    deleted_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"), nullable=True)


class FeedbackVote(db.Model):
    __tablename__ = "feedback_votes"

    id = db.Column(db.Integer, primary_key=True)
    item_id = db.Column(db.Integer, db.ForeignKey("feedback_items.id", ondelete="CASCADE"), nullable=False)
    user_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    created_at = db.Column(UTCDateTime(), nullable=False, default=utcnow)

    __table_args__ = (UniqueConstraint("item_id", "user_id", name="uq_feedback_votes_item_id_user_id"),)


class FeedbackReply(db.Model):
    __tablename__ = "feedback_replies"

    id = db.Column(db.Integer, primary_key=True)
    item_id = db.Column(db.Integer, db.ForeignKey("feedback_items.id", ondelete="CASCADE"), nullable=False, index=True)
    user_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    body = db.Column(db.Text, nullable=False)  # Markdown
    # The Markdown as sanitised HTML, rendered when saved, and the renderer version (services/markdown_render.py)
    body_html = db.Column(db.Text, nullable=False, default="", server_default="")
    html_version = db.Column(db.Integer, nullable=False, default=0, server_default="0")
    created_at = db.Column(UTCDateTime(), nullable=False, default=utcnow)


class FeedbackAttachment(db.Model):
    __tablename__ = "feedback_attachments"

    id = db.Column(db.Integer, primary_key=True)
    item_id = db.Column(db.Integer, db.ForeignKey("feedback_items.id", ondelete="CASCADE"), nullable=False, index=True)
    reply_id = db.Column(db.Integer, db.ForeignKey("feedback_replies.id", ondelete="CASCADE"), nullable=True)
    filename = db.Column(db.String(255), nullable=False)
    content_type = db.Column(db.String(50), nullable=False)
    size = db.Column(db.Integer, nullable=False)
    data = db.Column(db.LargeBinary, nullable=False)
    created_at = db.Column(UTCDateTime(), nullable=False, default=utcnow)


class NewsItem(TimestampMixin, db.Model):
    __tablename__ = "news_items"

    id = db.Column(db.Integer, primary_key=True)
    title = db.Column(db.String(200), nullable=False)
    body = db.Column(db.Text, nullable=False, default="")  # Markdown
    # The Markdown as sanitised HTML, rendered when saved, and the renderer version (services/markdown_render.py)
    body_html = db.Column(db.Text, nullable=False, default="", server_default="")
    html_version = db.Column(db.Integer, nullable=False, default=0, server_default="0")
    visible_from = db.Column(UTCDateTime(), nullable=True)
    visible_until = db.Column(UTCDateTime(), nullable=True)
    created_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"), nullable=True)


# --- Background work ----------------------------------------------------------------------------

class ImportCycle(db.Model):
    """One run of the mail importer (automatic, manual or CLI), for Settings → Imports."""

    __tablename__ = "import_cycles"

    id = db.Column(db.Integer, primary_key=True)
    trigger = db.Column(db.String(20), nullable=False, default="auto")  # auto|manual|cli|upload
    started_at = db.Column(UTCDateTime(), nullable=False, default=utcnow, index=True)
    finished_at = db.Column(UTCDateTime(), nullable=True)
    state = db.Column(db.String(20), nullable=False, default="running")  # running|done|failed
    fetched = db.Column(db.Integer, nullable=False, default=0)
    new = db.Column(db.Integer, nullable=False, default=0)
    duplicates = db.Column(db.Integer, nullable=False, default=0)
    auto_processed = db.Column(db.Integer, nullable=False, default=0)
    to_inbox = db.Column(db.Integer, nullable=False, default=0)
    failed = db.Column(db.Integer, nullable=False, default=0)
    error = db.Column(db.Text, nullable=True)


class BackgroundTask(db.Model):
    """A long action (re-parse all, import now, report) with progress that survives a reload."""

    __tablename__ = "background_tasks"

    id = db.Column(db.Integer, primary_key=True)
    kind = db.Column(db.String(40), nullable=False, index=True)
    state = db.Column(db.String(20), nullable=False, default="queued")  # queued|running|done|failed
    progress = db.Column(db.Integer, nullable=False, default=0)
    total = db.Column(db.Integer, nullable=True)
    message = db.Column(db.String(1000), nullable=True)
    created_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    created_at = db.Column(UTCDateTime(), nullable=False, default=utcnow)
    started_at = db.Column(UTCDateTime(), nullable=True)
    finished_at = db.Column(UTCDateTime(), nullable=True)


class WorkerHeartbeat(db.Model):
    """A process that runs the background runner, as it last reported itself (``services/heartbeat.py``).

    One row per process (host name + process id), written every few seconds by the runner with the
    database's clock: whether it holds the leader lock and which loop step it is in. The worker's
    health check (``python -m backend.app.worker --check``) reads the rows of its own host."""

    __tablename__ = "worker_heartbeats"

    hostname = db.Column(db.String(255), primary_key=True)
    pid = db.Column(db.Integer, primary_key=True, autoincrement=False)
    kind = db.Column(db.String(20), nullable=False)  # worker (the worker service) | web (a web process)
    started_at = db.Column(UTCDateTime(), nullable=False)
    beat_at = db.Column(UTCDateTime(), nullable=False)
    leader = db.Column(db.Boolean, nullable=False, default=False)  # runs the loops (holds the leader lock)
    step = db.Column(db.String(60), nullable=True)  # the loop step under way since beat_at, if any


class BackgroundLoopStats(db.Model):
    """Each background loop's steps so far, for the Prometheus metrics (``services/metrics``).

    The loops run in another process (the worker) than the web processes that answer ``/metrics``,
    so what they did lives here: one row per loop, counted up by one UPSERT after every step
    (``metrics.record_loop_step``) and read at scrape time."""

    __tablename__ = "background_loop_stats"

    loop = db.Column(db.String(60), primary_key=True)
    steps_total = db.Column(db.BigInteger, nullable=False, default=0)
    failures_total = db.Column(db.BigInteger, nullable=False, default=0)  # steps that raised
    duration_seconds_total = db.Column(db.Float, nullable=False, default=0.0)
    last_step_at = db.Column(UTCDateTime(), nullable=True)  # when the last step ended
    last_success_at = db.Column(UTCDateTime(), nullable=True)  # when the last step that did not raise ended
    last_duration_seconds = db.Column(db.Float, nullable=True)


class ImportCycleStats(db.Model):
    """Import cycles so far by trigger and outcome, for the Prometheus metrics: one UPSERT in the
    transaction that finishes a cycle (``metrics.record_import_cycle``), so a scrape reads a few
    rows instead of adding up ``import_cycles``."""

    __tablename__ = "import_cycle_stats"

    trigger = db.Column(db.String(20), primary_key=True)  # auto|manual|cli
    state = db.Column(db.String(20), primary_key=True)  # done|failed
    cycles_total = db.Column(db.BigInteger, nullable=False, default=0)
    duration_seconds_total = db.Column(db.Float, nullable=False, default=0.0)
    fetched_total = db.Column(db.BigInteger, nullable=False, default=0)
    new_total = db.Column(db.BigInteger, nullable=False, default=0)
    duplicates_total = db.Column(db.BigInteger, nullable=False, default=0)
    auto_processed_total = db.Column(db.BigInteger, nullable=False, default=0)
    to_inbox_total = db.Column(db.BigInteger, nullable=False, default=0)
    failed_total = db.Column(db.BigInteger, nullable=False, default=0)
    last_finished_at = db.Column(UTCDateTime(), nullable=True)
    last_duration_seconds = db.Column(db.Float, nullable=True)


# --- Reports ---------------------------------------------------------------------------------------

class ReportDefinition(TimestampMixin, db.Model):
    """What a report contains and, optionally, when it is mailed to whom."""

    __tablename__ = "report_definitions"

    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(200), nullable=False)
    all_customers = db.Column(db.Boolean, nullable=False, default=True)
    customer_ids = db.Column(db.JSON, nullable=True)  # list of ids when not all customers
    period = db.Column(db.String(20), nullable=False, default="last_month")  # last_7_days|last_month|custom
    custom_start = db.Column(db.Date, nullable=True)  # inclusive, UI timezone
    custom_end = db.Column(db.Date, nullable=True)    # inclusive, UI timezone
    content = db.Column(db.JSON, nullable=True)  # {"summary": true, "success_rate": true, "failures": true, ...}
    intro_markdown = db.Column(db.Text, nullable=False, default="")
    # The Markdown as sanitised HTML, rendered when saved, and the renderer version (services/markdown_render.py)
    intro_html = db.Column(db.Text, nullable=False, default="", server_default="")
    html_version = db.Column(db.Integer, nullable=False, default=0, server_default="0")
    schedule = db.Column(db.String(10), nullable=False, default="none")  # none|weekly|monthly
    schedule_day = db.Column(db.Integer, nullable=True)  # weekday 0-6 (weekly) or day of month 1-28 (monthly)
    schedule_time = db.Column(db.String(5), nullable=True)  # HH:MM in the UI timezone
    recipients = db.Column(db.Text, nullable=True)  # comma-separated addresses
    next_delivery_at = db.Column(UTCDateTime(), nullable=True, index=True)
    created_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"), nullable=True)


class ReportRun(db.Model):
    """One generated report (PDF or CSV), stored for download until the retention passes."""

    __tablename__ = "report_runs"

    id = db.Column(db.Integer, primary_key=True)
    definition_id = db.Column(db.Integer, db.ForeignKey("report_definitions.id", ondelete="CASCADE"),
                              nullable=False, index=True)
    trigger = db.Column(db.String(20), nullable=False, default="manual")  # manual|scheduled
    fmt = db.Column(db.String(10), nullable=False, default="pdf")  # pdf|csv
    state = db.Column(db.String(20), nullable=False, default="queued")  # queued|running|done|failed
    progress = db.Column(db.Integer, nullable=False, default=0)
    total = db.Column(db.Integer, nullable=True)
    period_start = db.Column(UTCDateTime(), nullable=True)
    period_end = db.Column(UTCDateTime(), nullable=True)
    filename = db.Column(db.String(255), nullable=True)
    content_type = db.Column(db.String(100), nullable=True)
    data = db.Column(db.LargeBinary, nullable=True)
    size = db.Column(db.Integer, nullable=True)
    error = db.Column(db.Text, nullable=True)
    created_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    created_at = db.Column(UTCDateTime(), nullable=False, default=utcnow, index=True)
    finished_at = db.Column(UTCDateTime(), nullable=True)
    # The customers the generated file covers (ids), written when it is generated; NULL before that
    # (and for files from before this column): the portal shows a file only when all of them are theirs.
    customer_ids = db.Column(db.JSON, nullable=True)
    # Delivery by mail (scheduled reports)
    delivery_state = db.Column(db.String(20), nullable=True)  # pending|sent|failed
    delivery_attempts = db.Column(db.Integer, nullable=False, default=0)
    delivery_error = db.Column(db.Text, nullable=True)
    delivered_at = db.Column(UTCDateTime(), nullable=True)
    next_attempt_at = db.Column(UTCDateTime(), nullable=True)

    __table_args__ = (
        # "How many reports has this user queued or running?" on every Generate click.
        Index("ix_report_runs_created_by_state", "created_by_id", "state"),
    )


# --- Notifications ---------------------------------------------------------------------------------

# The customers a channel is limited to (used when the channel's all_customers is off).
notification_channel_customers = db.Table(
    "notification_channel_customers",
    db.Column("channel_id", db.Integer, db.ForeignKey("notification_channels.id", ondelete="CASCADE"), primary_key=True),
    db.Column("customer_id", db.Integer, db.ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True,
              index=True),
)


class NotificationChannel(TimestampMixin, db.Model):
    """Where run events are sent (Settings → Notifications): a webhook, Slack, Teams, Discord or any
    Apprise URL. The target URL and the webhook's signing secret are secrets (write-only in the UI)."""

    __tablename__ = "notification_channels"

    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(120), nullable=False)
    kind = db.Column(db.String(20), nullable=False)  # webhook | slack | teams | discord | apprise | email
    target_url = db.Column(EncryptedText(), nullable=True)  # every kind but email
    secret = db.Column(EncryptedText(), nullable=True)  # webhook only: HMAC-SHA256 key of the signature
    recipients = db.Column(db.Text, nullable=True)  # email only: addresses, comma separated
    transport = db.Column(db.String(10), nullable=True)  # email only: graph | smtp
    enabled = db.Column(db.Boolean, nullable=False, default=True, server_default=text("true"))
    on_failed = db.Column(db.Boolean, nullable=False, default=True, server_default=text("true"))
    on_missed = db.Column(db.Boolean, nullable=False, default=True, server_default=text("true"))
    on_warning = db.Column(db.Boolean, nullable=False, default=False, server_default=text("false"))
    on_recovery = db.Column(db.Boolean, nullable=False, default=True, server_default=text("true"))
    # Set for a channel that comes from NOTIFY_URLS (read-only in the UI): a digest of its URL.
    env_key = db.Column(db.String(64), nullable=True, unique=True)
    # Rules (docs: Notifications → Rules). Scope: every customer, or only those in `customers`.
    all_customers = db.Column(db.Boolean, nullable=False, default=True, server_default=text("true"))
    # A failed or missed event only when the job's streak of Failed/Missed runs reaches this (1: every one).
    min_failures = db.Column(db.Integer, nullable=False, default=1, server_default=text("1"))
    # Quiet hours: local wall-clock times in the UI timezone (both NULL: none); hold = deliver at the end.
    quiet_start = db.Column(db.Time(), nullable=True)
    quiet_end = db.Column(db.Time(), nullable=True)
    quiet_mode = db.Column(db.String(10), nullable=False, default="hold", server_default=text("'hold'"))

    customers = db.relationship("Customer", secondary=notification_channel_customers, lazy="selectin",
                                order_by="Customer.name")


class NotificationOutbox(db.Model):
    """One event to deliver to one channel. Written in the transaction that made the event; the
    background sender claims due rows with a conditional UPDATE, so one process sends each row."""

    __tablename__ = "notification_outbox"

    id = db.Column(db.Integer, primary_key=True)
    channel_id = db.Column(db.Integer, db.ForeignKey("notification_channels.id", ondelete="CASCADE"), nullable=False)
    event_key = db.Column(db.String(120), nullable=False)  # e.g. run:123:failed
    event = db.Column(db.String(20), nullable=False)  # failed | missed | warning | recovery | test
    payload = db.Column(db.JSON, nullable=False)
    state = db.Column(db.String(20), nullable=False, default="pending")  # pending|sent|failed|given_up|dropped|held
    attempts = db.Column(db.Integer, nullable=False, default=0)
    next_attempt_at = db.Column(UTCDateTime(), nullable=False, default=utcnow)
    claimed_until = db.Column(UTCDateTime(), nullable=True)
    claim_token = db.Column(db.String(40), nullable=True)
    last_error = db.Column(db.Text, nullable=True)
    sent_at = db.Column(UTCDateTime(), nullable=True)
    held_until = db.Column(UTCDateTime(), nullable=True)  # held for the channel's quiet hours until then
    created_at = db.Column(UTCDateTime(), nullable=False, default=utcnow)

    channel = db.relationship("NotificationChannel")

    __table_args__ = (
        UniqueConstraint("channel_id", "event_key", name="uq_notification_outbox_channel_id_event_key"),
        Index("ix_notification_outbox_due", "next_attempt_at", postgresql_where=text("state = 'pending'")),
    )


class DigestDelivery(db.Model):
    """The morning digest of one local day to one address. ``UNIQUE(day, recipient)``: the row is
    claimed with ``INSERT … ON CONFLICT DO NOTHING`` and each attempt with a conditional UPDATE, so
    two processes never send a day's digest twice to one address."""

    __tablename__ = "digest_deliveries"

    id = db.Column(db.Integer, primary_key=True)
    day = db.Column(db.Date, nullable=False)  # the local day the digest was sent on (it reports the day before)
    recipient = db.Column(db.String(320), nullable=False)  # lower case
    all_clear = db.Column(db.Boolean, nullable=False, default=False)  # also send when nothing to report
    state = db.Column(db.String(20), nullable=False, default="pending")  # pending|sent|skipped|failed|given_up
    attempts = db.Column(db.Integer, nullable=False, default=0)
    next_attempt_at = db.Column(UTCDateTime(), nullable=False, default=utcnow)
    claimed_until = db.Column(UTCDateTime(), nullable=True)
    claim_token = db.Column(db.String(40), nullable=True)
    last_error = db.Column(db.Text, nullable=True)
    subject = db.Column(db.String(300), nullable=True)
    sent_at = db.Column(UTCDateTime(), nullable=True)
    created_at = db.Column(UTCDateTime(), nullable=False, default=utcnow)

    __table_args__ = (
        UniqueConstraint("day", "recipient", name="uq_digest_deliveries_day_recipient"),
        Index("ix_digest_deliveries_due", "next_attempt_at", postgresql_where=text("state = 'pending'")),
    )


# --- Snoozes and maintenance windows ------------------------------------------------------------

class Snooze(TimestampMixin, db.Model):
    """Quiet for a job or a whole customer until ``until`` (UTC), with a reason: its runs' alerts are
    held (services/quiet.py). It stops applying when ``until`` passes or when it is lifted."""

    __tablename__ = "snoozes"

    id = db.Column(db.Integer, primary_key=True)
    job_id = db.Column(db.Integer, db.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=True)
    customer_id = db.Column(db.Integer, db.ForeignKey("customers.id", ondelete="CASCADE"), nullable=True)
    until = db.Column(UTCDateTime(), nullable=False)
    reason = db.Column(db.String(200), nullable=False)
    created_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    lifted_at = db.Column(UTCDateTime(), nullable=True)
    lifted_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"), nullable=True)

    job = db.relationship("Job")
    customer = db.relationship("Customer")
    created_by = db.relationship("User", foreign_keys=[created_by_id])

    __table_args__ = (
        db.CheckConstraint("(job_id IS NULL) <> (customer_id IS NULL)", name="one_target"),
        # "the snoozes in force": not lifted, until in the future, per job / per customer
        Index("ix_snoozes_job_active", "job_id", "until", postgresql_where=text("lifted_at IS NULL")),
        Index("ix_snoozes_customer_active", "customer_id", "until", postgresql_where=text("lifted_at IS NULL")),
    )


class MaintenanceWindow(TimestampMixin, db.Model):
    """A time in which a job or all jobs of a customer are not expected to report: no Missed run for a
    slot inside it, Daily Jobs shows "Maintenance", alerts of runs that start inside it are held.
    One-off (``starts_at``..``ends_at``, UTC) or weekly (``weekdays`` 0=Mon..6=Sun at ``local_start``
    in ``zone`` for ``duration_minutes``, or until the wall-clock ``local_end``)."""

    __tablename__ = "maintenance_windows"

    id = db.Column(db.Integer, primary_key=True)
    job_id = db.Column(db.Integer, db.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=True)
    customer_id = db.Column(db.Integer, db.ForeignKey("customers.id", ondelete="CASCADE"), nullable=True)
    kind = db.Column(db.String(10), nullable=False)  # once | weekly
    starts_at = db.Column(UTCDateTime(), nullable=True)  # once
    ends_at = db.Column(UTCDateTime(), nullable=True)  # once
    weekdays = db.Column(db.String(20), nullable=True)  # weekly: "0,5,6"
    local_start = db.Column(db.Time(), nullable=True)  # weekly, wall clock in ``zone``
    local_end = db.Column(db.Time(), nullable=True)  # weekly: wall-clock end (the next day when <= start)
    duration_minutes = db.Column(db.Integer, nullable=True)  # weekly: or a length
    zone = db.Column(db.String(64), nullable=False)
    reason = db.Column(db.String(200), nullable=False)
    created_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"), nullable=True)

    job = db.relationship("Job")
    customer = db.relationship("Customer")

    __table_args__ = (
        db.CheckConstraint("(job_id IS NULL) <> (customer_id IS NULL)", name="one_target"),
        Index("ix_maintenance_windows_job", "job_id"),
        Index("ix_maintenance_windows_customer", "customer_id"),
    )


# --- Parsers users define without code ------------------------------------------------------------

class ParserRule(TimestampMixin, db.Model):
    """A user's own parser rule (Parsers page → Your own rules). ``definition`` is the rule as plain
    data (match, job, status, default_status, objects, software, backup_type: ``parsers/rules.py``);
    ``position`` orders the rules, ``placement`` runs them before or after the built-in parsers.
    ``last_timeout_at`` / ``last_timeout_subject``: the last mail on which its regexes ran out of time."""

    __tablename__ = "parser_rules"

    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(90), nullable=False, unique=True)
    enabled = db.Column(db.Boolean, nullable=False, default=True, server_default=text("true"))
    position = db.Column(db.Integer, nullable=False, default=0)
    placement = db.Column(db.String(10), nullable=False, default="after", server_default="after")
    definition = db.Column(db.JSON, nullable=False)
    last_timeout_at = db.Column(UTCDateTime(), nullable=True)
    last_timeout_subject = db.Column(db.String(300), nullable=True)
    created_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"), nullable=True)

    __table_args__ = (
        db.CheckConstraint("placement IN ('before', 'after')", name="placement"),
        Index("ix_parser_rules_position", "position"),
    )
