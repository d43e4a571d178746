// Alerting rules. Posture alerts are named TLS*; alerts about the probe or
// the exporter itself are named Resumption*, so that Alertmanager can hold
// back the former while the latter fire (see examples/alertmanager.yml).
{
  local c = $._config,
  local on = 'on (%s)' % std.join(', ', c.targetLabels),
  local keyThreshold = c.keyMaxAgeSeconds + c.activeWindowSeconds,
  local human = (import 'duration.libsonnet').humanDuration,

  // The runbook section of an alert: GitHub's anchor for a "## Name" heading.
  local runbook(name) = '%s#%s' % [c.runbookBase, std.asciiLower(name)],

  local alert(name, severity, forDuration, expr, summary, description) = {
    alert: name,
    expr: expr,
    'for': forDuration,
    labels: { severity: severity },
    annotations: {
      summary: summary,
      description: std.rstripChars(description, '\n'),
      runbook_url: runbook(name),
    },
  },

  local probe(metric) = '%s{%s}' % [metric, c.probeSelector],
  local exporter(metric) = '%s{%s}' % [metric, c.exporterSelector],

  prometheusAlerts+:: {
    groups+: [{
      name: 'resumption_exporter',
      [if c.ruleInterval != null then 'interval']: c.ruleInterval,
      rules: [
        alert(
          'TLSSessionTicketKeyNotRotated',
          'warning',
          c.forKeyNotRotated,
          (import 'queries.libsonnet').keyNotRotated(c, c.probeSelector),
          'Session ticket key not rotated within %s' % human(c.keyMaxAgeSeconds),
          |||
            {{ $labels.instance }} still encrypts or accepts session tickets with a key first seen {{ $value | humanizeDuration }} ago (limit: %s plus the %s active-key window). Anyone who obtains that key can decrypt all TLS 1.2 traffic of the sessions that were given a ticket under it.
          ||| % [human(c.keyMaxAgeSeconds), human(c.activeWindowSeconds)],
        ),
        alert(
          'TLSSessionTicketKeyUnchanged',
          'warning',
          c.forKeyNotRotated,
          |||
            count_over_time(%(fp)s[%(window)ds]) >= %(minSamples)d
            and %(on)s
            changes(%(fp)s[%(window)ds]) == 0
            and %(on)s
            %(fp)s offset %(window)ds
            unless %(on)s
            (
              time() - %(since)s
            ) > %(window)d
          ||| % {
            fp: probe('tls_session_ticket_key_fingerprint'),
            since: probe('tls_session_ticket_history_since_timestamp_seconds'),
            window: keyThreshold,
            minSamples: c.fingerprintMinSamples,
            on: on,
          },
          'Session ticket key unchanged for more than %s' % human(c.keyMaxAgeSeconds),
          |||
            {{ $labels.instance }} presented the same session ticket key in all {{ $value }} probes of the last %s. The exporter's own key history is younger than that (restarted without --history.path?), so this is judged from the fingerprint gauge alone.
          ||| % human(keyThreshold),
        ),
        alert(
          'TLSSessionTicketLifetimeAboveRotationInterval',
          'info',
          c.forLifetime,
          |||
            %(hint)s
            > %(on)s group_left ()
            %(interval)s
          ||| % {
            hint: probe('tls_session_ticket_lifetime_hint_seconds'),
            interval: probe('tls_session_ticket_key_rotation_interval_seconds'),
            on: on,
          },
          'Session ticket lifetime longer than the key rotation interval',
          |||
            {{ $labels.instance }} announces a {{ $labels.version }} ticket lifetime of {{ $value | humanizeDuration }}, longer than its last observed key rotation interval of {{ with printf "tls_session_ticket_key_rotation_interval_seconds{job=%q,instance=%q}" $labels.job $labels.instance | query }}{{ . | first | value | humanizeDuration }}{{ end }}. Either old keys stay valid for decryption that long, so rotation does not bound exposure, or tickets fail before their announced lifetime.
          |||,
        ),
        alert(
          'TLSSessionTicketLifetimeAboveOneDay',
          'warning',
          c.forLifetime,
          |||
            %(hint)s > %(limit)d
          ||| % {
            hint: probe('tls_session_ticket_lifetime_hint_seconds'),
            limit: c.keyMaxAgeSeconds,
          },
          'Session ticket lifetime longer than %s' % human(c.keyMaxAgeSeconds),
          |||
            {{ $labels.instance }} tells clients to keep its {{ $labels.version }} session tickets for {{ $value | humanizeDuration }}, more than %s. A ticket is only as forward-secret as the key that encrypted it, for as long as it may be used.
          ||| % human(c.keyMaxAgeSeconds),
        ),
        alert(
          'TLS13SessionTicketLifetimeAboveMaximum',
          // critical: RFC 8446 section 4.6.1 says MUST NOT, and strict
          // clients abort the handshake on such a ticket.
          'critical',
          c.forLifetime,
          |||
            %(hint)s > %(limit)d
          ||| % {
            hint: 'tls_session_ticket_lifetime_hint_seconds{%s, version="TLS 1.3"}' % c.probeSelector,
            limit: c.tls13MaxTicketLifetimeSeconds,
          },
          'TLS 1.3 ticket lifetime above %s' % human(c.tls13MaxTicketLifetimeSeconds),
          |||
            {{ $labels.instance }} issues TLS 1.3 tickets with a lifetime of {{ $value | humanizeDuration }} ({{ $value }} s), above %d s (%s). RFC 8446 section 4.6.1 forbids more than 604800 s (7 days); strict clients such as Go's crypto/tls abort the connection on such a ticket.
          ||| % [c.tls13MaxTicketLifetimeSeconds, human(c.tls13MaxTicketLifetimeSeconds)],
        ),
        alert(
          'TLSSessionTicketResumableAfterOneDay',
          'warning',
          c.forAcceptedMaxAge,
          |||
            %(age)s > %(limit)d
          ||| % {
            age: probe('tls_session_ticket_accepted_max_age_seconds'),
            limit: c.acceptedMaxAgeSeconds,
          },
          'Session tickets resumable for more than %s' % human(c.acceptedMaxAgeSeconds),
          |||
            {{ $labels.instance }} resumed a {{ $labels.version }} session ticket the exporter obtained {{ $value | humanizeDuration }} earlier (limit: %s). Traffic of sessions that old can still be decrypted with the server's current ticket keys.
          ||| % human(c.acceptedMaxAgeSeconds),
        ),
        alert(
          'TLSSessionIDResumableAfterOneDay',
          'warning',
          c.forAcceptedMaxAge,
          |||
            %(age)s > %(limit)d
          ||| % {
            age: probe('tls_session_id_accepted_max_age_seconds'),
            limit: c.acceptedMaxAgeSeconds,
          },
          'Session IDs resumable for more than %s' % human(c.acceptedMaxAgeSeconds),
          |||
            {{ $labels.instance }} resumed a TLS 1.2 session ID the exporter obtained {{ $value | humanizeDuration }} earlier (limit: %s): its session cache keeps master secrets that long.
          ||| % human(c.acceptedMaxAgeSeconds),
        ),
        alert(
          'ResumptionProbeFailing',
          'warning',
          c.forProbeFailing,
          |||
            %(success)s == 0
            or
            %(up)s == 0
          ||| % {
            success: probe('probe_success'),
            up: probe('up'),
          },
          'Resumption probe failing',
          |||
            The resumption probe of {{ $labels.instance }} (job {{ $labels.job }}) keeps failing: either no TLS handshake completed or a resumption check could not run, or the exporter could not be scraped at all. Its posture metrics are missing or stale meanwhile.
          |||,
        ),
        alert(
          'ResumptionExporterConfigReloadFailed',
          'warning',
          c.forConfigReload,
          |||
            %s == 0
          ||| % exporter('resumption_exporter_config_last_reload_successful'),
          'resumption_exporter configuration reload failed',
          |||
            resumption_exporter {{ $labels.instance }} failed to load its configuration file; it keeps probing with the last good one, and changes to modules are not in effect.
          |||,
        ),
        alert(
          'ResumptionExporterHistorySaveFailing',
          'warning',
          c.forHistorySave,
          |||
            increase(%s[15m]) > 0
          ||| % exporter('resumption_exporter_history_save_failures_total'),
          'resumption_exporter cannot save its key history',
          |||
            resumption_exporter {{ $labels.instance }} failed {{ $value | humanize }} times in 15 minutes to write its --history.path file. After its next restart the ticket-key alerts are blind until %s of history has been gathered again.
          ||| % human(keyThreshold),
        ),
      ],
    }],
  },
}
