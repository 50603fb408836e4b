"""The store's tables, as SQLAlchemy Core metadata.

Alembic migrations (monitor/store/migrations) create and evolve these; this module is what the
code queries against. JSON columns hold validated models' JSON forms.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC on every backend: SQLite keeps no offset, so attach UTC on the
    way out and refuse naive values on the way in (they would be ambiguous)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError(f"timestamps must be timezone-aware, got {value!r}")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

TS = UTCDateTime()

tenants = sa.Table(
    "tenants", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("admin_contact", sa.String(320), nullable=True),
    sa.Column("status", sa.String(16), nullable=False, server_default="active"),
    sa.Column("created_at", TS, nullable=False),
)

api_keys = sa.Table(
    "api_keys", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("tenant_id", sa.String(36), sa.ForeignKey("tenants.id", ondelete="CASCADE"),
              nullable=False, index=True),
    # sha256 of the key: keys are shown once and never stored in clear.
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("revoked_at", TS, nullable=True),
)

subscriptions = sa.Table(
    "subscriptions", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("tenant_id", sa.String(36), sa.ForeignKey("tenants.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    # The subscription document (match, transitions, repeat_interval, channel, quiet_hours).
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("channel_type", sa.String(16), nullable=False),
    sa.Column("target", sa.String(2048), nullable=False),
    sa.Column("secret", sa.String(200), nullable=True),
    # Rotation: the previous webhook secret stays valid (signatures carry both) until then.
    sa.Column("previous_secret", sa.String(200), nullable=True),
    sa.Column("previous_secret_expires_at", TS, nullable=True),
    sa.Column("status", sa.String(16), nullable=False, server_default="active"),
    sa.Column("status_reason", sa.String(500), nullable=True),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

# A subscription's calendar feed: the secret in its URL is shown once and kept only as a hash,
# so a copy of the store does not hand out anyone's feed; rotating replaces the row.
calendar_feeds = sa.Table(
    "calendar_feeds", metadata,
    sa.Column("subscription_id", sa.String(36),
              sa.ForeignKey("subscriptions.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("tenant_id", sa.String(36), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", TS, nullable=False),
)

# A tenant's silences (monitor.store.silences owns it): decide reads the active ones.
silences = sa.Table(
    "silences", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("tenant_id", sa.String(36), sa.ForeignKey("tenants.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("match", sa.JSON, nullable=False),
    sa.Column("starts_at", TS, nullable=False),
    sa.Column("ends_at", TS, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("comment", sa.String(2000), nullable=False),
    sa.Column("include_all_clear", sa.Boolean, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Index("ix_silences_tenant_id_ends_at", "tenant_id", "ends_at"),
)

# A tenant's escalation policies (monitor.store.escalation_policies owns it).
escalation_policies = sa.Table(
    "escalation_policies", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("tenant_id", sa.String(36), sa.ForeignKey("tenants.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("min_severity", sa.String(16), nullable=False),
    sa.Column("steps", sa.JSON, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

# Escalation runs, one condition climbing one policy (monitor.store.escalations owns it and
# the run's state machine). `steps` is the policy's ladder as it was when the run started.
escalations = sa.Table(
    "escalations", metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("tenant_id", sa.String(36), sa.ForeignKey("tenants.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("policy_id", sa.String(36), nullable=False),
    sa.Column("condition_id", sa.String(200), nullable=False, index=True),
    sa.Column("transition", sa.String(16), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("facts", sa.JSON, nullable=False),
    sa.Column("steps", sa.JSON, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("next_at", TS, nullable=True),
    sa.Column("started_at", TS, nullable=False),
    sa.Column("ended_at", TS, nullable=True),
    sa.Column("ended_reason", sa.String(32), nullable=True),
    sa.Column("acknowledged_key", sa.String(64), nullable=True),
    sa.Index("ix_escalations_state_next_at", "state", "next_at"),
)

# Every subscription of a run's ladder, with the key that paged it once its step came.
escalation_pages = sa.Table(
    "escalation_pages", metadata,
    sa.Column("run_id", sa.String(40), sa.ForeignKey("escalations.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("subscription_id", sa.String(36), primary_key=True, index=True),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("key", sa.String(64), nullable=True),
    sa.Column("paged_at", TS, nullable=True),
    sa.Column("muted", sa.String(200), nullable=True),
)

# A recipient's opt-out (SMS STOP, email one-click unsubscribe, a carrier's 21610), by channel
# and address: a tenant cannot subscribe the address again until the recipient opts in (START).
opt_outs = sa.Table(
    "opt_outs", metadata,
    sa.Column("channel", sa.String(16), primary_key=True),
    sa.Column("target", sa.String(2048), primary_key=True),
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("created_at", TS, nullable=False),
)

# Inbound SMS keywords already acted on, by Twilio's MessageSid, with when Twilio received
# them (monitor.store.endpoints owns it).
sms_inbound = sa.Table(
    "sms_inbound", metadata,
    sa.Column("sid", sa.String(64), primary_key=True),
    sa.Column("phone", sa.String(32), nullable=False),
    sa.Column("keyword", sa.String(16), nullable=False),
    sa.Column("received_at", TS, nullable=False),
    sa.Index("ix_sms_inbound_phone_received_at", "phone", "received_at"),
)

conditions = sa.Table(
    "conditions", metadata,
    sa.Column("id", sa.String(300), primary_key=True),
    sa.Column("kind", sa.String(64), nullable=False, index=True),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("revision", sa.BigInteger, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("window_start", TS, nullable=True),
    sa.Column("window_end", TS, nullable=True),
    sa.Column("observed_at", TS, nullable=False),
    sa.Column("body", sa.JSON, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

condition_history = sa.Table(
    "condition_history", metadata,
    sa.Column("condition_id", sa.String(300), primary_key=True),
    sa.Column("revision", sa.BigInteger, primary_key=True),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("observed_at", TS, nullable=False),
    sa.Column("body", sa.JSON, nullable=False),
)

notifications = sa.Table(
    "notifications", metadata,
    # The deterministic notification key (`notification_key`): the ledger admits each once.
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("tenant_id", sa.String(36), nullable=False, index=True),
    sa.Column("subscription_id", sa.String(36), nullable=False, index=True),
    sa.Column("channel", sa.String(16), nullable=False),
    # pending, sending, delivered, failed, dead, suppressed
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("attempt_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", TS, nullable=True, index=True),
    sa.Column("last_error", sa.String(1000), nullable=True),
    sa.Column("observed_at", TS, nullable=True),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Column("delivered_at", TS, nullable=True),
    # Deliver: attempt_count at the last replay (the retry schedule restarts from there).
    sa.Column("attempt_base", sa.Integer, nullable=False, server_default="0"),
    # The sender (deliver process) holding a `sending` claim (monitor.ledger.senders).
    sa.Column("claimed_by", sa.String(32), nullable=True),
)

# Who acknowledged a notification, how and when (monitor.ledger.acks owns it): once per key.
acknowledgements = sa.Table(
    "acknowledgements", metadata,
    sa.Column("key", sa.String(64), sa.ForeignKey("notifications.key", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("tenant_id", sa.String(36), nullable=False),
    sa.Column("subscription_id", sa.String(36), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("by", sa.String(200), nullable=False),
    sa.Column("via", sa.String(16), nullable=False),
    sa.Column("at", TS, nullable=False),
)

# Deliver processes and their heartbeats (monitor.ledger.senders owns it).
senders = sa.Table(
    "senders", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("started_at", TS, nullable=False),
    sa.Column("beat_at", TS, nullable=False),
)

attempts = sa.Table(
    "attempts", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("notification_key", sa.String(64),
              sa.ForeignKey("notifications.key", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("attempt_no", sa.Integer, nullable=False),
    sa.Column("attempted_at", TS, nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    # delivered, retry, failed (permanent), timeout ...
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("provider_error", sa.String(64), nullable=True),
    sa.Column("error", sa.String(1000), nullable=True),
    sa.Column("latency_s", sa.Float, nullable=True),
)

# CAISO notice emails (producers/caiso_mailbox.py): each message once, by Message-ID. The UID
# (within its UIDVALIDITY) is where the next sync resumes; the notice text lets a restarted
# producer rebuild its notice lifecycle without re-reading the mailbox.
caiso_mailbox_messages = sa.Table(
    "caiso_mailbox_messages", metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("message_id", sa.String(500), nullable=False, unique=True),
    sa.Column("mailbox", sa.String(200), nullable=False),
    sa.Column("uidvalidity", sa.BigInteger, nullable=False),
    sa.Column("uid", sa.BigInteger, nullable=False),
    # published, parse_error
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("error", sa.String(500), nullable=True),
    sa.Column("notice_text", sa.Text, nullable=True),
    sa.Column("processed_at", TS, nullable=False),
    sa.Index("ix_caiso_mailbox_messages_mailbox", "mailbox", "uidvalidity", "uid"),
)


endpoint_health = sa.Table(
    "endpoint_health", metadata,
    # One delivery endpoint per subscription (its own URL, phone or address, and secret).
    sa.Column("subscription_id", sa.String(36), primary_key=True),
    # Start of the current run of failures; NULL while the endpoint is healthy.
    sa.Column("failing_since", TS, nullable=True),
    sa.Column("consecutive_failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_failure_at", TS, nullable=True),
    sa.Column("last_success_at", TS, nullable=True),
    sa.Column("last_error", sa.String(500), nullable=True),
)

sms_messages = sa.Table(
    "sms_messages", metadata,
    # Twilio's message SID (SM...), returned on 201 and named by every status callback.
    sa.Column("sid", sa.String(64), primary_key=True),
    sa.Column("notification_key", sa.String(64),
              sa.ForeignKey("notifications.key", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("attempt_no", sa.Integer, nullable=False),
    # queued, sent, delivered, undelivered, failed ... (never moves backwards)
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("error_code", sa.String(16), nullable=True),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

voice_calls = sa.Table(
    "voice_calls", metadata,
    # Twilio's call SID (CA...), returned on 201 and named by every status, answering-machine
    # and keypress callback: a callback for the key must name its call.
    sa.Column("sid", sa.String(64), primary_key=True),
    sa.Column("notification_key", sa.String(64),
              sa.ForeignKey("notifications.key", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("attempt_no", sa.Integer, nullable=False),
    # queued, initiated, ringing, in-progress, then completed, busy, no-answer, failed or
    # canceled (never moves backwards)
    sa.Column("status", sa.String(24), nullable=False),
    # human, machine_end_beep, fax, unknown ... (Twilio's answering-machine detection)
    sa.Column("answered_by", sa.String(32), nullable=True),
    sa.Column("error_code", sa.String(16), nullable=True),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

# -- decide's state (migration 0002_decide): what it derived, so a restart re-derives the same --

decide_views = sa.Table(
    "decide_views", metadata,
    # The view of each condition that decide last derived transitions from (level-derived).
    sa.Column("condition_id", sa.String(300), primary_key=True),
    sa.Column("kind", sa.String(64), nullable=False),
    # scheduled, active, ended, cancelled, superseded (effective, i.e. with the clock applied)
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("facts", sa.JSON, nullable=False),
    sa.Column("revision", sa.BigInteger, nullable=False),
    # When what subscribers hear last changed: reminders count repeat intervals from here.
    sa.Column("changed_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

decide_thresholds = sa.Table(
    "decide_thresholds", metadata,
    sa.Column("subscription_id", sa.String(36), primary_key=True),
    sa.Column("threshold", sa.String(64), primary_key=True),
    sa.Column("condition_id", sa.String(300), primary_key=True),
    sa.Column("armed", sa.Boolean, nullable=False),
    sa.Column("episode", sa.Integer, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

decide_items = sa.Table(
    "decide_items", metadata,
    # The key of one transition for one subscription: decide's dedup log.
    sa.Column("item_key", sa.String(64), primary_key=True),
    # No index of their own: `subscription_id` and `state` each lead a composite one below.
    sa.Column("subscription_id", sa.String(36), nullable=False),
    sa.Column("tenant_id", sa.String(36), nullable=False),
    # pending (waiting for its group), batched (in a notification being published), sent,
    # suppressed (recorded in the ledger as such, never published)
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("batch_key", sa.String(64), nullable=True, index=True),
    sa.Column("due_at", TS, nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("flushed_at", TS, nullable=True),
    # What each step asks: the due pending items; a subscriber's open batch and last flush.
    sa.Index("ix_decide_items_state_due_at", "state", "due_at"),
    sa.Index("ix_decide_items_subscription_id_state", "subscription_id", "state", "flushed_at"),
)

# Tenant portal sign-ins (monitor.store.portal_sessions owns it). Only a hash of the session
# id is kept, so the table cannot be used to sign in; a session ends with its API key.
portal_sessions = sa.Table(
    "portal_sessions", metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("tenant_id", sa.String(36), sa.ForeignKey("tenants.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("api_key_id", sa.String(36), sa.ForeignKey("api_keys.id", ondelete="CASCADE"),
              nullable=False, index=True),
    # The synchronizer token every form of this session carries.
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("last_seen_at", TS, nullable=False),
)
