"""Every Prometheus metric capmon exports, in one place (catalogue: docs/metrics.md).

Labels are bounded sets (source, kind, channel, outcome, reason, role, topic); never a
subscription id, a condition id or a URL.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

# -- sources (producers) ----------------------------------------------------------------------
POLLS = Counter("capmon_source_polls_total", "Source polls by outcome.",
                ["source", "outcome"], registry=REGISTRY)
PARSE_ERRORS = Counter("capmon_source_parse_errors_total", "Responses a parser rejected.",
                       ["source", "reason"], registry=REGISTRY)
FETCH_ERRORS = Counter("capmon_source_fetch_errors_total", "Failed fetches.",
                       ["source", "reason"], registry=REGISTRY)
LAST_SUCCESS = Gauge("capmon_source_last_success_timestamp_seconds",
                     "Unix time of the last good parse.", ["source"], registry=REGISTRY)
SOURCE_STALE = Gauge("capmon_source_stale", "1 while the source is stale.", ["source"],
                     registry=REGISTRY)
POLL_DURATION = Histogram("capmon_source_poll_duration_seconds", "Fetch plus parse time.",
                          ["source"], buckets=_LATENCY_BUCKETS, registry=REGISTRY)
REVISIONS_PUBLISHED = Counter("capmon_condition_revisions_published_total",
                              "Condition revisions published.", ["source", "kind"],
                              registry=REGISTRY)

# -- the process as /readyz sees it (set on every scrape of /metrics) -------------------------
READY = Gauge("capmon_ready", "1 while the /readyz check passes, by check.", ["check"],
              registry=REGISTRY)

# -- conditions and decide --------------------------------------------------------------------
CONDITIONS = Gauge("capmon_conditions", "Conditions in the store by kind and status.",
                   ["kind", "status"], registry=REGISTRY)
TRANSITIONS = Counter("capmon_transitions_total", "Transitions derived by decide.",
                      ["kind", "transition"], registry=REGISTRY)
NOTIFICATIONS_DECIDED = Counter("capmon_notifications_decided_total",
                                "Notifications decided, by channel.", ["channel"],
                                registry=REGISTRY)
NOTIFICATIONS_SUPPRESSED = Counter("capmon_notifications_suppressed_total",
                                   "Notifications not sent, by reason.", ["reason"],
                                   registry=REGISTRY)
ESCALATIONS_STARTED = Counter("capmon_escalations_started_total",
                              "Escalation runs started (a notification to a policy's first "
                              "step).", registry=REGISTRY)
ESCALATIONS_ENDED = Counter("capmon_escalations_ended_total",
                            "Escalation runs ended, by outcome (acknowledged, resolved, "
                            "exhausted, cancelled).", ["outcome"], registry=REGISTRY)
ESCALATION_STEPS = Counter("capmon_escalation_steps_total",
                           "Escalation steps paged after the first, by step number (1-9).",
                           ["step"], registry=REGISTRY)
DECIDE_DURATION = Histogram("capmon_decide_duration_seconds", "Decide time per revision.",
                            buckets=_LATENCY_BUCKETS, registry=REGISTRY)

# -- deliver ----------------------------------------------------------------------------------
DELIVERIES = Counter("capmon_deliveries_total", "Delivery attempts by channel and outcome.",
                     ["channel", "outcome"], registry=REGISTRY)
ATTEMPT_LATENCY = Histogram("capmon_delivery_attempt_duration_seconds",
                            "Time of one delivery attempt.", ["channel"],
                            buckets=_LATENCY_BUCKETS, registry=REGISTRY)
END_TO_END_LATENCY = Histogram("capmon_end_to_end_latency_seconds",
                               "Condition observed_at to delivered.", ["channel"],
                               buckets=_LATENCY_BUCKETS, registry=REGISTRY)
TIME_TO_ACK = Histogram("capmon_time_to_acknowledge_seconds",
                        "From a notification's delivery to its acknowledgement.", ["severity"],
                        buckets=(30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400),
                        registry=REGISTRY)
RETRY_QUEUE = Gauge("capmon_delivery_retry_queue", "Notifications waiting for a retry.",
                    ["channel"], registry=REGISTRY)
DLQ_SIZE = Gauge("capmon_delivery_dead_letters", "Notifications in state dead.",
                 registry=REGISTRY)
SMS_FATE_CHECKS = Counter("capmon_sms_fate_checks_total",
                          "Twilio's message log asked whether an unsettled SMS attempt was "
                          "sent, by result.", ["result"], registry=REGISTRY)
VOICE_CALLS = Counter("capmon_voice_calls_total",
                      "Voice calls ended, by outcome (answered, voicemail, busy, no_answer, "
                      "failed, canceled).", ["outcome"], registry=REGISTRY)
VOICE_KEYS = Counter("capmon_voice_keypresses_total",
                     "Keys pressed on a voice call, by what they did (acknowledged, already, "
                     "refused, opted_out, repeated).", ["action"], registry=REGISTRY)
CIRCUIT_OPEN = Gauge("capmon_delivery_circuit_open", "Endpoints with an open circuit.",
                     ["channel"], registry=REGISTRY)

# -- bus --------------------------------------------------------------------------------------
BUS_PUBLISHED = Counter("capmon_bus_published_total", "Records published.", ["topic"],
                        registry=REGISTRY)
BUS_CONSUMED = Counter("capmon_bus_consumed_total", "Records handled and acknowledged.",
                       ["topic", "group"], registry=REGISTRY)
BUS_DEAD_LETTERS = Counter("capmon_bus_dead_letters_total",
                           "Records that could not be decoded or handled, moved to a dead "
                           "letter topic (by the topic they came from).",
                           ["topic", "group"], registry=REGISTRY)
TASK_FAILURES = Counter("capmon_task_failures_total",
                        "Long-lived tasks of a role (consumers, tickers, schedulers, pollers) "
                        "that died or returned early and were restarted.", ["task"],
                        registry=REGISTRY)
BUS_RETRIES = Counter("capmon_bus_handler_retries_total",
                      "Handler failures retried (store or bus unavailable, or a record failing "
                      "before it is dead-lettered).", ["topic", "group"], registry=REGISTRY)
CONSUMER_LAG = Gauge("capmon_bus_consumer_lag_records", "Records not yet consumed.",
                     ["topic", "group"], registry=REGISTRY)

# -- store-derived gauges (refreshed by the api role on each scrape: monitor/api/scrape.py) ----
NOTIFICATION_STATES = Gauge("capmon_notifications", "Notifications in the ledger by state.",
                            ["state"], registry=REGISTRY)
GAUGE_REFRESH_ERRORS = Counter("capmon_gauge_refresh_errors_total",
                               "Scrape-time gauge refreshes that failed (store, lag).", ["what"],
                               registry=REGISTRY)
