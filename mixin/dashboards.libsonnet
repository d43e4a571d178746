// Grafana dashboards, written as plain JSON objects so that they render with
// nothing but the jsonnet binary. Every panel and query takes its data source
// from the `datasource` variable; every panel carries a unit and a
// description (a Go test in dashboards/ insists).
{
  local c = $._config,
  local ds = { type: 'prometheus', uid: '${datasource}' },
  // Panels select by the job and instance variables alone: the job variable
  // lists every job with series only resumption_exporter publishes, whatever
  // the job is called (probeSelector concerns the alerts).
  local sel = 'job=~"$job", instance=~"$instance"',
  local m(metric, extra='') = '%s{%s%s}' % [metric, sel, if extra == '' then '' else ', ' + extra],
  local day = c.keyMaxAgeSeconds,
  local human = (import 'duration.libsonnet').humanDuration,
  local dayText = human(day),

  local variables(instanceMulti) = [
    {
      name: 'datasource',
      label: 'Data source',
      type: 'datasource',
      query: 'prometheus',
      current: { text: '', value: '' },
      hide: 0,
      refresh: 1,
      regex: '',
      options: [],
    },
    {
      name: 'job',
      label: 'Job',
      type: 'query',
      datasource: ds,
      query: 'label_values(tls_version_supported, job)',
      definition: self.query,
      current: { text: 'All', value: '$__all' },
      hide: 0,
      refresh: 2,
      regex: '',
      sort: 1,
      multi: true,
      includeAll: true,
      allValue: '.+',
      options: [],
    },
    {
      name: 'instance',
      label: 'Target',
      type: 'query',
      datasource: ds,
      query: 'label_values(tls_version_supported{job=~"$job"}, instance)',
      definition: self.query,
      current: if instanceMulti then { text: 'All', value: '$__all' } else { text: '', value: '' },
      hide: 0,
      refresh: 2,
      regex: '',
      sort: 1,
      multi: instanceMulti,
      includeAll: instanceMulti,
      [if instanceMulti then 'allValue']: '.+',
      options: [],
    },
  ],

  local dashboard(uid, title, description, instanceMulti, panels) = {
    uid: uid,
    title: title,
    description: description,
    tags: c.dashboardTags,
    timezone: c.grafanaTimezone,
    editable: true,
    graphTooltip: 1,
    refresh: c.dashboardRefresh,
    schemaVersion: 39,
    version: 1,
    time: { from: c.dashboardTimeFrom, to: 'now' },
    annotations: { list: [] },
    links: [{
      title: 'TLS resumption',
      type: 'dashboards',
      tags: c.dashboardTags,
      asDropdown: false,
      includeVars: true,
      keepTime: true,
      icon: 'external link',
      tooltip: '',
      targetBlank: false,
    }],
    templating: { list: variables(instanceMulti) },
    // Panel ids follow their order, so regenerating is deterministic.
    panels: [panels[i] { id: i + 1 } for i in std.range(0, std.length(panels) - 1)],
  },

  local target(refId, expr, legend='', instant=false) = {
    refId: refId,
    datasource: ds,
    expr: expr,
    legendFormat: legend,
    [if instant then 'instant']: true,
    [if instant then 'range']: false,
    [if instant then 'format']: 'table',
  },

  local redAbove(limit) = {
    mode: 'absolute',
    steps: [{ color: 'green', value: null }, { color: 'red', value: limit }],
  },

  local panel(type, title, description, unit, gridPos, targets) = {
    type: type,
    title: title,
    description: description,
    datasource: ds,
    gridPos: gridPos,
    fieldConfig: { defaults: { unit: unit }, overrides: [] },
    options: {},
    targets: targets,
  },

  local timeseries(title, description, unit, gridPos, targets, thresholdLine=null) =
    panel('timeseries', title, description, unit, gridPos, targets) {
      fieldConfig+: {
        defaults+: {
          custom: {
            drawStyle: 'line',
            lineInterpolation: 'stepAfter',
            lineWidth: 1,
            fillOpacity: 0,
            showPoints: 'never',
            spanNulls: false,
            thresholdsStyle: { mode: if thresholdLine == null then 'off' else 'line' },
          },
          [if thresholdLine != null then 'thresholds']: redAbove(thresholdLine),
        },
      },
      options: {
        legend: { showLegend: true, displayMode: 'table', placement: 'bottom', calcs: ['lastNotNull', 'max'] },
        tooltip: { mode: 'multi', sort: 'desc' },
      },
    },

  local stat(title, description, unit, gridPos, expr, thresholds) =
    panel('stat', title, description, unit, gridPos, [target('A', expr, instant=true) { format: 'time_series' }]) {
      fieldConfig+: { defaults+: { thresholds: thresholds, color: { mode: 'thresholds' } } },
      options: {
        reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
        colorMode: 'background',
        graphMode: 'none',
        textMode: 'value',
        justifyMode: 'auto',
        orientation: 'auto',
        wideLayout: true,
        showPercentChange: false,
        percentChangeColorMode: 'standard',
      },
    },

  // One column of the overview table: an instant query per target, shown
  // under `name` with its own unit.
  local column(refId, name, unit, description, expr, thresholds=null, mappings=null) = {
    refId: refId,
    name: name,
    unit: unit,
    description: description,
    expr: expr,
    thresholds: thresholds,
    mappings: mappings,
  },

  // The highest TLS version as a number (13, 12) a value mapping names, so
  // that it stays one row per target in a table of instant queries.
  local versionNumber(metric) = |||
    max by (job, instance) (%(m13)s) * 13
    or
    max by (job, instance) (%(m12)s) * 12
  ||| % { m13: m(metric, 'version="TLS 1.3"'), m12: m(metric, 'version="TLS 1.2"') },
  local versionMappings = [{
    type: 'value',
    options: {
      '13': { text: 'TLS 1.3', index: 0 },
      '12': { text: 'TLS 1.2', index: 1 },
    },
  }],

  local overviewColumns = [
    column('A', 'Probe', 'bool_yes_no', 'probe_success', 'max by (job, instance) (%s)' % m('probe_success'), { mode: 'absolute', steps: [{ color: 'red', value: null }, { color: 'green', value: 1 }] }),
    column('B', 'Session ID', 'bool_yes_no', 'TLS 1.2 session-ID resumption', 'max by (job, instance) (%s)' % m('tls_resumption_supported', 'mechanism="session_id"')),
    column('C', 'Ticket', 'bool_yes_no', 'TLS 1.2 session-ticket resumption', 'max by (job, instance) (%s)' % m('tls_resumption_supported', 'mechanism="session_ticket"')),
    column('D', 'TLS 1.3 PSK', 'bool_yes_no', 'TLS 1.3 PSK resumption', 'max by (job, instance) (%s)' % m('tls_resumption_supported', 'mechanism="psk"')),
    column('E', 'Hint TLS 1.2', 's', 'TLS 1.2 ticket lifetime hint', 'max by (job, instance) (%s)' % m('tls_session_ticket_lifetime_hint_seconds', 'version="TLS 1.2"'), redAbove(day)),
    column('F', 'Lifetime TLS 1.3', 's', 'TLS 1.3 ticket lifetime', 'max by (job, instance) (%s)' % m('tls_session_ticket_lifetime_hint_seconds', 'version="TLS 1.3"'), redAbove(day)),
    column('G', 'Oldest key age', 's', 'age of the oldest ticket key still in use', 'max by (job, instance) (time() - %s)' % m('tls_session_ticket_key_oldest_active_first_seen_timestamp_seconds'), redAbove(day)),
    column('H', 'Last rotation interval', 's', 'last observed interval between two keys', 'max by (job, instance) (%s)' % m('tls_session_ticket_key_rotation_interval_seconds'), redAbove(day)),
    column('I', 'Keys active', 'none', 'distinct ticket keys seen within the active window', 'max by (job, instance) (%s)' % m('tls_session_ticket_keys_active')),
    column('J', 'Ticket accepted max age', 's', 'oldest ticket the server still resumed', 'max by (job, instance) (%s)' % m('tls_session_ticket_accepted_max_age_seconds'), redAbove(c.acceptedMaxAgeSeconds)),
    column('K', 'Session ID accepted max age', 's', 'oldest session ID the server still resumed', 'max by (job, instance) (%s)' % m('tls_session_id_accepted_max_age_seconds'), redAbove(c.acceptedMaxAgeSeconds)),
    column('L', '0-RTT max early data', 'decbytes', 'max_early_data of the TLS 1.3 tickets: above 0 the server accepts 0-RTT data, which an attacker can replay', 'max by (job, instance) (%s)' % m('tls_session_ticket_max_early_data_bytes', 'version="TLS 1.3"'), { mode: 'absolute', steps: [{ color: 'green', value: null }, { color: 'orange', value: 1 }] }),
    column('M', 'TLS version', 'none', 'highest TLS version the target completed a handshake with (probe_tls_version_info)', versionNumber('probe_tls_version_info'), mappings=versionMappings),
  ],

  local overviewTable = panel(
    'table',
    'Targets',
    |||
      One row per probed target. Yes/No columns say which resumption mechanisms the server resumed in the last probe. Lifetimes are what the server announces for its tickets; "Oldest key age" is how long the oldest ticket key still seen within the active window has been in use (red after %s); "accepted max age" is the oldest session the server still resumed, i.e. the measured forward-secrecy exposure window (red after %s). Empty cells: the server issues no such ticket, or nothing was observed yet (a rotation interval needs an observed rotation). Click a column header to sort.
    ||| % [dayText, human(c.acceptedMaxAgeSeconds)],
    'none',
    { h: 14, w: 24, x: 0, y: 4 },
    [target(col.refId, col.expr, instant=true) for col in overviewColumns],
  ) {
    options: {
      frameIndex: 0,
      showHeader: true,
      cellHeight: 'sm',
      footer: { show: false, reducer: ['sum'], fields: '' },
      sortBy: [{ displayName: 'Oldest key age', desc: true }],
    },
    fieldConfig+: {
      defaults+: { custom: { align: 'auto', cellOptions: { type: 'auto' }, filterable: true, inspect: false } },
      overrides: [
        {
          matcher: { id: 'byName', options: 'Value #' + col.refId },
          properties: [
            { id: 'displayName', value: col.name },
            { id: 'unit', value: col.unit },
            { id: 'description', value: col.description },
          ] + (
            if col.thresholds == null then []
            else [
              { id: 'thresholds', value: col.thresholds },
              { id: 'custom.cellOptions', value: { type: 'color-background' } },
            ]
          ) + (
            if col.mappings == null then []
            else [{ id: 'mappings', value: col.mappings }]
          ),
        }
        for col in overviewColumns
      ] + [{
        matcher: { id: 'byName', options: 'instance' },
        properties: [
          { id: 'displayName', value: 'Target' },
          {
            id: 'links',
            value: [{
              title: 'Target detail',
              url: '/d/resumption-target/?${__url_time_range}&var-datasource=${datasource}&var-job=${__data.fields.job}&var-instance=${__value.raw}',
            }],
          },
        ],
      }],
    },
    transformations: [
      { id: 'merge', options: {} },
      {
        id: 'organize',
        options: {
          excludeByName: { Time: true },
          indexByName: { instance: 0, job: 1 } + {
            ['Value #' + overviewColumns[i].refId]: i + 2
            for i in std.range(0, std.length(overviewColumns) - 1)
          },
          renameByName: {},
        },
      },
    ],
  },

  local w = 6,
  local overviewStats = [
    stat(
      'Targets',
      'Targets the selected jobs probe.',
      'none',
      { h: 4, w: w, x: 0, y: 0 },
      'count(%s) or vector(0)' % m('probe_success'),
      { mode: 'absolute', steps: [{ color: 'blue', value: null }] },
    ),
    stat(
      'Probes failing',
      'Targets whose last probe failed (no handshake, or a resumption check could not run).',
      'none',
      { h: 4, w: w, x: w, y: 0 },
      'count(%s == 0) or vector(0)' % m('probe_success'),
      redAbove(1),
    ),
    stat(
      'Keys not rotated within %s' % dayText,
      'Targets the TLSSessionTicketKeyNotRotated alert fires for (same expression): the oldest ticket key still in use was first seen more than %s (plus the %s active-key window) ago, and the exporter has watched the target that long.' % [dayText, human(c.activeWindowSeconds)],
      'none',
      { h: 4, w: w, x: 2 * w, y: 0 },
      'count(\n%s) or vector(0)' % (import 'queries.libsonnet').keyNotRotated(c, sel),
      redAbove(1),
    ),
    stat(
      'Resumable after %s' % human(c.acceptedMaxAgeSeconds),
      'Targets that resumed a ticket or session ID older than %s.' % human(c.acceptedMaxAgeSeconds),
      'none',
      { h: 4, w: w, x: 3 * w, y: 0 },
      'count(max by (job, instance) (%s or %s) > %d) or vector(0)' % [
        m('tls_session_ticket_accepted_max_age_seconds'),
        m('tls_session_id_accepted_max_age_seconds'),
        c.acceptedMaxAgeSeconds,
      ],
      redAbove(1),
    ),
  ],

  // The risk checks, a band of counts under the table: targets whose last
  // verdict found the risk (see the TLS* risk alerts).
  local riskStat(i, title, description, metric, thresholds=redAbove(1), extra='', query=null) = stat(
    title,
    description,
    'none',
    { h: 4, w: w, x: (i % 4) * w, y: 18 + 4 * std.floor(i / 4) },
    if query != null then query else 'count(max by (job, instance) (%s) == 1) or vector(0)' % m(metric, extra),
    thresholds,
  ),
  local riskStats = [
    riskStat(0, 'Risk: resumption without DHE', 'Targets that resumed a TLS 1.3 PSK offered with psk_ke alone: no forward secrecy (TLSResumptionWithoutForwardSecrecy).', 'tls_resumption_psk_without_dhe_accepted'),
    riskStat(1, 'Risk: Ticketbleed', 'Targets that echo a longer session ID than the client sent with its ticket, CVE-2016-9244 (TLSTicketbleedVulnerable).', 'tls_ticketbleed_vulnerable'),
    riskStat(2, 'Risk: weak ticket protection', 'Targets whose tickets hold the secret in clear, authenticate under an all-zero key or reuse a keystream (TLSSessionTicketWeakProtection).', 'tls_session_ticket_weakness'),
    riskStat(3, 'Risk: 0-RTT replay', 'Targets that accepted the same 0-RTT first flight twice; only probed by modules with the early_data risk check (TLSEarlyDataReplayAccepted).', 'tls_early_data_replay_accepted'),
    riskStat(4, 'Risk: sessions shared across names', 'Targets where a session of the target\'s name resumed under one of the module\'s cross_names: shared ticket key or cache across virtual hosts (TLSSessionsSharedAcrossNames; TLSClientAuthBypassAcrossNames when that name demands a client certificate).', 'tls_resumption_cross_name_accepted'),
    riskStat(7, 'Risk: session IDs survive fatal alerts', 'Targets that resumed a TLS 1.2 session ID whose connection the probe had ended with a fatal alert, which RFC 5246 section 7.2 forbids; only probed by modules with the after_fatal_alert risk check. Tickets are left out: stateless ones cannot be invalidated (TLSSessionIDResumableAfterFatalAlert).', 'tls_resumption_after_fatal_alert_accepted', extra='mechanism="session_id"'),
    riskStat(6, 'Risk: TLS 1.2 sessions renewed', 'Targets whose resumed TLS 1.2 handshake issued a fresh ticket, carrying the master secret forward (TLSSessionTicketRenewedOnResumption).', 'tls_session_ticket_renewed_on_resumption'),
    riskStat(8, 'Risk: unbounded resumption chains', 'Targets that still resumed a resumption chain (each resumption\'s new ticket offered by the next probe) older than %s since its full handshake; only probed by modules with the resumption_chain risk check, and never older than the exporter\'s uptime (TLSResumptionChainUnbounded).' % human(c.resumptionChainMaxAgeSeconds), 'tls_resumption_chain_max_age_seconds', query='count(max by (job, instance) (max_over_time(%s[1h]) > %d)) or vector(0)' % [m('tls_resumption_chain_max_age_seconds'), c.resumptionChainMaxAgeSeconds]),
    // Info, not a risk on its own: stateless tickets are reusable by design.
    riskStat(5, 'Info: tickets accepted twice', 'Targets that resumed one ticket twice in a probe (not single-use); only probed by modules with the ticket_reuse risk check. Information, no alert: stateless tickets always do; 0-RTT anti-replay needs single-use TLS 1.3 tickets.', 'tls_session_ticket_reuse_accepted', { mode: 'absolute', steps: [{ color: 'blue', value: null }] }),
  ],

  local legend = '{{instance}}',
  local detailPanels = [
    timeseries(
      'Ticket key age',
      'Age of the oldest ticket key still in use and of the newest one (time() minus their first sighting). They differ while several keys are active, e.g. behind a load balancer or just after a rotation. The red line is %s.' % dayText,
      's',
      { h: 8, w: 12, x: 0, y: 0 },
      [
        target('A', 'time() - %s' % m('tls_session_ticket_key_oldest_active_first_seen_timestamp_seconds'), 'oldest active key ' + legend),
        target('B', 'time() - %s' % m('tls_session_ticket_key_first_seen_timestamp_seconds'), 'newest key ' + legend),
      ],
      thresholdLine=day,
    ),
    timeseries(
      'Rotations',
      'Last observed interval between a key and its successor (left) and the number of rotations the exporter\'s history holds. No interval until a rotation was observed.',
      's',
      { h: 8, w: 12, x: 12, y: 0 },
      [
        target('A', m('tls_session_ticket_key_rotation_interval_seconds'), 'rotation interval ' + legend),
        target('B', m('tls_session_ticket_key_rotations_observed'), 'rotations observed ' + legend),
      ],
      thresholdLine=day,
    ) {
      fieldConfig+: {
        overrides: [{
          matcher: { id: 'byFrameRefID', options: 'B' },
          properties: [
            { id: 'unit', value: 'none' },
            { id: 'custom.axisPlacement', value: 'right' },
          ],
        }],
      },
    },
    timeseries(
      'Active keys',
      'Distinct ticket keys seen within the active window. More than one: a rotation in progress, a load balancer over servers with different keys, or a server that keeps issuing under an old key.',
      'none',
      { h: 8, w: 12, x: 0, y: 8 },
      [target('A', m('tls_session_ticket_keys_active'), legend)],
    ),
    timeseries(
      'Ticket lifetimes',
      'Ticket lifetime the server announces, per protocol version (TLS 1.2 lifetime hint, TLS 1.3 ticket_lifetime). The red line is %s; RFC 8446 allows at most 7 days for TLS 1.3.' % dayText,
      's',
      { h: 8, w: 12, x: 12, y: 8 },
      [target('A', m('tls_session_ticket_lifetime_hint_seconds'), '{{version}} ' + legend)],
      thresholdLine=day,
    ),
    timeseries(
      'Accepted session age',
      'Age of the oldest earlier ticket and session ID that the server still resumed: how long a stolen ticket key or cache entry keeps decrypting traffic. Grows until the server starts refusing; restarting the exporter resets it (its sessions live in memory only).',
      's',
      { h: 8, w: 12, x: 0, y: 16 },
      [
        target('A', m('tls_session_ticket_accepted_max_age_seconds'), 'ticket {{version}} ' + legend),
        target('B', m('tls_session_id_accepted_max_age_seconds'), 'session ID ' + legend),
      ],
      thresholdLine=c.acceptedMaxAgeSeconds,
    ),
    timeseries(
      'Handshake duration',
      'Time from ClientHello to the server\'s first flight, for the full handshake and the resumed offer of each mechanism. A resumed handshake skips the certificate and its signature.',
      's',
      { h: 8, w: 12, x: 12, y: 16 },
      [target('A', m('tls_resumption_handshake_duration_seconds'), '{{mechanism}} {{handshake}}')],
    ),
    timeseries(
      'Resumption supported',
      'Per mechanism, 1 when the server resumed the session offered in the probe, 0 when it did a full handshake. Gaps: the check could not run or the version is not offered.',
      'bool_yes_no',
      { h: 8, w: 12, x: 0, y: 24 },
      [target('A', m('tls_resumption_supported'), '{{mechanism}}')],
    ),
    timeseries(
      'Probe',
      'probe_success (1 = handshake completed and every check ran) and how long the whole probe took.',
      's',
      { h: 8, w: 12, x: 12, y: 24 },
      [
        target('A', m('probe_duration_seconds'), 'duration'),
        target('B', m('probe_success'), 'success'),
      ],
    ) {
      fieldConfig+: {
        overrides: [{
          matcher: { id: 'byFrameRefID', options: 'B' },
          properties: [
            { id: 'unit', value: 'bool' },
            { id: 'custom.axisPlacement', value: 'right' },
          ],
        }],
      },
    },
    timeseries(
      'Key history watched for',
      'How long the exporter has watched this target\'s ticket keys (time() minus tls_session_ticket_history_since_timestamp_seconds). The "not rotated" alert stays silent until this exceeds %s; without --history.path it restarts from zero with the exporter.' % human(c.keyMaxAgeSeconds + c.activeWindowSeconds),
      's',
      { h: 8, w: 12, x: 0, y: 32 },
      [target('A', 'time() - %s' % m('tls_session_ticket_history_since_timestamp_seconds'), legend)],
      thresholdLine=day,
    ),
    panel(
      'table',
      'Ticket format',
      'Ticket format per protocol version: stateless (key name in clear, so rotation is readable from it), stateless_unnamed (e.g. Go servers; only the accepted age tells), or stateful (a session-cache ID). key_name_bytes is the key name\'s length.',
      'none',
      { h: 8, w: 12, x: 12, y: 32 },
      [target('A', m('tls_session_ticket_info'), instant=true)],
    ) {
      options: { frameIndex: 0, showHeader: true, cellHeight: 'sm' },
      transformations: [{
        id: 'organize',
        options: {
          excludeByName: { Time: true, Value: true, __name__: true },
          indexByName: { version: 0, format: 1, key_name_bytes: 2 },
          renameByName: {},
        },
      }],
    },
    stat(
      'TLS version',
      'Highest TLS version the target completed a handshake with in the last probe (probe_tls_version_info).',
      'none',
      { h: 8, w: 6, x: 0, y: 40 },
      versionNumber('probe_tls_version_info'),
      { mode: 'absolute', steps: [{ color: 'orange', value: null }, { color: 'green', value: 13 }] },
    ) {
      fieldConfig+: { defaults+: { mappings: versionMappings } },
    },
    timeseries(
      '0-RTT (max early data)',
      'max_early_data the server announces in its TLS 1.3 tickets: above 0 it accepts 0-RTT early data on resumption, which an attacker who recorded it can replay; 0 or absent: no 0-RTT.',
      'decbytes',
      { h: 8, w: 18, x: 6, y: 40 },
      [target('A', m('tls_session_ticket_max_early_data_bytes'), '{{version}} ' + legend)],
    ),
  ],

  // Behind load balancers (README "Behind load balancers"): the backends
  // the tickets name, and the share of first offers that resume — what a
  // client reconnecting experiences, which the verdict deliberately is not.
  local fleetShare(legendPrefix) = target('B', 'avg by (job, instance, mechanism) (avg_over_time(%s[1h]))' % m('tls_resumption_first_offer_resumed'), legendPrefix + '{{mechanism}}'),
  local overviewFleetPanels = [
    timeseries(
      'Backends seen',
      'Distinct ticket key names per probe (tls_session_ticket_keys_seen, the larger of TLS 1.2 and TLS 1.3): behind a load balancer whose backends have keys of their own, how many answered. 1 for a single server or backends sharing a key; 0 or absent when tickets name no key.',
      'none',
      { h: 8, w: 12, x: 0, y: 30 },
      [target('A', 'max by (job, instance) (%s)' % m('tls_session_ticket_keys_seen'), legend)],
    ),
    timeseries(
      'Resumed share of first offers',
      'Share of probes, over the last hour, whose first offer of a fresh session resumed (avg_over_time of tls_resumption_first_offer_resumed), per mechanism: about 1/N behind N backends with their own caches and keys, 1 on a single server. tls_resumption_supported stays 1 behind such a balancer; this is what clients experience.',
      'percentunit',
      { h: 8, w: 12, x: 12, y: 30 },
      [fleetShare('{{instance}} ')],
    ),
  ],
  local detailFleetPanels = [
    timeseries(
      'Offers per probe',
      'Resumption offers each probe made (tls_resumption_offers: the first one and the retries behind a load balancer, not the replays of old sessions), by mechanism and result, and the share of first offers that resumed over the last hour (right axis). More than one offer: a refusal showed another backend answering.',
      'none',
      { h: 8, w: 24, x: 0, y: 48 },
      [
        target('A', m('tls_resumption_offers'), '{{mechanism}} {{result}}'),
        fleetShare('first offer resumed '),
      ],
    ) {
      fieldConfig+: {
        overrides: [{
          matcher: { id: 'byFrameRefID', options: 'B' },
          properties: [
            { id: 'unit', value: 'percentunit' },
            { id: 'custom.axisPlacement', value: 'right' },
          ],
        }],
      },
    },
  ],

  grafanaDashboards+:: {
    'resumption-overview.json': dashboard(
      'resumption-overview',
      'TLS resumption / Overview',
      'Session-resumption posture of every target resumption_exporter probes.',
      true,
      overviewStats + [overviewTable] + riskStats + overviewFleetPanels,
    ),
    'resumption-target.json': dashboard(
      'resumption-target',
      'TLS resumption / Target',
      'Ticket keys, lifetimes and resumption of one target over time.',
      false,
      detailPanels + detailFleetPanels,
    ),
  },
}
