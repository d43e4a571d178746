// PromQL that alerts and dashboards share, so that a dashboard turns red
// exactly when the alert on the same figure fires.
{
  // Targets whose oldest ticket key still in use was first seen more than
  // keyMaxAgeSeconds + activeWindowSeconds ago, once the exporter has watched
  // their keys that long (a younger history cannot tell a rotation it missed).
  keyNotRotated(c, selector)::
    |||
      (
        time() - tls_session_ticket_key_oldest_active_first_seen_timestamp_seconds{%(sel)s}
      ) > %(threshold)d
      and on (%(on)s)
      (
        time() - tls_session_ticket_history_since_timestamp_seconds{%(sel)s}
      ) > %(threshold)d
    ||| % {
      sel: selector,
      threshold: c.keyMaxAgeSeconds + c.activeWindowSeconds,
      on: std.join(', ', c.targetLabels),
    },
}
