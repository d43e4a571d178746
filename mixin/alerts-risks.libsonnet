// Alerting rules of the risk checks (the module's `risks:` list): each fires
// on a finding that exposes traffic now, whatever the ticket key's age. A
// verdict is only published when the check applied, so an absent series
// never fires.
{
  local c = $._config,

  _config+:: {
    // A verdict is a fact about the server's software or configuration, not
    // a fluctuation: a few probes confirm it.
    forRisk: '10m',
  },

  local runbook(name) = '%s#%s' % [c.runbookBase, std.asciiLower(name)],
  local probe(metric) = '%s{%s}' % [metric, c.probeSelector],
  local human = (import 'duration.libsonnet').humanDuration,

  local alert(name, severity, expr, summary, description) = {
    alert: name,
    expr: expr,
    'for': c.forRisk,
    labels: { severity: severity },
    annotations: {
      summary: summary,
      description: std.rstripChars(description, '\n'),
      runbook_url: runbook(name),
    },
  },

  prometheusAlerts+:: {
    groups+: [{
      name: 'resumption_exporter_risks',
      [if c.ruleInterval != null then 'interval']: c.ruleInterval,
      rules: [
        alert(
          'TLSResumptionWithoutForwardSecrecy',
          'critical',
          '%s == 1' % probe('tls_resumption_psk_without_dhe_accepted'),
          'TLS 1.3 resumption without (EC)DHE accepted',
          |||
            {{ $labels.instance }} resumes TLS 1.3 sessions offered with psk_ke alone (tls_resumption_psk_without_dhe_accepted = {{ $value }}): the keys of such a connection derive from the ticket's PSK only, so whoever obtains the ticket key or the session cache decrypts it, with no forward secrecy at all.
          |||,
        ),
        alert(
          'TLSTicketbleedVulnerable',
          'critical',
          '%s == 1' % probe('tls_ticketbleed_vulnerable'),
          'Ticketbleed (CVE-2016-9244): the server leaks memory in session IDs',
          |||
            {{ $labels.instance }} answered a TLS 1.2 ticket offer with a 16-byte session ID by resuming with a longer ID that starts with the client's, twice (tls_ticketbleed_vulnerable = {{ $value }}): the remaining bytes are uninitialised server memory, which may hold other connections' secrets.
          |||,
        ),
        alert(
          'TLSSessionTicketWeakProtection',
          'critical',
          '%s == 1' % probe('tls_session_ticket_weakness'),
          'Session tickets do not protect the session secret',
          |||
            {{ $labels.instance }} issues {{ $labels.version }} session tickets with the weakness {{ $labels.weakness }} (value {{ $value }}): anyone who records a ticket can recover the session's secret and decrypt the connection, and with it every resumption of that session.
          |||,
        ),
        alert(
          'TLSEarlyDataReplayAccepted',
          'warning',
          '%s == 1' % probe('tls_early_data_replay_accepted'),
          'TLS 1.3 0-RTT data accepted twice (no anti-replay)',
          |||
            {{ $labels.instance }} accepted the same 0-RTT first flight twice (tls_early_data_replay_accepted = {{ $value }}): an attacker who records a client's early data can replay it, and the application acts on it again.
          |||,
        ),
        alert(
          'TLSClientAuthBypassAcrossNames',
          'critical',
          '%s == 1' % probe('tls_resumption_cross_name_client_auth'),
          'A session of another name resumes where a client certificate is required',
          |||
            {{ $labels.instance }} resumed, under one of the module's cross_names, a session obtained for the target's name, and that name asks for a client certificate in a full handshake (tls_resumption_cross_name_client_auth = {{ $value }}): a client without a certificate gets one from the name that asks for none and resumes it there, skipping the authentication (the bypass of nginx CVE-2025-23419).
          |||,
        ),
        alert(
          'TLSSessionsSharedAcrossNames',
          'warning',
          '%s == 1 unless ignoring (mechanism) %s == 1' % [probe('tls_resumption_cross_name_accepted'), probe('tls_resumption_cross_name_client_auth')],
          'Sessions resume across virtual hosts',
          |||
            {{ $labels.instance }} resumed, under another server name, a {{ $labels.mechanism }} session obtained for the target's name (tls_resumption_cross_name_accepted = {{ $value }}): the virtual hosts share a ticket key or session cache, so a session of one name opens the other (RFC 6066 section 3 forbids it for TLS 1.2), and whoever holds one name's keys holds the other's sessions too.
          |||,
        ),
        alert(
          'TLSSessionTicketRenewedOnResumption',
          'warning',
          '%s == 1' % probe('tls_session_ticket_renewed_on_resumption'),
          'Resumed TLS 1.2 sessions get fresh tickets: sessions never end',
          |||
            {{ $labels.instance }} issued a new {{ $labels.version }} ticket on a resumed handshake (tls_session_ticket_renewed_on_resumption = {{ $value }}): the new ticket carries the same master secret, so a client, or whoever copied a ticket, can prolong the session without end, past the ticket lifetime, and one session links all of a client's visits.
          |||,
        ),
        // Only session IDs: a session cache can forget an entry, a
        // stateless ticket cannot be revoked without the state tickets
        // avoid, so a ticket that survives the alert is by design, bounded
        // by its lifetime and key rotation (alerted on elsewhere).
        alert(
          'TLSSessionIDResumableAfterFatalAlert',
          'warning',
          'tls_resumption_after_fatal_alert_accepted{%s, mechanism="session_id"} == 1' % c.probeSelector,
          'A TLS 1.2 session ID still resumes after its connection ended with a fatal alert',
          |||
            {{ $labels.instance }} resumed a session ID whose connection the probe had ended with a fatal alert (tls_resumption_after_fatal_alert_accepted = {{ $value }}): RFC 5246 section 7.2 says such a session must not be resumed, since the alert may mark an attack on the connection, and the server's session cache keeps it anyway.
          |||,
        ),
        // max_over_time: a probe whose link missed (the network, another
        // backend) reports the fresh chain, about 0, for once.
        alert(
          'TLSResumptionChainUnbounded',
          'warning',
          'max_over_time(%s[1h]) > %d' % [probe('tls_resumption_chain_max_age_seconds'), c.resumptionChainMaxAgeSeconds],
          'Resumption chains older than %s still resume' % human(c.resumptionChainMaxAgeSeconds),
          |||
            {{ $labels.instance }} still resumed a {{ $labels.mechanism }} resumption chain whose full handshake was {{ $value | humanizeDuration }} ago (limit: %s): each resumption issued the ticket the next one offered, so the certificate check of that one handshake (and, with TLS 1.2 tickets, its master secret) is carried forward without end. RFC 8446 section 4.6.1 asks servers to bound a chain's total age.
          ||| % human(c.resumptionChainMaxAgeSeconds),
        ),
        // One series per target holding a key another target holds too:
        // the fingerprint, a value, becomes a label to join on.
        local keyOf = 'count_values by (job, instance) ("fingerprint", %s)' % probe('tls_session_ticket_key_fingerprint');
        alert(
          'TLSSessionTicketKeySharedAcrossTargets',
          'info',
          '%s * on (fingerprint) group_left () (count by (fingerprint) (%s) > 1)' % [keyOf, keyOf],
          'One ticket key serves several targets',
          |||
            {{ $labels.instance }} issues tickets under a key that {{ $value }} probed targets hold in all (fingerprint {{ $labels.fingerprint }}): one stolen key decrypts the sessions of all of them. Expected for the names of one server or one fleet; list them with tls_session_ticket_key_fingerprint == {{ $labels.fingerprint }}.
          |||,
        ),
      ],
    }],
  },
}
