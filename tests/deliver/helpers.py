"""Builders for deliver tests: tenants and subscription rows, conditions, notifications.

Subscriptions are inserted straight into the table (the subscriptions API is decide's); the
row shape is the one monitor/store/schema.py defines.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.attributes import DrEventAttributes, NoticeAttributes
from monitor.events import Condition, Kind, Severity, Status, Window
from monitor.notifications import (
    EmailChannel,
    Notification,
    NotificationItem,
    SmsChannel,
    Transition,
    VoiceChannel,
    WebhookChannel,
    notification_key,
)
from monitor.store import Store
from monitor.store import tenants as tenant_store
from monitor.store.schema import subscriptions


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


async def add_tenant(store: Store, now: datetime, admin_contact: str | None = None
                     ) -> tuple[str, str]:
    async with store.begin() as conn:
        tenant, key = await tenant_store.create_tenant(
            conn, f"cca-{uuid.uuid4().hex[:8]}", admin_contact, now)
    return tenant.id, key


async def add_subscription(store: Store, tenant_id: str, channel_type: str, target: str,
                           now: datetime, *, secret: str | None = None,
                           previous_secret: str | None = None,
                           previous_expires: datetime | None = None, status: str = "active",
                           name: str = "CPA scheduling desk",
                           **spec: Any) -> str:
    sub_id = str(uuid.uuid4())
    channel: dict[str, Any] = {"type": channel_type}
    channel.update({"webhook": {"url": target}, "sms": {"phone": target},
                    "voice": {"phone": target}, "email": {"address": target}}[channel_type])
    async with store.begin() as conn:
        await conn.execute(subscriptions.insert().values(
            id=sub_id, tenant_id=tenant_id, name=name,
            spec={"name": name, "channel": channel, "match": {"kinds": ["caiso.eea"]},
                  **spec},
            channel_type=channel_type, target=target, secret=secret,
            previous_secret=previous_secret, previous_secret_expires_at=previous_expires,
            status=status, created_at=now, updated_at=now))
    return sub_id


def eea3(notice_no: str = "202202696", observed_at: datetime | None = None) -> Condition:
    start = datetime(2022, 9, 6, 17, 17, tzinfo=UTC) + timedelta(hours=7)
    return Condition(
        id=f"caiso.notice:{notice_no}", kind=Kind.CAISO_EEA, severity=Severity.CRITICAL,
        status=Status.ACTIVE,
        window=Window(start=start - timedelta(hours=7), end=start - timedelta(hours=4)),
        regions=("CAISO Grid",),
        attributes=NoticeAttributes(notice_no=notice_no, level="3", step=2,
                                    reason="Load and resource deficiencies."),
        revision=1, observed_at=observed_at or datetime(2022, 9, 6, 17, 17, tzinfo=UTC),
        source_url="https://www.caiso.com/notices")


def dr_event() -> Condition:
    return Condition(
        id="sce.dr:bip-2022-09-06", kind=Kind.SCE_DR_EVENT, severity=Severity.EMERGENCY,
        status=Status.SCHEDULED,
        window=Window(start=datetime(2022, 9, 6, 23, 0, tzinfo=UTC),
                      end=datetime(2022, 9, 7, 3, 0, tzinfo=UTC)),
        regions=("SCE-TAC",),
        attributes=DrEventAttributes(program="BIP", product="BIP-15", interruptible=True,
                                     sublaps=("SCEC", "SCEN", "SCEW")),
        revision=1, observed_at=datetime(2022, 9, 6, 20, 0, tzinfo=UTC))


def notification(tenant_id: str, subscription_id: str, channel: str, target: str,
                 *, condition: Condition | None = None, n: int = 0,
                 decided_at: datetime | None = None, acknowledgeable: bool = False,
                 voice: VoiceChannel | None = None) -> Notification:
    c = condition or eea3()
    ch: WebhookChannel | SmsChannel | EmailChannel | VoiceChannel
    if channel == "webhook":
        ch = WebhookChannel(url=target)
    elif channel == "sms":
        ch = SmsChannel(phone=target)
    elif channel == "voice":
        ch = voice or VoiceChannel(phone=target)
    else:
        ch = EmailChannel(address=target)
    return Notification(
        key=notification_key(subscription_id, c.id, Transition.ISSUED,
                             {"status": "active", "n": n}),
        tenant_id=tenant_id, subscription_id=subscription_id, subscription_name="CPA desk",
        channel=ch, decided_at=decided_at or datetime(2022, 9, 6, 17, 18, tzinfo=UTC),
        severity=c.severity,
        items=(NotificationItem(transition=Transition.ISSUED, condition=c),),
        summary="CAISO EEA 3 active 17:17-20:00 PT (notice 202202696)",
        acknowledgeable=acknowledgeable)
