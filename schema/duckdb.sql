-- flowlens DuckDB schema. Loaded by src/store/duckdb.ts at init; every statement is idempotent.
-- The CREATE TABLE and ADD COLUMN statements are generated from src/records (`npm run schema`).
-- Times are TIMESTAMP (microsecond precision, UTC by convention); counters are unsigned 64-bit.
-- flows/hosts/traffic are append-only and written with the Appender, so they carry no primary key:
-- an index would be maintained on every appended row and slow imports down for no read benefit
-- (reads scan by time range, which DuckDB's zone maps on ts already prune).

-- One row per flow segment (see FLOW in src/records/flow.ts, which also describes each column):
-- summing the rows of a flow_id gives the whole flow.
CREATE TABLE IF NOT EXISTS flows (
  ts                   TIMESTAMP NOT NULL,
  flow_id              VARCHAR   NOT NULL,
  node                 VARCHAR   NOT NULL,
  iface                VARCHAR   NOT NULL,
  first_seen           TIMESTAMP NOT NULL,
  last_seen            TIMESTAMP NOT NULL,
  transport            VARCHAR   NOT NULL,
  ip_proto             UTINYINT  NOT NULL,
  client_ip            VARCHAR   NOT NULL,
  client_port          USMALLINT NOT NULL,
  server_ip            VARCHAR   NOT NULL,
  server_port          USMALLINT NOT NULL,
  client_packets       UBIGINT   NOT NULL,
  client_bytes         UBIGINT   NOT NULL,
  server_packets       UBIGINT   NOT NULL,
  server_bytes         UBIGINT   NOT NULL,
  client_tcp_flags     UTINYINT  NOT NULL,
  server_tcp_flags     UTINYINT  NOT NULL,
  tcp_state            VARCHAR   NOT NULL,
  final                BOOLEAN   NOT NULL,
  app                  VARCHAR   NOT NULL,
  server_name          VARCHAR   NOT NULL,
  confidence           VARCHAR   NOT NULL DEFAULT '',
  first_packets        VARCHAR   NOT NULL DEFAULT '',
  app_info             VARCHAR   NOT NULL DEFAULT '',
  duration             UBIGINT   NOT NULL DEFAULT 0,
  end_reason           VARCHAR   NOT NULL DEFAULT '',
  source               VARCHAR   NOT NULL DEFAULT '',
  community_id         VARCHAR   NOT NULL DEFAULT '',
  originator           VARCHAR   NOT NULL DEFAULT '',
  conn_state           VARCHAR   NOT NULL DEFAULT '',
  history              VARCHAR   NOT NULL DEFAULT '',
  client_payload_bytes UBIGINT   NOT NULL DEFAULT 0,
  server_payload_bytes UBIGINT   NOT NULL DEFAULT 0,
  client_ip_bytes      UBIGINT   NOT NULL DEFAULT 0,
  server_ip_bytes      UBIGINT   NOT NULL DEFAULT 0,
  missed_bytes         UBIGINT   NOT NULL DEFAULT 0,
  zeek_duration        UBIGINT   NOT NULL DEFAULT 0,
  icmp_type            UTINYINT  NOT NULL DEFAULT 0,
  icmp_code            UTINYINT  NOT NULL DEFAULT 0,
  client_country       VARCHAR   NOT NULL DEFAULT '',
  server_country       VARCHAR   NOT NULL DEFAULT '',
  client_asn           UBIGINT   NOT NULL DEFAULT 0,
  server_asn           UBIGINT   NOT NULL DEFAULT 0,
  client_as_org        VARCHAR   NOT NULL DEFAULT '',
  server_as_org        VARCHAR   NOT NULL DEFAULT '',
  client_network       VARCHAR   NOT NULL DEFAULT '',
  server_network       VARCHAR   NOT NULL DEFAULT '',
  risks                VARCHAR   NOT NULL DEFAULT '',
  predicted_category   VARCHAR   NOT NULL DEFAULT '',
  predicted_app        VARCHAR   NOT NULL DEFAULT '',
  predicted_confidence UTINYINT  NOT NULL DEFAULT 0,
  tunnel_parents       VARCHAR   NOT NULL DEFAULT '',
  zeek_splits          VARCHAR   NOT NULL DEFAULT ''
);
-- Files created before the DPI columns: add them (at the end, where the appender expects them).
ALTER TABLE flows ADD COLUMN IF NOT EXISTS confidence VARCHAR DEFAULT '';
ALTER TABLE flows ADD COLUMN IF NOT EXISTS first_packets VARCHAR DEFAULT '';
ALTER TABLE flows ADD COLUMN IF NOT EXISTS app_info VARCHAR DEFAULT '';

-- Per host per aggregation interval (see HostRecord).
CREATE TABLE IF NOT EXISTS hosts (
  ts               TIMESTAMP NOT NULL,
  node             VARCHAR   NOT NULL,
  ip               VARCHAR   NOT NULL,
  bytes_sent       UBIGINT   NOT NULL,
  bytes_received   UBIGINT   NOT NULL,
  packets_sent     UBIGINT   NOT NULL,
  packets_received UBIGINT   NOT NULL,
  flows_initiated  UBIGINT   NOT NULL,
  flows_received   UBIGINT   NOT NULL,
  peers            UBIGINT   NOT NULL,
  source           VARCHAR   NOT NULL DEFAULT '',
  country          VARCHAR   NOT NULL DEFAULT '',
  asn              UBIGINT   NOT NULL DEFAULT 0,
  as_org           VARCHAR   NOT NULL DEFAULT '',
  network          VARCHAR   NOT NULL DEFAULT ''
);

-- Traffic totals per aggregation interval (see TrafficRecord).
CREATE TABLE IF NOT EXISTS traffic (
  ts      TIMESTAMP NOT NULL,
  node    VARCHAR   NOT NULL,
  bytes   UBIGINT   NOT NULL,
  packets UBIGINT   NOT NULL,
  flows   UBIGINT   NOT NULL,
  source  VARCHAR   NOT NULL DEFAULT ''
);

-- Anomalies as of their latest update: every update is written again with the same anomaly_id
-- and INSERT OR REPLACE keeps only the newest version.
CREATE TABLE IF NOT EXISTS anomalies (
  ts             TIMESTAMP NOT NULL,
  anomaly_id     VARCHAR   NOT NULL,
  node           VARCHAR   NOT NULL,
  kind           VARCHAR   NOT NULL,
  severity       VARCHAR   NOT NULL,
  source         VARCHAR   NOT NULL,
  target_ip      VARCHAR   NOT NULL,
  target_port    USMALLINT NOT NULL,
  started_at     TIMESTAMP NOT NULL,
  last_seen      TIMESTAMP NOT NULL,
  state          VARCHAR   NOT NULL,
  packets        UBIGINT   NOT NULL,
  bytes          UBIGINT   NOT NULL,
  evidence       VARCHAR   NOT NULL,
  summary        VARCHAR   NOT NULL,
  evidence_flows VARCHAR   NOT NULL DEFAULT '',
  PRIMARY KEY (anomaly_id)
);
ALTER TABLE flows ADD COLUMN IF NOT EXISTS duration UBIGINT DEFAULT 0;
ALTER TABLE flows ADD COLUMN IF NOT EXISTS end_reason VARCHAR DEFAULT '';
ALTER TABLE flows ADD COLUMN IF NOT EXISTS source VARCHAR DEFAULT '';
ALTER TABLE hosts ADD COLUMN IF NOT EXISTS source VARCHAR DEFAULT '';
ALTER TABLE traffic ADD COLUMN IF NOT EXISTS source VARCHAR DEFAULT '';
ALTER TABLE flows ADD COLUMN IF NOT EXISTS community_id VARCHAR DEFAULT '';
ALTER TABLE flows ADD COLUMN IF NOT EXISTS originator VARCHAR DEFAULT '';
ALTER TABLE flows ADD COLUMN IF NOT EXISTS conn_state VARCHAR DEFAULT '';
ALTER TABLE flows ADD COLUMN IF NOT EXISTS history VARCHAR DEFAULT '';
ALTER TABLE flows ADD COLUMN IF NOT EXISTS client_payload_bytes UBIGINT DEFAULT 0;
ALTER TABLE flows ADD COLUMN IF NOT EXISTS server_payload_bytes UBIGINT DEFAULT 0;
ALTER TABLE flows ADD COLUMN IF NOT EXISTS client_ip_bytes UBIGINT DEFAULT 0;
ALTER TABLE flows ADD COLUMN IF NOT EXISTS server_ip_bytes UBIGINT DEFAULT 0;
ALTER TABLE flows ADD COLUMN IF NOT EXISTS missed_bytes UBIGINT DEFAULT 0;
ALTER TABLE flows ADD COLUMN IF NOT EXISTS zeek_duration UBIGINT DEFAULT 0;
ALTER TABLE flows ADD COLUMN IF NOT EXISTS icmp_type UTINYINT DEFAULT 0;
ALTER TABLE flows ADD COLUMN IF NOT EXISTS icmp_code UTINYINT DEFAULT 0;
ALTER TABLE flows ADD COLUMN IF NOT EXISTS risks VARCHAR DEFAULT '';
ALTER TABLE flows ADD COLUMN IF NOT EXISTS client_country VARCHAR DEFAULT '';
ALTER TABLE flows ADD COLUMN IF NOT EXISTS server_country VARCHAR DEFAULT '';
ALTER TABLE flows ADD COLUMN IF NOT EXISTS client_asn UBIGINT DEFAULT 0;
ALTER TABLE flows ADD COLUMN IF NOT EXISTS server_asn UBIGINT DEFAULT 0;
ALTER TABLE flows ADD COLUMN IF NOT EXISTS client_as_org VARCHAR DEFAULT '';
ALTER TABLE flows ADD COLUMN IF NOT EXISTS server_as_org VARCHAR DEFAULT '';
ALTER TABLE flows ADD COLUMN IF NOT EXISTS client_network VARCHAR DEFAULT '';
ALTER TABLE flows ADD COLUMN IF NOT EXISTS server_network VARCHAR DEFAULT '';
ALTER TABLE flows ADD COLUMN IF NOT EXISTS tunnel_parents VARCHAR DEFAULT '';
ALTER TABLE flows ADD COLUMN IF NOT EXISTS zeek_splits VARCHAR DEFAULT '';
ALTER TABLE hosts ADD COLUMN IF NOT EXISTS country VARCHAR DEFAULT '';
ALTER TABLE hosts ADD COLUMN IF NOT EXISTS asn UBIGINT DEFAULT 0;
ALTER TABLE hosts ADD COLUMN IF NOT EXISTS as_org VARCHAR DEFAULT '';
ALTER TABLE hosts ADD COLUMN IF NOT EXISTS network VARCHAR DEFAULT '';
ALTER TABLE anomalies ADD COLUMN IF NOT EXISTS evidence_flows VARCHAR DEFAULT '';
ALTER TABLE flows ADD COLUMN IF NOT EXISTS predicted_category VARCHAR DEFAULT '';
ALTER TABLE flows ADD COLUMN IF NOT EXISTS predicted_app VARCHAR DEFAULT '';
ALTER TABLE flows ADD COLUMN IF NOT EXISTS predicted_confidence UTINYINT DEFAULT 0;
