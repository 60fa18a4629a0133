-- flowlens QuestDB schema (QuestDB 8.2.2 or later). The dedup keys below include VARCHAR columns,
-- which QuestDB accepts as UPSERT KEYS only since 8.1.1 (questdb/questdb#4915; 8.1.0 and before
-- refuse them: "deduplicate key column can only be fixed size column"), and the reads use
-- SAMPLE BY ... FROM/TO, new in 8.1.0. Releases before 8.2.2 are not enough all the same: 8.1.1 can
-- crash in last()/last_not_null() over VARCHAR (fixed by questdb/questdb#4947) and on inserts into
-- tables with VARCHAR dedup keys (#5009, fixed by #5030); 8.2.0 and 8.2.1 answer "undefined bind
-- variable" to time-range GROUP BY queries over the PostgreSQL wire protocol (#5325, closed after
-- 8.2.1); and retention
-- (TTL, see below) came in 8.2.2.
-- Applied by src/store/questdb.ts at init over the PostgreSQL wire protocol, one statement at a
-- time (statements end with ';' at the end of a line); every statement is idempotent, so it runs on
-- every start. Retention (TTL) is not here: it comes from the retentionDays option and is applied
-- with ALTER TABLE ... SET TTL after these statements (TTL came with questdb/questdb#5234, after
-- 8.2.1; only run when retentionDays > 0).
--
-- The CREATE TABLE, DEDUP ENABLE and ADD COLUMN statements are generated from the record definitions
-- in src/records (`npm run schema`; test/records-schema.test.ts fails when they disagree).
--
-- Conventions:
--  * Every table has one designated timestamp `ts` (microseconds, UTC), is partitioned by day (so
--    time-range predicates prune partitions and TTL drops whole days) and is a WAL table (needed for
--    deduplication and concurrent writers).
--  * DEDUP UPSERT KEYS make writes idempotent: the outage spool replays whole batches, and a batch
--    that was partly applied before the failure must not leave duplicates; a row whose keys match
--    replaces the earlier one, also within one batch, in write order (docs/concept/deduplication.md).
--    The keys are the designated timestamp (required) and SYMBOL or VARCHAR columns (VARCHAR keys:
--    8.1.1 or later, docs/reference/sql/create-table.md#deduplication).
--  * SYMBOL for low-cardinality repeated strings (node, iface, transport, tcp_state, app, kind, ...):
--    dictionary-encoded, fast to filter and group by. VARCHAR for IP addresses, ids and names:
--    flowlens sees IPv6 as well as IPv4 (QuestDB's IPV4 type cannot hold both) and the set of remote
--    addresses is unbounded, which QuestDB's docs advise against storing as SYMBOL.
--  * Empty symbols and empty optional texts (server name, DPI details, anomaly texts) are not written
--    over ILP, so the column stays NULL; readers map NULL back to '' and take a flow's latest
--    non-empty app/server name with last_not_null().
--  * Counters are LONG (ILP integers, 64-bit); ports, protocol numbers and TCP flag masks are INT,
--    which QuestDB casts ILP integers into (docs/ingestion/ilp/columnset-types.md).

CREATE TABLE IF NOT EXISTS flows (
  ts                   TIMESTAMP,
  flow_id              VARCHAR,
  node                 SYMBOL,
  iface                SYMBOL,
  first_seen           TIMESTAMP,
  last_seen            TIMESTAMP,
  transport            SYMBOL,
  ip_proto             INT,
  client_ip            VARCHAR,
  client_port          INT,
  server_ip            VARCHAR,
  server_port          INT,
  client_packets       LONG,
  client_bytes         LONG,
  server_packets       LONG,
  server_bytes         LONG,
  client_tcp_flags     INT,
  server_tcp_flags     INT,
  tcp_state            SYMBOL,
  final                BOOLEAN,
  app                  SYMBOL,
  server_name          VARCHAR,
  confidence           SYMBOL,
  first_packets        VARCHAR,
  app_info             VARCHAR,
  duration             LONG,
  end_reason           SYMBOL,
  source               SYMBOL,
  community_id         VARCHAR,
  originator           SYMBOL,
  conn_state           SYMBOL,
  history              VARCHAR,
  client_payload_bytes LONG,
  server_payload_bytes LONG,
  client_ip_bytes      LONG,
  server_ip_bytes      LONG,
  missed_bytes         LONG,
  zeek_duration        LONG,
  icmp_type            INT,
  icmp_code            INT,
  client_country       SYMBOL,
  server_country       SYMBOL,
  client_asn           LONG,
  server_asn           LONG,
  client_as_org        SYMBOL,
  server_as_org        SYMBOL,
  client_network       SYMBOL,
  server_network       SYMBOL,
  risks                VARCHAR,
  predicted_category   SYMBOL,
  predicted_app        SYMBOL,
  predicted_confidence INT,
  tunnel_parents       VARCHAR,
  zeek_splits          VARCHAR
) TIMESTAMP(ts) PARTITION BY DAY WAL
DEDUP UPSERT KEYS(ts, flow_id);

-- Per host per aggregation interval.
CREATE TABLE IF NOT EXISTS hosts (
  ts               TIMESTAMP,
  node             SYMBOL,
  ip               VARCHAR,
  bytes_sent       LONG,
  bytes_received   LONG,
  packets_sent     LONG,
  packets_received LONG,
  flows_initiated  LONG,
  flows_received   LONG,
  peers            LONG,
  source           SYMBOL,
  country          SYMBOL,
  asn              LONG,
  as_org           SYMBOL,
  network          SYMBOL
) TIMESTAMP(ts) PARTITION BY DAY WAL
DEDUP UPSERT KEYS(ts, node, ip, source);

-- Traffic totals per aggregation interval.
CREATE TABLE IF NOT EXISTS traffic (
  ts      TIMESTAMP,
  node    SYMBOL,
  bytes   LONG,
  packets LONG,
  flows   LONG,
  source  SYMBOL
) TIMESTAMP(ts) PARTITION BY DAY WAL
DEDUP UPSERT KEYS(ts, node, source);

-- Anomalies: every update is written again with ts = started_at and the same anomaly_id, and
-- DEDUP UPSERT replaces the earlier version, so the table holds one row per anomaly, its latest.
CREATE TABLE IF NOT EXISTS anomalies (
  ts             TIMESTAMP,
  anomaly_id     VARCHAR,
  node           SYMBOL,
  kind           SYMBOL,
  severity       SYMBOL,
  source         VARCHAR,
  target_ip      VARCHAR,
  target_port    INT,
  started_at     TIMESTAMP,
  last_seen      TIMESTAMP,
  state          SYMBOL,
  packets        LONG,
  bytes          LONG,
  evidence       VARCHAR,
  summary        VARCHAR,
  evidence_flows VARCHAR
) TIMESTAMP(ts) PARTITION BY DAY WAL
DEDUP UPSERT KEYS(ts, anomaly_id);

-- Re-assert deduplication on every start: a table created by an older flowlens, or by hand, without
-- it would otherwise take duplicates from a spool replay. Enabling it again is not an error and
-- keeps the same keys (docs/reference/sql/alter-table-enable-deduplication.md).
ALTER TABLE flows DEDUP ENABLE UPSERT KEYS(ts, flow_id);
ALTER TABLE hosts DEDUP ENABLE UPSERT KEYS(ts, node, ip, source);
ALTER TABLE traffic DEDUP ENABLE UPSERT KEYS(ts, node, source);
ALTER TABLE anomalies DEDUP ENABLE UPSERT KEYS(ts, anomaly_id);

-- Migrations. Columns added after a release go here, never into the CREATE TABLE statements alone
-- (those do nothing on an existing table), as
--   ALTER TABLE <table> ADD COLUMN IF NOT EXISTS <column> <type>;
-- (one line each) and also into the CREATE TABLE above, so that new and migrated databases end up
-- alike. Only additive changes: old rows read the new column as NULL.
-- src/store/questdb.ts does not send these lines as they are: it looks the column up in
-- table_columns('<table>') and sends a plain ALTER TABLE <table> ADD COLUMN <column> <type> only when
-- it is missing. IF NOT EXISTS is not in QuestDB 8.1 (it came with questdb/questdb#5080), and on a
-- WAL table re-running it for a column that exists fails with "statements containing multiple
-- transactions ... are currently not supported for WAL tables" (questdb/questdb#5369), which would
-- be every start, as the tables above already have these columns.

-- DPI (issue 7): how app was found, the first frame sizes ('+74 -74 +66'), protocol details (JSON).
ALTER TABLE flows ADD COLUMN IF NOT EXISTS confidence SYMBOL;
ALTER TABLE flows ADD COLUMN IF NOT EXISTS first_packets VARCHAR;
ALTER TABLE flows ADD COLUMN IF NOT EXISTS app_info VARCHAR;
ALTER TABLE flows ADD COLUMN IF NOT EXISTS duration LONG;
ALTER TABLE flows ADD COLUMN IF NOT EXISTS end_reason SYMBOL;
ALTER TABLE flows ADD COLUMN IF NOT EXISTS source SYMBOL;
ALTER TABLE hosts ADD COLUMN IF NOT EXISTS source SYMBOL;
ALTER TABLE traffic ADD COLUMN IF NOT EXISTS source SYMBOL;
ALTER TABLE flows ADD COLUMN IF NOT EXISTS community_id VARCHAR;
ALTER TABLE flows ADD COLUMN IF NOT EXISTS originator SYMBOL;
ALTER TABLE flows ADD COLUMN IF NOT EXISTS conn_state SYMBOL;
ALTER TABLE flows ADD COLUMN IF NOT EXISTS history VARCHAR;
ALTER TABLE flows ADD COLUMN IF NOT EXISTS client_payload_bytes LONG;
ALTER TABLE flows ADD COLUMN IF NOT EXISTS server_payload_bytes LONG;
ALTER TABLE flows ADD COLUMN IF NOT EXISTS client_ip_bytes LONG;
ALTER TABLE flows ADD COLUMN IF NOT EXISTS server_ip_bytes LONG;
ALTER TABLE flows ADD COLUMN IF NOT EXISTS missed_bytes LONG;
ALTER TABLE flows ADD COLUMN IF NOT EXISTS zeek_duration LONG;
ALTER TABLE flows ADD COLUMN IF NOT EXISTS icmp_type INT;
ALTER TABLE flows ADD COLUMN IF NOT EXISTS icmp_code INT;
ALTER TABLE flows ADD COLUMN IF NOT EXISTS risks VARCHAR;
ALTER TABLE flows ADD COLUMN IF NOT EXISTS client_country SYMBOL;
ALTER TABLE flows ADD COLUMN IF NOT EXISTS server_country SYMBOL;
ALTER TABLE flows ADD COLUMN IF NOT EXISTS client_asn LONG;
ALTER TABLE flows ADD COLUMN IF NOT EXISTS server_asn LONG;
ALTER TABLE flows ADD COLUMN IF NOT EXISTS client_as_org SYMBOL;
ALTER TABLE flows ADD COLUMN IF NOT EXISTS server_as_org SYMBOL;
ALTER TABLE flows ADD COLUMN IF NOT EXISTS client_network SYMBOL;
ALTER TABLE flows ADD COLUMN IF NOT EXISTS server_network SYMBOL;
ALTER TABLE flows ADD COLUMN IF NOT EXISTS tunnel_parents VARCHAR;
ALTER TABLE flows ADD COLUMN IF NOT EXISTS zeek_splits VARCHAR;
ALTER TABLE hosts ADD COLUMN IF NOT EXISTS country SYMBOL;
ALTER TABLE hosts ADD COLUMN IF NOT EXISTS asn LONG;
ALTER TABLE hosts ADD COLUMN IF NOT EXISTS as_org SYMBOL;
ALTER TABLE hosts ADD COLUMN IF NOT EXISTS network SYMBOL;
ALTER TABLE anomalies ADD COLUMN IF NOT EXISTS evidence_flows VARCHAR;
ALTER TABLE flows ADD COLUMN IF NOT EXISTS predicted_category SYMBOL;
ALTER TABLE flows ADD COLUMN IF NOT EXISTS predicted_app SYMBOL;
ALTER TABLE flows ADD COLUMN IF NOT EXISTS predicted_confidence INT;
