"""One typed configuration tree (pydantic-settings).

Sources, highest first: constructor arguments, `CAPMON_*` environment variables, an optional
TOML file (`capmon --config FILE`), defaults. Environment names are `CAPMON_<SECTION>_<FIELD>`
(e.g. `CAPMON_KAFKA_BOOTSTRAP`, `CAPMON_STORE_URL`, `CAPMON_ADMIN_KEY`). Unknown keys in the
file or unknown `CAPMON_*` variables are errors, so a typo never silently falls back to a
default. Secrets are `SecretStr`: they never show in a repr, a log line or `config show`.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from monitor.errors import ConfigError
from monitor.logging import REDACTED, mask_url_passwords
from monitor.topics import DLQ, NOTIFICATIONS

ENV_PREFIX = "CAPMON_"
# Variables the test suite and scripts use; they configure the harness, not capmon.
_NOT_CONFIG_PREFIXES = ("CAPMON_TEST_", "CAPMON_CONFIG")


def _names(value: Any) -> Any:
    """A list from the environment: comma-separated (`127.0.0.1,localhost`) or JSON."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except ValueError:
            raise ValueError(f"not a JSON list: {text}") from None
    return tuple(part.strip() for part in text.split(",") if part.strip())


# A list of names: TOML arrays, or CAPMON_* variables either comma-separated or JSON.
Names = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_names)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KafkaSettings(Section):
    # Empty means the embedded bus; set it to use Kafka.
    bootstrap: str = ""
    client_id: str = "capmon"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    replication_factor: int = Field(default=1, ge=1)
    request_timeout_ms: int = 40_000
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000
    max_poll_records: int = 500
    commit_interval_s: float = 0.2
    # 0: a record leaves at once (an EEA 3 must not wait to fill a batch); records sent while
    # a request is in flight still go out together in the next one.
    linger_ms: int = 0


class StoreSettings(Section):
    url: str = "sqlite+aiosqlite:///./capmon.db"
    echo: bool = False


class ApiSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # Public base URL used in SMS links, unsubscribe links and status callbacks; unset, the
    # address the API listens on (so a changed port changes the links with it).
    public_url: str = "http://127.0.0.1:8080"
    max_body_bytes: int = Field(default=256 * 1024, gt=0)
    # How long a connection may sit without a complete request head (idle between
    # keep-alive requests, or sending its headers slowly), and how long a body may take.
    idle_timeout_s: float = Field(default=60.0, gt=0)
    body_timeout_s: float = Field(default=30.0, gt=0)
    # The ops server (/healthz, /readyz, /metrics) of `capmon produce|decide|deliver`; the
    # api role serves those routes on its own port.
    ops_host: str = "127.0.0.1"
    ops_port: int = Field(default=9464, ge=0, le=65535)
    ops_enabled: bool = True
    # Server secret for links sent to people (email one-click unsubscribe tokens are an HMAC
    # of the subscription id with it). Required by the email channel; keep it stable.
    link_secret: SecretStr | None = None
    # Tenant portal sessions (/portal): ended after this long without a request, and this
    # long after sign-in whatever happens, so a browser left signed in does not stay so.
    portal_idle_s: float = Field(default=1800.0, gt=0)
    portal_max_age_s: float = Field(default=12 * 3600.0, gt=0)
    # The session cookie's Secure flag; unset, it is set when `public_url` is https.
    portal_cookie_secure: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _public_url_follows_the_listener(cls, data: Any) -> Any:
        if isinstance(data, dict) and "public_url" not in data:
            host = str(data.get("host", "127.0.0.1"))
            # A wildcard listener is reached on loopback from this machine.
            host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
            if ":" in host:
                host = f"[{host}]"
            data = {**data, "public_url": f"http://{host}:{data.get('port', 8080)}"}
        return data


class AdminSettings(Section):
    key: SecretStr | None = None


class LogSettings(Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class SourcesSettings(Section):
    caiso_outlook_url: str = "https://www.caiso.com/outlook"
    caiso_flex_url: str = (
        "https://wwwmobile.caiso.com/TodaysOutlookApi/api/EmergencyNotices/v2/ActiveFlexAlertEvents"
    )
    caiso_oasis_url: str = "https://oasis.caiso.com/oasisapi/SingleZip"
    sce_api_url: str = "https://www.sce.openadr.com/m.dr.website/resteasy/services"
    sce_html_url: str = "https://www.sce.openadr.com/dr.website"
    # SCE: "auto" reads the JSON API and falls back to the HTML pages; "api" or "html" only.
    sce_mode: Literal["auto", "api", "html"] = "auto"
    # After the API fails, read the pages for this long before trying the API again.
    sce_api_retry_s: float = Field(default=600.0, ge=0)
    # Say who polls: operators add a contact, e.g. "capmon/0.1 (CCA capacity alerts;
    # ops@cca.example)", so CAISO and SCE can reach a person instead of blocking an address.
    user_agent: str = "capmon/0.1 (CCA capacity alerts)"
    timeout_s: float = Field(default=20.0, gt=0)
    max_response_bytes: int = 20 * 1024 * 1024
    stale_after_intervals: int = Field(default=3, ge=1)
    # A source with no good poll since start is reported blind at its first failure this long
    # after start (a short grace for a slow first answer, not N intervals).
    blind_after_s: float = Field(default=30.0, ge=0)
    enabled: Names = ()  # empty: every source
    # Per-source poll interval in seconds, replacing the source's own cadence (a source may be
    # polled less often than its publisher updates it, never more often than it allows:
    # OASIS's 5-second spacing still holds). Example: {"caiso-ra-outlook": 3600}.
    intervals: dict[str, float] = {}
    # Random jitter spreads many producers' requests; off for reproducible replays.
    jitter: bool = True
    # A JSON listing of RFC 5322 notice emails served over HTTP (the replay server's
    # /replay/notices), read by the same ingestion path as the IMAP mailbox.
    notice_feed_url: str | None = None


class ImapSettings(Section):
    host: str | None = None
    port: int = 993
    username: str | None = None
    password: SecretStr | None = None
    mailbox: str = "INBOX"
    use_tls: bool = True
    poll_interval_s: float = 60.0


class SmtpSettings(Section):
    host: str = "127.0.0.1"
    port: int = 25
    username: str | None = None
    password: SecretStr | None = None
    starttls: bool = False
    use_tls: bool = False
    sender: str = "capmon <alerts@capmon.invalid>"
    timeout_s: float = 30.0


class TwilioSettings(Section):
    account_sid: str | None = None
    auth_token: SecretStr | None = None
    messaging_service_sid: str | None = None
    from_number: str | None = None
    # Override only to point at a local stand-in of Twilio's REST API.
    api_base_url: str | None = None


class WebhookSettings(Section):
    timeout_s: float = 15.0
    # http:// targets and these hosts are admitted only when listed (local development).
    allow_hosts: Names = ()
    allow_http: bool = False


class DeliverSettings(Section):
    """The deliver role: consumer, retry scheduler, rate limits, circuit breakers."""

    # Overridable so tests and staging can share one broker without sharing a group.
    topic: str = NOTIFICATIONS
    dlq_topic: str = DLQ
    group: str = "capmon-deliver"
    # Sends in flight at once (HTTP requests, Twilio calls, SMTP sessions). A send holds its
    # slot until its outcome is committed, so this also bounds what a `kill -9` repeats.
    # With 64, a fan-out's outcomes came to each commit 30 or so at a time and the commits
    # themselves were the work: a fan-out to 10,000 took 315 transactions; with 256, 85.
    concurrency: int = Field(default=256, ge=1, le=1024)
    # Notifications in hand at once, from the bus or the scheduler: claimed, waiting to
    # send, or waiting for their outcome's commit. Larger than `concurrency` so that claims
    # and outcomes commit in large batches while every send slot stays busy.
    inflight: int = Field(default=512, ge=1, le=8192)
    # After each ledger commit, claims and outcomes gather this long before the next one
    # (consumers/deliver/group_commit.py): a burst shares transactions; a lone alert never waits.
    commit_linger_s: float = Field(default=0.002, ge=0, le=0.1)
    # How often the retry scheduler looks for due notifications.
    scheduler_interval_s: float = Field(default=1.0, gt=0)
    # A claimed key whose sender is stuck is reclaimed after this (must exceed a send's
    # timeout); one whose sender stopped beating, after takeover_s.
    claim_lease_s: float = Field(default=60.0, gt=0)
    # How often this process says it is alive, and how old another's beat may grow before
    # its claims are taken over (it died: kill -9, a lost machine).
    heartbeat_s: float = Field(default=1.0, gt=0)
    takeover_s: float = Field(default=3.0, gt=0)
    # Token buckets: per webhook endpoint (subscription), and per channel.
    endpoint_rate_per_s: float = Field(default=50.0, gt=0)
    endpoint_burst: int = Field(default=100, ge=1)
    sms_rate_per_s: float = Field(default=10.0, gt=0)
    email_rate_per_s: float = Field(default=20.0, gt=0)
    # Twilio places one call a second per account unless raised.
    voice_rate_per_s: float = Field(default=1.0, gt=0)
    webhook_rate_per_s: float = Field(default=2000.0, gt=0)
    # Wait this long in-process for a token; beyond it the attempt is deferred in the store.
    max_rate_wait_s: float = Field(default=1.0, ge=0)
    circuit_failure_threshold: int = Field(default=5, ge=1)
    circuit_cooldown_s: float = Field(default=30.0, gt=0)
    circuit_max_cooldown_s: float = Field(default=600.0, gt=0)
    # An endpoint failing continuously this long is disabled and its tenant told (Svix: 5 d).
    disable_after_s: float = Field(default=5 * 24 * 3600.0, gt=0)
    # Upper bound on a Retry-After we honour.
    max_retry_after_s: float = Field(default=3600.0, gt=0)


class DecideSettings(Section):
    """The decide role's grouping and ticker (see consumers/decide/decider.py DecideConfig)."""

    # A new group waits this long for siblings before it leaves (0: the first goes at once).
    group_wait_s: float = Field(default=0.0, ge=0)
    # After a notification, more for the same subscriber wait this long and leave together.
    group_interval_s: float = Field(default=60.0, ge=0)
    # How often to look for subscription changes made by other processes.
    refresh_s: float = Field(default=5.0, gt=0)
    # The ticker never sleeps longer than this.
    max_tick_s: float = Field(default=30.0, gt=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="_",
        env_nested_max_split=1,
        extra="forbid",
        frozen=True,
    )

    kafka: KafkaSettings = KafkaSettings()
    store: StoreSettings = StoreSettings()
    api: ApiSettings = ApiSettings()
    admin: AdminSettings = AdminSettings()
    log: LogSettings = LogSettings()
    sources: SourcesSettings = SourcesSettings()
    imap: ImapSettings = ImapSettings()
    smtp: SmtpSettings = SmtpSettings()
    twilio: TwilioSettings = TwilioSettings()
    webhook: WebhookSettings = WebhookSettings()
    deliver: DeliverSettings = DeliverSettings()
    decide: DecideSettings = DecideSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if _toml_path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=_toml_path))
        return tuple(sources)

    @property
    def uses_kafka(self) -> bool:
        return bool(self.kafka.bootstrap)

    def redacted(self) -> dict[str, Any]:
        """The effective config as plain data, secrets shown as '**********'."""
        redacted: dict[str, Any] = _redact(self.model_dump(mode="python"))
        return redacted


_toml_path: Path | None = None


def _redact(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return REDACTED
    if isinstance(value, str):
        return mask_url_passwords(value)
    if isinstance(value, dict):
        return {k: _redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(v) for v in value]
    return value


def _known_env_names() -> set[str]:
    names = set()
    for section, info in Settings.model_fields.items():
        model = info.annotation
        assert isinstance(model, type) and issubclass(model, BaseModel)
        for field in model.model_fields:
            names.add(f"{ENV_PREFIX}{section}_{field}".upper())
    return names


def _check_env(environ: dict[str, str]) -> None:
    known = _known_env_names()
    unknown = sorted(
        k for k in environ
        if k.upper().startswith(ENV_PREFIX)
        and not k.upper().startswith(_NOT_CONFIG_PREFIXES)
        and k.upper() not in known
    )
    if unknown:
        raise ConfigError(f"unknown configuration variable(s): {', '.join(unknown)}")


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Load and validate the whole tree once; the CLI passes it down explicitly."""
    global _toml_path
    path = config_file or os.environ.get("CAPMON_CONFIG")
    if path is not None:
        _toml_path = Path(path)
        if not _toml_path.is_file():
            raise ConfigError(f"config file not found: {_toml_path}")
    else:
        _toml_path = None
    try:
        _check_env(dict(os.environ))
        return Settings(**overrides)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {_toml_path} is not valid TOML: {exc}") from None
    except SettingsError as exc:
        # A map or list variable that is not JSON (lists may also be comma-separated).
        raise ConfigError(f"invalid configuration: {exc} (maps in CAPMON_* variables are "
                          "JSON, e.g. CAPMON_SOURCES_INTERVALS='{\"caiso-oasis\": 3600}')"
                          ) from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from None
    finally:
        _toml_path = None
