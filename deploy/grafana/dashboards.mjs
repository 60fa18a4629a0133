// The flowlens Grafana dashboards, written as code: `node deploy/grafana/dashboards.mjs` writes
// deploy/grafana/dashboards/*.json (what Grafana loads); `--check` only compares and exits 1 when a
// file differs (test/deploy-grafana.test.ts runs it). Edit this file, not the JSON, then run it.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const OUT = join(dirname(fileURLToPath(import.meta.url)), 'dashboards');
const CHECK = process.argv.includes('--check');
const differing = [];
const QDB = { type: 'grafana-postgresql-datasource', uid: 'flowlens-questdb' };
const PROM = { type: 'prometheus', uid: 'flowlens-prometheus' };

let nextId = 1;
function sqlTarget(rawSql, format, refId = 'A') {
  return { refId, datasource: QDB, editorMode: 'code', format, rawQuery: true, rawSql: rawSql.trim() };
}
function promTarget(expr, legendFormat, refId = 'A') {
  return { refId, datasource: PROM, editorMode: 'code', expr, legendFormat, range: true };
}
function panel(type, title, gridPos, ds, targets, extra = {}) {
  return {
    id: nextId++,
    type,
    title,
    gridPos,
    datasource: ds,
    targets,
    fieldConfig: { defaults: extra.defaults ?? {}, overrides: extra.overrides ?? [] },
    options: extra.options ?? {},
    ...(extra.description ? { description: extra.description } : {}),
    ...(extra.interval ? { interval: extra.interval } : {}),
    ...(extra.transformations ? { transformations: extra.transformations } : {}),
  };
}
// A query with a series column (metric) is wrapped in time order: Grafana turns such long rows into
// one column per series and wants them sorted by time.
const byTime = (sql) => (/ AS metric\b/.test(sql) ? `SELECT * FROM (\n  ${sql.trim().replaceAll('\n', '\n  ')}\n)\nORDER BY time` : sql);
const ts = (title, pos, sql, unit, extra = {}) =>
  panel('timeseries', title, pos, QDB, [sqlTarget(byTime(sql), 'time_series')], {
    interval: '1m',
    defaults: { unit, custom: { drawStyle: 'line', lineWidth: 1, fillOpacity: 10, stacking: { mode: extra.stack ? 'normal' : 'none', group: 'A' } } },
    options: { legend: { displayMode: 'table', placement: 'bottom', calcs: ['mean', 'max'], showLegend: true }, tooltip: { mode: 'multi', sort: 'desc' } },
    ...extra,
  });
const table = (title, pos, sql, extra = {}) =>
  panel('table', title, pos, QDB, [sqlTarget(sql, 'table')], { options: { showHeader: true, cellHeight: 'sm' }, ...extra });
const stat = (title, pos, sql, unit, extra = {}) =>
  panel('stat', title, pos, QDB, [sqlTarget(sql, 'table')], {
    defaults: { unit, color: { mode: 'thresholds' }, thresholds: { mode: 'absolute', steps: [{ color: 'blue', value: null }] } },
    options: { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false }, colorMode: 'value', graphMode: 'none', textMode: 'auto' },
    ...extra,
  });
const promTs = (title, pos, targets, unit, extra = {}) =>
  panel('timeseries', title, pos, PROM, targets, {
    defaults: { unit, min: 0, custom: { drawStyle: 'line', lineWidth: 1, fillOpacity: 10 } },
    options: { legend: { displayMode: 'table', placement: 'bottom', calcs: ['mean', 'max', 'lastNotNull'], showLegend: true }, tooltip: { mode: 'multi', sort: 'desc' } },
    ...extra,
  });
const row = (title, y) => ({ id: nextId++, type: 'row', title, collapsed: false, gridPos: { h: 1, w: 24, x: 0, y }, panels: [] });

function sqlVar(name, label, query, o = {}) {
  return {
    name,
    label,
    type: 'query',
    datasource: QDB,
    query,
    definition: query,
    refresh: 2,
    multi: o.multi ?? true,
    includeAll: o.includeAll ?? true,
    current: {},
    options: [],
    sort: 1,
    hide: 0,
    skipUrlSync: false,
  };
}
function dashboard(uid, title, description, panels, variables, extra = {}) {
  return {
    uid,
    title,
    description,
    tags: ['flowlens'],
    timezone: 'utc',
    editable: false,
    graphTooltip: 1,
    fiscalYearStartMonth: 0,
    liveNow: false,
    weekStart: '',
    schemaVersion: 39,
    version: 1,
    refresh: extra.refresh ?? '1m',
    time: extra.time ?? { from: 'now-6h', to: 'now' },
    timepicker: {},
    annotations: {
      list: [
        {
          builtIn: 1,
          datasource: { type: 'grafana', uid: '-- Grafana --' },
          enable: true,
          hide: true,
          iconColor: 'rgba(0, 211, 255, 1)',
          name: 'Annotations & Alerts',
          type: 'dashboard',
        },
      ],
    },
    links: [{ title: 'flowlens', type: 'dashboards', tags: ['flowlens'], asDropdown: true, includeVars: false, keepTime: true, icon: 'external link', targetBlank: false, tooltip: '', url: '' }],
    templating: { list: variables },
    panels,
  };
}
function save(name, d) {
  const file = join(OUT, `${name}.json`);
  const text = `${JSON.stringify(d, null, 2)}\n`;
  if (!CHECK) writeFileSync(file, text);
  else if (readFileSync(file, 'utf8') !== text) differing.push(file);
  nextId = 1;
}

// Grafana's $__interval is at least the panels' 1m interval: a SAMPLE BY unit QuestDB knows (m, h, d, y).
// FILL only where every column is a plain aggregate (QuestDB fills aggregates, one value each).
const PER_S = '* 1000.0 / $__interval_ms';
const NODE_VAR = sqlVar('node', 'Node', 'SELECT DISTINCT node FROM traffic WHERE $__timeFilter(ts) ORDER BY node');

// ------------------------------------------------------------------ traffic
save(
  'flowlens-traffic',
  dashboard(
    'flowlens-traffic',
    'flowlens / Traffic',
    'Bytes, packets and flows per node and interface, from the QuestDB tables traffic and flows.',
    [
      stat('Bytes', { h: 4, w: 6, x: 0, y: 0 }, 'SELECT sum(bytes) AS bytes FROM traffic WHERE $__timeFilter(ts) AND node IN ($node)', 'decbytes'),
      stat('Packets', { h: 4, w: 6, x: 6, y: 0 }, 'SELECT sum(packets) AS packets FROM traffic WHERE $__timeFilter(ts) AND node IN ($node)', 'short'),
      stat('Flows', { h: 4, w: 6, x: 12, y: 0 }, 'SELECT sum(flows) AS flows FROM traffic WHERE $__timeFilter(ts) AND node IN ($node)', 'short'),
      stat('Nodes reporting', { h: 4, w: 6, x: 18, y: 0 }, 'SELECT count_distinct(node) AS nodes FROM traffic WHERE $__timeFilter(ts) AND node IN ($node)', 'short'),
      ts(
        'Throughput by node',
        { h: 9, w: 12, x: 0, y: 4 },
        `SELECT ts AS time, node AS metric, sum(bytes) ${PER_S} AS bytes_per_second
FROM traffic
WHERE $__timeFilter(ts) AND node IN ($node)
SAMPLE BY $__interval`,
        'Bps',
        { stack: true, description: 'Bytes per second, averaged over each interval (traffic table, all interfaces of a node).' },
      ),
      ts(
        'Packets by node',
        { h: 9, w: 12, x: 12, y: 4 },
        `SELECT ts AS time, node AS metric, sum(packets) ${PER_S} AS packets_per_second
FROM traffic
WHERE $__timeFilter(ts) AND node IN ($node)
SAMPLE BY $__interval`,
        'pps',
        { stack: true },
      ),
      ts(
        'Flows per minute by node',
        { h: 9, w: 12, x: 0, y: 13 },
        `SELECT ts AS time, node AS metric, sum(flows) * 60000.0 / $__interval_ms AS flows_per_minute
FROM traffic
WHERE $__timeFilter(ts) AND node IN ($node)
SAMPLE BY $__interval`,
        'short',
        { stack: true },
      ),
      ts(
        'Throughput by interface',
        { h: 9, w: 12, x: 12, y: 13 },
        `SELECT ts AS time, iface AS metric, (sum(client_bytes) + sum(server_bytes)) ${PER_S} AS bytes_per_second
FROM flows
WHERE $__timeFilter(ts) AND node IN ($node) AND iface IN ($iface)
SAMPLE BY $__interval`,
        'Bps',
        { stack: true, description: 'Flow bytes per capture interface of the selected nodes (flows table: both directions).' },
      ),
      ts(
        'All nodes: bytes, packets and flows per minute',
        { h: 9, w: 24, x: 0, y: 22 },
        `SELECT ts AS time, sum(bytes) * 60000.0 / $__interval_ms AS bytes_per_minute,
       sum(packets) * 60000.0 / $__interval_ms AS packets_per_minute,
       sum(flows) * 60000.0 / $__interval_ms AS flows_per_minute
FROM traffic
WHERE $__timeFilter(ts) AND node IN ($node)
SAMPLE BY $__interval`,
        'short',
        {
          overrides: [{ matcher: { id: 'byName', options: 'bytes_per_minute' }, properties: [{ id: 'unit', value: 'decbytes' }, { id: 'custom.axisPlacement', value: 'right' }] }],
        },
      ),
    ],
    [NODE_VAR, sqlVar('iface', 'Interface', 'SELECT DISTINCT iface FROM flows WHERE $__timeFilter(ts) AND node IN ($node) AND iface IS NOT NULL ORDER BY iface')],
  ),
);

// ------------------------------------------------------------------ top talkers and applications
const hostLink = [
  {
    matcher: { id: 'byName', options: 'ip' },
    properties: [{ id: 'links', value: [{ title: 'Host ${__value.raw}', url: '/d/flowlens-host/flowlens-host?var-host=${__value.raw}&${__url_time_range}' }] }],
  },
];
save(
  'flowlens-top',
  dashboard(
    'flowlens-top',
    'flowlens / Top talkers and applications',
    'The hosts, servers and applications with the most bytes in the time range (QuestDB tables hosts and flows).',
    [
      table(
        'Top talkers',
        { h: 11, w: 12, x: 0, y: 0 },
        `SELECT ip, sent + received AS bytes, sent, received, flows_out, flows_in, peers
FROM (
  SELECT ip, sum(bytes_sent) AS sent, sum(bytes_received) AS received,
         sum(flows_initiated) AS flows_out, sum(flows_received) AS flows_in, max(peers) AS peers
  FROM hosts
  WHERE $__timeFilter(ts) AND node IN ($node)
)
ORDER BY bytes DESC
LIMIT 20`,
        {
          description: 'Bytes sent and received per host; click an address for its drill-down.',
          defaults: { unit: 'short' },
          overrides: [
            ...hostLink,
            { matcher: { id: 'byRegexp', options: '^(bytes|sent|received)$' }, properties: [{ id: 'unit', value: 'decbytes' }] },
          ],
        },
      ),
      panel(
        'barchart',
        'Top applications',
        { h: 11, w: 12, x: 12, y: 0 },
        QDB,
        [
          sqlTarget(
            `SELECT app, bytes, flows
FROM (
  SELECT app, sum(client_bytes) + sum(server_bytes) AS bytes, count_distinct(flow_id) AS flows
  FROM flows
  WHERE $__timeFilter(ts) AND node IN ($node) AND app IS NOT NULL
)
ORDER BY bytes DESC
LIMIT 15`,
            'table',
          ),
        ],
        {
          description: 'Bytes per application that DPI recognised (flows without one are left out).',
          defaults: { unit: 'decbytes' },
          options: { orientation: 'horizontal', xField: 'app', showValue: 'auto', legend: { showLegend: false, displayMode: 'list', placement: 'bottom' }, tooltip: { mode: 'single' } },
          overrides: [{ matcher: { id: 'byName', options: 'flows' }, properties: [{ id: 'custom.hideFrom', value: { viz: true, legend: true, tooltip: false } }] }],
        },
      ),
      ts(
        'Applications over time',
        { h: 9, w: 24, x: 0, y: 11 },
        `SELECT ts AS time, app AS metric, (sum(client_bytes) + sum(server_bytes)) ${PER_S} AS bytes_per_second
FROM flows
WHERE $__timeFilter(ts) AND node IN ($node) AND app IS NOT NULL
SAMPLE BY $__interval`,
        'Bps',
        { stack: true },
      ),
      table(
        'Top servers',
        { h: 10, w: 12, x: 0, y: 20 },
        `SELECT server_ip AS ip, server_port, transport, bytes, flows
FROM (
  SELECT server_ip, server_port, transport, sum(client_bytes) + sum(server_bytes) AS bytes, count_distinct(flow_id) AS flows
  FROM flows
  WHERE $__timeFilter(ts) AND node IN ($node)
)
ORDER BY bytes DESC
LIMIT 20`,
        { overrides: [...hostLink, { matcher: { id: 'byName', options: 'bytes' }, properties: [{ id: 'unit', value: 'decbytes' }] }] },
      ),
      table(
        'Top conversations',
        { h: 10, w: 12, x: 12, y: 20 },
        `SELECT client_ip, server_ip, server_port, transport, bytes, flows
FROM (
  SELECT client_ip, server_ip, server_port, transport, sum(client_bytes) + sum(server_bytes) AS bytes, count_distinct(flow_id) AS flows
  FROM flows
  WHERE $__timeFilter(ts) AND node IN ($node)
)
ORDER BY bytes DESC
LIMIT 20`,
        { overrides: [{ matcher: { id: 'byName', options: 'bytes' }, properties: [{ id: 'unit', value: 'decbytes' }] }] },
      ),
    ],
    [sqlVar('node', 'Node', 'SELECT DISTINCT node FROM hosts WHERE $__timeFilter(ts) ORDER BY node')],
  ),
);

// ------------------------------------------------------------------ host drill-down
const HOST = "'$host'";
save(
  'flowlens-host',
  dashboard(
    'flowlens-host',
    'flowlens / Host',
    'One host: its traffic, peers, flows, applications and anomalies. Pick it in the Host variable (the busiest 100 of the range), or type an address.',
    [
      table(
        'Current state (latest interval per node)',
        { h: 5, w: 24, x: 0, y: 0 },
        `SELECT ts, node, ip, bytes_sent, bytes_received, packets_sent, packets_received, flows_initiated, flows_received, peers
FROM hosts
WHERE $__timeFilter(ts) AND node IN ($node) AND ip = ${HOST}
LATEST ON ts PARTITION BY node, ip`,
        { overrides: [{ matcher: { id: 'byRegexp', options: '^bytes_' }, properties: [{ id: 'unit', value: 'decbytes' }] }] },
      ),
      ts(
        'Throughput sent and received',
        { h: 9, w: 12, x: 0, y: 5 },
        `SELECT ts AS time, sum(bytes_sent) ${PER_S} AS sent, sum(bytes_received) ${PER_S} AS received
FROM hosts
WHERE $__timeFilter(ts) AND node IN ($node) AND ip = ${HOST}
SAMPLE BY $__interval`,
        'Bps',
      ),
      ts(
        'Flows and peers',
        { h: 9, w: 12, x: 12, y: 5 },
        `SELECT ts AS time, sum(flows_initiated) AS flows_initiated, sum(flows_received) AS flows_received, max(peers) AS peers
FROM hosts
WHERE $__timeFilter(ts) AND node IN ($node) AND ip = ${HOST}
SAMPLE BY $__interval FILL(0, 0, 0)`,
        'short',
        { description: 'Flows the host started and answered, summed per interval; peers: the most distinct peers in one aggregation interval.' },
      ),
      table(
        'Flows (segments summed per flow, biggest first)',
        { h: 11, w: 16, x: 0, y: 14 },
        `SELECT *, client_bytes + server_bytes AS bytes
FROM (
  SELECT flow_id, client_ip, client_port, server_ip, server_port, transport,
         min(first_seen) AS first_seen, max(last_seen) AS last_seen,
         sum(client_bytes) AS client_bytes, sum(server_bytes) AS server_bytes,
         last_not_null(app) AS app, last_not_null(server_name) AS server_name, last(tcp_state) AS tcp_state
  FROM flows
  WHERE $__timeFilter(ts) AND node IN ($node) AND (client_ip = ${HOST} OR server_ip = ${HOST})
  GROUP BY flow_id, client_ip, client_port, server_ip, server_port, transport
)
ORDER BY bytes DESC
LIMIT 100`,
        { overrides: [{ matcher: { id: 'byRegexp', options: 'bytes$' }, properties: [{ id: 'unit', value: 'decbytes' }] }] },
      ),
      panel(
        'piechart',
        'Applications',
        { h: 11, w: 8, x: 16, y: 14 },
        QDB,
        [
          sqlTarget(
            `SELECT app, bytes
FROM (
  SELECT coalesce(app, 'unknown') AS app, sum(client_bytes) + sum(server_bytes) AS bytes
  FROM flows
  WHERE $__timeFilter(ts) AND node IN ($node) AND (client_ip = ${HOST} OR server_ip = ${HOST})
)
ORDER BY bytes DESC
LIMIT 10`,
            'table',
          ),
        ],
        {
          defaults: { unit: 'decbytes' },
          options: { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: true }, pieType: 'donut', legend: { showLegend: true, displayMode: 'table', placement: 'right', values: ['value'] }, tooltip: { mode: 'single' } },
        },
      ),
      table(
        'Anomalies involving this host',
        { h: 8, w: 24, x: 0, y: 25 },
        `SELECT started_at, last_seen, kind, severity, state, source, target_ip, target_port, summary
FROM anomalies
WHERE ts <= $__timeTo() AND last_seen >= $__timeFrom() AND (source = ${HOST} OR target_ip = ${HOST})
ORDER BY last_seen DESC
LIMIT 100`,
      ),
    ],
    [
      sqlVar('node', 'Node', 'SELECT DISTINCT node FROM hosts WHERE $__timeFilter(ts) ORDER BY node'),
      sqlVar(
        'host',
        'Host',
        `SELECT ip FROM (
  SELECT ip, sum(bytes_sent) + sum(bytes_received) AS bytes
  FROM hosts
  WHERE $__timeFilter(ts) AND node IN ($node)
)
ORDER BY bytes DESC
LIMIT 100`,
        { multi: false, includeAll: false },
      ),
    ],
  ),
);

// ------------------------------------------------------------------ anomalies
const severityColors = {
  matcher: { id: 'byName', options: 'severity' },
  properties: [
    { id: 'custom.cellOptions', value: { type: 'color-text' } },
    {
      id: 'mappings',
      value: [{ type: 'value', options: { critical: { color: 'red', index: 0 }, high: { color: 'orange', index: 1 }, medium: { color: 'yellow', index: 2 }, low: { color: 'blue', index: 3 } } }],
    },
  ],
};
save(
  'flowlens-anomalies',
  dashboard(
    'flowlens-anomalies',
    'flowlens / Anomalies',
    'Anomalies over time and the ones active now (QuestDB table anomalies: one row per anomaly, its latest version).',
    [
      stat(
        'Active now',
        { h: 4, w: 6, x: 0, y: 0 },
        `SELECT count() AS active
FROM (SELECT * FROM anomalies WHERE kind IN ($kind) LATEST ON ts PARTITION BY anomaly_id)
WHERE state = 'active'`,
        'short',
        { defaults: { unit: 'short', color: { mode: 'thresholds' }, thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }, { color: 'red', value: 1 }] } } },
      ),
      stat(
        'Started in range',
        { h: 4, w: 6, x: 6, y: 0 },
        'SELECT count() AS started FROM anomalies WHERE $__timeFilter(ts) AND kind IN ($kind)',
        'short',
      ),
      panel(
        'barchart',
        'By kind, in range',
        { h: 4, w: 12, x: 12, y: 0 },
        QDB,
        [sqlTarget("SELECT kind, count() AS anomalies\nFROM anomalies\nWHERE $__timeFilter(ts) AND kind IN ($kind)\nORDER BY anomalies DESC", 'table')],
        { options: { orientation: 'horizontal', xField: 'kind', showValue: 'auto', legend: { showLegend: false, displayMode: 'list', placement: 'bottom' }, tooltip: { mode: 'single' } } },
      ),
      ts(
        'Anomalies started, by kind',
        { h: 9, w: 24, x: 0, y: 4 },
        `SELECT ts AS time, kind AS metric, count() AS anomalies
FROM anomalies
WHERE $__timeFilter(ts) AND kind IN ($kind)
SAMPLE BY $__interval FILL(0)`,
        'short',
        { stack: true, defaults: { unit: 'short', custom: { drawStyle: 'bars', fillOpacity: 80, lineWidth: 1, stacking: { mode: 'normal', group: 'A' } } } },
      ),
      table(
        'Active anomalies',
        { h: 10, w: 24, x: 0, y: 13 },
        `SELECT started_at, last_seen, kind, severity, source, target_ip, target_port, packets, bytes, summary
FROM (SELECT * FROM anomalies WHERE kind IN ($kind) LATEST ON ts PARTITION BY anomaly_id)
WHERE state = 'active'
ORDER BY last_seen DESC
LIMIT 200`,
        { overrides: [severityColors, { matcher: { id: 'byName', options: 'bytes' }, properties: [{ id: 'unit', value: 'decbytes' }] }] },
      ),
      table(
        'All anomalies in range',
        { h: 10, w: 24, x: 0, y: 23 },
        `SELECT started_at, last_seen, state, kind, severity, node, source, target_ip, target_port, packets, bytes, summary, evidence
FROM anomalies
WHERE $__timeFilter(ts) AND kind IN ($kind)
ORDER BY started_at DESC
LIMIT 500`,
        { overrides: [severityColors, { matcher: { id: 'byName', options: 'bytes' }, properties: [{ id: 'unit', value: 'decbytes' }] }] },
      ),
    ],
    [sqlVar('kind', 'Kind', 'SELECT DISTINCT kind FROM anomalies ORDER BY kind')],
    { time: { from: 'now-24h', to: 'now' } },
  ),
);

// ------------------------------------------------------------------ capture health (Prometheus)
const promVar = (name, label, query) => ({
  name,
  label,
  type: 'query',
  datasource: PROM,
  query: { query, refId: `${name}-var`, qryType: 1 },
  definition: query,
  refresh: 2,
  multi: true,
  includeAll: true,
  allValue: '.*',
  current: {},
  options: [],
  sort: 1,
  hide: 0,
  skipUrlSync: false,
});
const N = 'node=~"$node"';
save(
  'flowlens-capture-health',
  dashboard(
    'flowlens-capture-health',
    'flowlens / Capture health',
    "flowlens's own health from Prometheus: capture rates and drops per node and interface, decode workers, the store's writes and spool, the API. The alert rules are in deploy/prometheus/flowlens-alerts.yml.",
    [
      row('Capture', 0),
      promTs('Packets received', { h: 8, w: 12, x: 0, y: 1 }, [promTarget(`sum by (node, iface) (rate(flowlens_capture_packets_total{${N}}[$__rate_interval]))`, '{{node}}/{{iface}}')], 'pps'),
      promTs(
        'Drops, by where',
        { h: 8, w: 12, x: 12, y: 1 },
        [promTarget(`sum by (node, iface, where) (rate(flowlens_capture_drops_total{${N}}[$__rate_interval]))`, '{{node}}/{{iface}} {{where}}')],
        'pps',
        { description: 'kernel: the socket buffer overflowed (raise --buffer-mb); interface: the NIC or driver; ring: a decode worker fell behind its ring (more --workers, or a capture filter).' },
      ),
      promTs(
        'Drop ratio',
        { h: 8, w: 6, x: 0, y: 9 },
        [
          promTarget(
            `sum by (node, iface) (rate(flowlens_capture_drops_total{${N}}[$__rate_interval])) / (sum by (node, iface) (rate(flowlens_capture_packets_total{${N}}[$__rate_interval])) + sum by (node, iface) (rate(flowlens_capture_drops_total{${N}}[$__rate_interval])))`,
            '{{node}}/{{iface}}',
          ),
        ],
        'percentunit',
        { description: 'Dropped frames over frames offered (received plus dropped).' },
      ),
      promTs(
        'Decode ring fill',
        { h: 8, w: 6, x: 6, y: 9 },
        [promTarget(`max by (node, worker) (max_over_time(flowlens_capture_ring_fill_ratio{${N}}[$__rate_interval]))`, '{{node}} worker {{worker}}')],
        'percentunit',
        { defaults: { unit: 'percentunit', min: 0, max: 1, custom: { drawStyle: 'line', lineWidth: 1, fillOpacity: 10 } }, description: 'The most of each decode worker ring in use between scrapes: a full ring drops frames (drops where="ring"). Sampled at scrape time, so short bursts can pass unseen; the ring drops counter sees every one.' },
      ),
      promTs('Live flows', { h: 8, w: 6, x: 12, y: 9 }, [promTarget(`sum by (instance) (flowlens_capture_live_flows{${N}})`, '{{instance}}')], 'short'),
      promTs(
        'Seconds since the last batch',
        { h: 8, w: 6, x: 18, y: 9 },
        [promTarget('time() - max by (instance) (flowlens_capture_last_batch_timestamp_seconds)', '{{instance}}')],
        's',
        { description: 'Decode workers hand over a batch every second; FlowlensNodeSilent fires above 300 s.' },
      ),
      row('Store', 17),
      promTs(
        'Store write latency (mean per call)',
        { h: 8, w: 8, x: 0, y: 18 },
        [
          promTarget(
            'sum by (job, instance) (rate(flowlens_store_write_seconds_total[$__rate_interval])) / sum by (job, instance) (rate(flowlens_store_writes_total[$__rate_interval]))',
            '{{job}} {{instance}}',
          ),
        ],
        's',
      ),
      promTs('Store writes, by result', { h: 8, w: 8, x: 8, y: 18 }, [promTarget('sum by (instance, result) (rate(flowlens_store_writes_total[$__rate_interval]))', '{{instance}} {{result}}')], 'ops'),
      promTs(
        'Spool depth',
        { h: 8, w: 8, x: 16, y: 18 },
        [promTarget('max by (job, instance) (flowlens_store_spooled_batches)', '{{job}} {{instance}}')],
        'short',
        { description: 'Batches waiting on disk while QuestDB is unreachable or refuses them; FlowlensSpoolGrowing fires when it keeps growing.' },
      ),
      row('Processes', 26),
      panel(
        'stat',
        'Up',
        { h: 6, w: 8, x: 0, y: 27 },
        PROM,
        [promTarget('up{job=~"flowlens-.*"}', '{{job}} {{instance}}'), promTarget('flowlens_store_up', 'store {{job}} {{instance}}', 'B')],
        {
          defaults: { mappings: [{ type: 'value', options: { 0: { text: 'DOWN', color: 'red', index: 0 }, 1: { text: 'UP', color: 'green', index: 1 } } }], color: { mode: 'thresholds' }, thresholds: { mode: 'absolute', steps: [{ color: 'red', value: null }, { color: 'green', value: 1 }] } },
          options: { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false }, colorMode: 'background', graphMode: 'none', textMode: 'value_and_name' },
        },
      ),
      promTs('API: GraphQL operations', { h: 6, w: 8, x: 8, y: 27 }, [promTarget('sum by (instance) (rate(flowlens_graphql_operations_total[$__rate_interval]))', '{{instance}}')], 'ops'),
      promTs(
        'API: subscriptions and WebSockets',
        { h: 6, w: 8, x: 16, y: 27 },
        [promTarget('sum by (instance) (flowlens_subscriptions_active)', 'subscriptions {{instance}}'), promTarget('sum by (instance) (flowlens_websocket_connections)', 'websockets {{instance}}', 'B')],
        'short',
      ),
      row('Notifications', 33),
      promTs(
        'Notifications queued, by channel',
        { h: 7, w: 12, x: 0, y: 34 },
        [promTarget('sum by (instance, channel) (flowlens_notifications_queued)', '{{instance}} {{channel}}')],
        'short',
        { description: 'Anomaly notifications waiting in the outbox of each channel (--notify-config); they grow while a receiver fails.' },
      ),
      promTs(
        'Notifications sent and failed, by channel',
        { h: 7, w: 12, x: 12, y: 34 },
        [
          promTarget('sum by (instance, channel) (rate(flowlens_notifications_sent_total[$__rate_interval]))', 'sent {{instance}} {{channel}}'),
          promTarget('sum by (instance, channel) (rate(flowlens_notifications_failed_total[$__rate_interval]))', 'failed {{instance}} {{channel}}', 'B'),
        ],
        'ops',
      ),
    ],
    [promVar('node', 'Node', 'label_values(flowlens_capture_packets_total, node)')],
    { time: { from: 'now-3h', to: 'now' }, refresh: '30s' },
  ),
);
if (differing.length) {
  console.error(`differ from deploy/grafana/dashboards.mjs (run it to rewrite them): ${differing.join(', ')}`);
  process.exit(1);
}
