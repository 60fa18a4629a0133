// deploy/kubernetes rendered by `kubectl kustomize` (Debian's kubectl), validated against
// Kubernetes's API schema (kubernetes-models), and checked against what the rest of the repository
// says: the images and the ports of docker-compose.yml, the flags and environment variables of the
// CLI (its own --help) and of the image's entrypoint, the user and
// capabilities of the Dockerfile, the secrets make-secrets.sh writes, probes on the health
// endpoints, and Prometheus's pod relabelling (deploy/prometheus/kubernetes-scrape.yml) giving the
// job names the alert rules select on. docker-compose.yml itself is checked by `docker compose
// config` (or Debian's docker-compose) and by the same flag and variable checks.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT } from './helpers/cli.js';
import {
  cliSurface,
  DEPLOY,
  entrypointFileSettings,
  knownSetting,
  parseYamlAll,
  readYaml,
  relabel,
  yamlUnavailable,
  type CliSurface,
  type RelabelConfig,
} from './helpers/deploy.js';
import { missingTool } from './helpers/netns.js';

const K8S = join(DEPLOY, 'kubernetes');

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string }; fieldRef?: { fieldPath: string }; configMapKeyRef?: { name: string; key: string } };
}
interface Probe {
  httpGet?: { path: string; port: string | number };
  tcpSocket?: { port: string | number };
}
interface Container {
  name: string;
  image: string;
  args?: string[];
  env?: EnvVar[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  ports?: { name: string; containerPort: number }[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: {
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    capabilities?: { add?: string[]; drop?: string[] };
  };
  volumeMounts?: { name: string; mountPath: string }[];
}
interface PodSpec {
  hostNetwork?: boolean;
  dnsPolicy?: string;
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; runAsGroup?: number };
  containers: Container[];
  volumes?: { name: string; secret?: { secretName: string; items?: { key: string; path: string }[] }; configMap?: { name: string } }[];
}
interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  data?: Record<string, string>;
  spec?: {
    selector?: { matchLabels?: Record<string, string> } & Record<string, string>;
    ports?: { name: string; port: number; targetPort: string | number }[];
    template?: { metadata: { labels: Record<string, string>; annotations?: Record<string, string> }; spec: PodSpec };
    volumeClaimTemplates?: unknown[];
  };
}
interface ComposeService {
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  cap_add?: string[];
  cap_drop?: string[];
  network_mode?: string;
}

const skip = (missingTool('kubectl') ? 'needs kubectl (apt-get install kubernetes-client)' : null) ?? yamlUnavailable();

function kustomize(dir: string) {
  return spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8' });
}

describe('deploy/kubernetes', { skip: skip ?? false, timeout: 60_000 }, () => {
  let dir = '';
  let objects: K8sObject[] = [];
  let compose: Record<string, ComposeService>;
  let serve: CliSurface;
  let capture: CliSurface;
  let fileSettings: Set<string>;

  const find = (kind: string, name: string) => {
    const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
    assert.ok(o, `no ${kind} ${name}`);
    return o;
  };
  const workloads = () => objects.filter((o) => ['Deployment', 'StatefulSet', 'DaemonSet'].includes(o.kind));
  const pod = (kind: string, name: string) => find(kind, name).spec?.template?.spec as PodSpec;
  const secret = () => {
    const s = objects.filter((o) => o.kind === 'Secret');
    assert.equal(s.length, 1);
    return s[0];
  };
  /** Every setting a container gets: its env and the data of the ConfigMaps it takes whole. */
  const settings = (c: Container) => {
    const names = (c.env ?? []).map((e) => e.name);
    for (const from of c.envFrom ?? []) {
      assert.ok(from.configMapRef, `${c.name}: envFrom other than a ConfigMap`);
      names.push(...Object.keys(find('ConfigMap', from.configMapRef.name).data ?? {}));
    }
    return names;
  };
  const envValue = (c: Container, name: string) => {
    const direct = c.env?.find((e) => e.name === name)?.value;
    if (direct !== undefined) return direct;
    for (const from of c.envFrom ?? []) {
      const v = find('ConfigMap', from.configMapRef?.name ?? '').data?.[name];
      if (v !== undefined) return v;
    }
    return undefined;
  };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'flowlens-k8s-'));
    cpSync(K8S, join(dir, 'kubernetes'), { recursive: true });
    rmSync(join(dir, 'kubernetes', 'secrets.env'), { force: true });
    const env = { ...process.env };
    delete env.FLOWLENS_TOKEN;
    const made = spawnSync('sh', [join(dir, 'kubernetes', 'make-secrets.sh')], { encoding: 'utf8', env });
    assert.equal(made.status, 0, made.stderr);
    const r = kustomize(join(dir, 'kubernetes'));
    assert.equal(r.status, 0, r.stderr);
    objects = parseYamlAll(r.stdout) as K8sObject[];
    compose = readYaml<{ services: Record<string, ComposeService> }>(join(REPO_ROOT, 'docker-compose.yml')).services;
    serve = cliSurface('serve');
    capture = cliSurface('capture');
    // Settings every command takes (the logger's) are listed by the top-level help.
    for (const name of cliSurface().env) {
      serve.env.add(name);
      capture.env.add(name);
    }
    fileSettings = entrypointFileSettings();
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('renders the namespace, QuestDB, NATS, the API and the capture DaemonSet, all in namespace flowlens', () => {
    const names = objects.map((o) => `${o.kind}/${o.metadata.name.replace(/-[a-z0-9]{10}$/, '')}`).sort();
    assert.deepEqual(names, [
      'ConfigMap/flowlens-capture',
      'ConfigMap/flowlens-config',
      'ConfigMap/nats-config',
      'DaemonSet/flowlens-capture',
      'Deployment/flowlens-api',
      'Deployment/nats',
      'Namespace/flowlens',
      'Secret/flowlens-secrets',
      'Service/flowlens-api',
      'Service/nats',
      'Service/questdb',
      'StatefulSet/questdb',
    ]);
    for (const o of objects) if (o.kind !== 'Namespace') assert.equal(o.metadata.namespace, 'flowlens', `${o.kind}/${o.metadata.name}`);
    assert.equal(find('StatefulSet', 'questdb').spec?.volumeClaimTemplates?.length, 1, 'QuestDB keeps its data on a volume');
  });

  it("validates against Kubernetes's API schema (kubernetes-models: the 1.27 OpenAPI definitions)", async () => {
    const groups: Record<string, Record<string, new (o: unknown) => { validate(): void }>> = {
      v1: (await import('kubernetes-models/v1')) as never,
      'apps/v1': (await import('kubernetes-models/apps/v1')) as never,
    };
    for (const o of objects) {
      const Model = groups[o.apiVersion]?.[o.kind];
      assert.ok(Model, `${o.apiVersion} ${o.kind}: no schema`);
      // kustomize wraps Secret data at 70 columns; the API server's base64 decoder skips the line breaks.
      const plain = o.kind === 'Secret' ? { ...o, data: Object.fromEntries(Object.entries(o.data ?? {}).map(([k, v]) => [k, v.replace(/\s/g, '')])) } : o;
      assert.doesNotThrow(() => new Model(plain).validate(), `${o.kind}/${o.metadata.name}`);
    }
    // A wrong type fails (the check can fail).
    const broken = structuredClone(find('DaemonSet', 'flowlens-capture'));
    (broken.spec?.template?.spec as unknown as Record<string, unknown>).hostNetwork = 'yes';
    assert.throws(() => new groups['apps/v1'].DaemonSet(broken).validate(), /hostNetwork must be boolean/);
  });

  it('make-secrets.sh writes three random tokens once, keeps them on a second run, and takes FLOWLENS_TOKEN', () => {
    const file = join(dir, 'kubernetes', 'secrets.env');
    const first = readFileSync(file, 'utf8');
    assert.match(first, /^api-token=[0-9a-f]{64}\nbus-token=[0-9a-f]{64}\nquestdb-password=[0-9a-f]{64}\n$/);
    const again = spawnSync('sh', [join(dir, 'kubernetes', 'make-secrets.sh')], { encoding: 'utf8' });
    assert.equal(again.status, 0);
    assert.equal(readFileSync(file, 'utf8'), first);
    const other = join(dir, 'other.env');
    const chosen = spawnSync('sh', [join(dir, 'kubernetes', 'make-secrets.sh'), other], {
      encoding: 'utf8',
      env: { ...process.env, FLOWLENS_TOKEN: 'chosen-token' },
    });
    assert.equal(chosen.status, 0, chosen.stderr);
    assert.match(readFileSync(other, 'utf8'), /^api-token=chosen-token\n/);
    // Without the file, kustomize refuses (nothing is applied with an empty or made-up secret).
    rmSync(file);
    const r = kustomize(join(dir, 'kubernetes'));
    writeFileSync(file, first);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /secrets\.env/);
    // The Secret's data are the file's values.
    const data = secret().data ?? {};
    assert.deepEqual(Object.keys(data).sort(), ['api-token', 'bus-token', 'questdb-password']);
    assert.equal(Buffer.from(data['api-token'], 'base64').toString(), /api-token=(\w+)/.exec(first)?.[1]);
  });

  it('runs the images docker-compose.yml runs', () => {
    const flowlensImage = compose.api.image;
    assert.equal(flowlensImage, 'flowlens:local');
    assert.equal(compose.capture.image, flowlensImage);
    assert.equal(pod('Deployment', 'flowlens-api').containers[0].image, flowlensImage);
    assert.equal(pod('DaemonSet', 'flowlens-capture').containers[0].image, flowlensImage);
    assert.equal(pod('StatefulSet', 'questdb').containers[0].image, compose.questdb.image);
    assert.equal(pod('Deployment', 'nats').containers[0].image, compose.nats.image);
  });

  it('gives flowlens only flags and environment variables the CLI and the entrypoint know', () => {
    const cases: [string, Container, CliSurface][] = [
      ['api', pod('Deployment', 'flowlens-api').containers[0], serve],
      ['capture', pod('DaemonSet', 'flowlens-capture').containers[0], capture],
    ];
    for (const [label, c, surface] of cases) {
      assert.equal(c.args?.[0], label === 'api' ? 'serve' : 'capture');
      for (const flag of (c.args ?? []).filter((a) => a.startsWith('--'))) assert.ok(surface.flags.has(flag.split('=')[0]), `${label}: unknown flag ${flag}`);
      const flowlensSettings = settings(c).filter((n) => n.startsWith('FLOWLENS_'));
      assert.ok(flowlensSettings.length >= 8, `${label}: ${flowlensSettings}`);
      for (const name of flowlensSettings) assert.ok(knownSetting(name, surface, fileSettings), `${label}: ${name} is no setting of flowlens ${c.args?.[0]}`);
      // The same store and bus as compose, and the same secrets from files.
      for (const name of ['FLOWLENS_QUESTDB', 'FLOWLENS_QUESTDB_PG', 'FLOWLENS_BUS_TOKEN_FILE'])
        assert.ok(settings(c).includes(name), `${label}: ${name} missing`);
    }
    for (const name of ['api', 'capture']) {
      const s = compose[name];
      const surface = name === 'api' ? serve : capture;
      for (const flag of (s.command ?? []).filter((a) => a.startsWith('--'))) assert.ok(surface.flags.has(flag), `compose ${name}: unknown flag ${flag}`);
      for (const env of Object.keys(s.environment ?? {}))
        assert.ok(knownSetting(env, surface, fileSettings), `compose ${name}: ${env} is no setting of flowlens`);
    }
  });

  it('a misspelt setting would be caught (the check can fail)', () => {
    assert.equal(knownSetting('FLOWLENS_QUESTDB_URL', serve, fileSettings), false);
    assert.equal(knownSetting('FLOWLENS_DB_FILE', serve, fileSettings), false, 'only the entrypoint’s file settings take _FILE');
    assert.equal(knownSetting('FLOWLENS_TOKEN_FILE', serve, fileSettings), true);
  });

  it('uses the ports of compose and the CLI, and names them in Services and probes', () => {
    const api = pod('Deployment', 'flowlens-api').containers[0];
    const port = Number(envValue(api, 'FLOWLENS_PORT'));
    assert.equal(port, Number(compose.api.environment?.FLOWLENS_PORT));
    assert.ok(compose.api.ports?.includes(`127.0.0.1:${port}:${port}`));
    assert.deepEqual(api.ports, [{ name: 'http', containerPort: port }]);
    assert.equal(envValue(api, 'FLOWLENS_HOST'), '0.0.0.0');
    const cap = pod('DaemonSet', 'flowlens-capture').containers[0];
    const metricsPort = Number(/:(\d+)$/.exec(envValue(cap, 'FLOWLENS_METRICS_LISTEN') ?? '')?.[1]);
    assert.equal(metricsPort, Number(/:(\d+)$/.exec(compose.capture.environment?.FLOWLENS_METRICS_LISTEN ?? '')?.[1]));
    assert.deepEqual(cap.ports, [{ name: 'metrics', containerPort: metricsPort }]);
    // Every Service selects the pods of one workload, on ports those pods have.
    for (const svc of objects.filter((o) => o.kind === 'Service')) {
      const sel = svc.spec?.selector ?? {};
      const matching = workloads().filter((w) => Object.entries(sel).every(([k, v]) => w.spec?.template?.metadata.labels[k] === v));
      assert.equal(matching.length, 1, `Service ${svc.metadata.name} selects ${matching.length} workloads`);
      const ports = matching[0].spec?.template?.spec.containers.flatMap((c) => c.ports ?? []) ?? [];
      for (const p of svc.spec?.ports ?? [])
        assert.ok(
          ports.some((x) => x.name === p.targetPort || x.containerPort === p.targetPort),
          `Service ${svc.metadata.name}: targetPort ${p.targetPort}`,
        );
    }
    assert.equal(find('Service', 'flowlens-api').spec?.ports?.[0].port, port);
    // The addresses in the ConfigMap are Services that exist, on their ports.
    const config = find('ConfigMap', 'flowlens-config').data ?? {};
    assert.match(config.FLOWLENS_QUESTDB, /addr=questdb\.flowlens\.svc:9000;/);
    assert.equal(config.FLOWLENS_BUS, 'nats://nats.flowlens.svc:4222');
    assert.ok(find('Service', 'questdb').spec?.ports?.some((p) => p.port === 9000) && find('Service', 'questdb').spec?.ports?.some((p) => p.port === 8812));
    assert.ok(find('Service', 'nats').spec?.ports?.some((p) => p.port === 4222));
  });

  it('probes every container; flowlens is ready on /health and alive while it listens', () => {
    const healthcheck = readFileSync(join(DEPLOY, 'docker', 'healthcheck.sh'), 'utf8');
    assert.match(healthcheck, /\/health"/, 'the image HEALTHCHECK asks /health too');
    for (const w of workloads()) {
      for (const c of w.spec?.template?.spec.containers ?? []) {
        assert.ok(c.readinessProbe && c.livenessProbe, `${w.metadata.name}/${c.name}: probes`);
        for (const p of [c.readinessProbe, c.livenessProbe]) {
          const port = p.httpGet?.port ?? p.tcpSocket?.port;
          assert.ok(
            (c.ports ?? []).some((x) => x.name === port || x.containerPort === port),
            `${w.metadata.name}/${c.name}: probe port ${port}`,
          );
        }
      }
    }
    for (const [kind, name] of [
      ['Deployment', 'flowlens-api'],
      ['DaemonSet', 'flowlens-capture'],
    ]) {
      const c = pod(kind, name).containers[0];
      assert.equal(c.readinessProbe?.httpGet?.path, '/health', `${name}: readiness`);
      assert.ok(c.livenessProbe?.tcpSocket, `${name}: a store outage must not restart it (liveness on the socket)`);
    }
  });

  it('sets requests and limits on every container', () => {
    for (const w of workloads()) {
      for (const c of w.spec?.template?.spec.containers ?? []) {
        assert.ok(c.resources?.requests?.cpu && c.resources.requests.memory, `${w.metadata.name}/${c.name}: requests`);
        assert.ok(c.resources.limits?.memory, `${w.metadata.name}/${c.name}: memory limit`);
      }
    }
  });

  it('captures on the host network with NET_RAW and NET_ADMIN only, as the image user, one node name per host', () => {
    const dockerfile = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8');
    const uid = Number(/useradd --system --uid (\d+)/.exec(dockerfile)?.[1]);
    assert.match(dockerfile, /setcap cap_net_raw,cap_net_admin\+eip/);
    const spec = pod('DaemonSet', 'flowlens-capture');
    assert.equal(spec.hostNetwork, true);
    assert.equal(spec.dnsPolicy, 'ClusterFirstWithHostNet');
    assert.deepEqual(spec.securityContext, { ...spec.securityContext, runAsNonRoot: true, runAsUser: uid, runAsGroup: uid });
    const c = spec.containers[0];
    assert.deepEqual(c.securityContext?.capabilities?.add?.slice().sort(), ['NET_ADMIN', 'NET_RAW']);
    assert.deepEqual(c.securityContext?.capabilities?.drop, ['ALL']);
    // File capabilities are ignored under no_new_privs, which allowPrivilegeEscalation: false sets.
    assert.equal(c.securityContext?.allowPrivilegeEscalation, true);
    assert.equal(c.securityContext?.readOnlyRootFilesystem, true);
    assert.deepEqual(compose.capture.cap_add?.slice().sort(), ['NET_ADMIN', 'NET_RAW']);
    assert.equal(compose.capture.network_mode, 'host');
    assert.deepEqual(
      c.env?.find((e) => e.name === 'FLOWLENS_NODE'),
      { name: 'FLOWLENS_NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
    );
    const api = pod('Deployment', 'flowlens-api');
    assert.equal(api.hostNetwork, undefined);
    assert.equal(api.securityContext?.runAsUser, uid);
    assert.deepEqual(api.containers[0].securityContext, { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
  });

  it('takes the tokens from the Secret, as files where flowlens reads them', () => {
    const s = secret();
    const keys = new Set(Object.keys(s.data ?? {}));
    for (const w of workloads()) {
      const spec = w.spec?.template?.spec as PodSpec;
      for (const v of spec.volumes ?? []) {
        if (v.secret) {
          assert.equal(v.secret.secretName, s.metadata.name, `${w.metadata.name}: volume ${v.name}`);
          for (const item of v.secret.items ?? []) assert.ok(keys.has(item.key), `${w.metadata.name}: no key ${item.key}`);
        }
        if (v.configMap) find('ConfigMap', v.configMap.name);
      }
      for (const c of spec.containers) {
        for (const e of c.env ?? []) {
          const ref = e.valueFrom?.secretKeyRef;
          if (ref) {
            assert.equal(ref.name, s.metadata.name, `${w.metadata.name}/${c.name}: ${e.name}`);
            assert.ok(keys.has(ref.key), `${w.metadata.name}/${c.name}: ${e.name} key ${ref.key}`);
          }
          // A FLOWLENS_X_FILE path is a file of a mounted Secret.
          if (/^FLOWLENS_\w+_FILE$/.test(e.name) && e.value) {
            const mount = c.volumeMounts?.find((m) => e.value?.startsWith(`${m.mountPath}/`));
            assert.ok(mount, `${c.name}: ${e.name}=${e.value} is on no volume`);
            const vol = spec.volumes?.find((v) => v.name === mount.name);
            assert.ok(
              vol?.secret?.items?.some((i) => e.value === `${mount.mountPath}/${i.path}`),
              `${c.name}: ${e.value} is no file of the Secret`,
            );
          }
          // $(VAR) references name variables defined before them.
          for (const m of (e.value ?? '').matchAll(/\$\((\w+)\)/g)) {
            const at = c.env?.findIndex((x) => x.name === m[1]) ?? -1;
            assert.ok(at >= 0 && at < (c.env?.indexOf(e) ?? 0), `${c.name}: ${e.name} uses $(${m[1]}) before it is defined`);
          }
        }
      }
    }
    // The metrics token is the API token, which Prometheus presents (kubernetes-scrape.yml).
    const cap = pod('DaemonSet', 'flowlens-capture').containers[0];
    assert.equal(cap.env?.find((e) => e.name === 'FLOWLENS_METRICS_TOKEN_FILE')?.value, '/run/flowlens/api-token');
    assert.match(find('ConfigMap', 'nats-config').data?.['nats.conf'] ?? '', /token: \$BUS_TOKEN/);
    assert.equal(pod('Deployment', 'nats').containers[0].env?.find((e) => e.name === 'BUS_TOKEN')?.valueFrom?.secretKeyRef?.key, 'bus-token');
  });

  it("Prometheus's pod relabelling keeps the annotated flowlens pods, as the jobs the alert rules select", () => {
    const scrape = readYaml<{ scrape_configs: { job_name: string; relabel_configs: RelabelConfig[]; authorization: { credentials_file: string } }[] }>(
      join(DEPLOY, 'prometheus', 'kubernetes-scrape.yml'),
    );
    const job = scrape.scrape_configs[0];
    const alerts = readFileSync(join(DEPLOY, 'prometheus', 'flowlens-alerts.yml'), 'utf8');
    const sanitize = (s: string) => s.replace(/[^a-zA-Z0-9_]/g, '_');
    const results = new Map<string, Record<string, string> | null>();
    for (const w of workloads()) {
      const t = w.spec?.template;
      assert.ok(t);
      for (const c of t.spec.containers) {
        for (const p of c.ports ?? []) {
          const labels: Record<string, string> = {
            __address__: `10.0.0.7:${p.containerPort}`,
            __metrics_path__: '/metrics',
            job: job.job_name,
            __meta_kubernetes_pod_name: `${w.metadata.name}-x`,
            __meta_kubernetes_pod_node_name: 'node-a',
          };
          for (const [k, v] of Object.entries(t.metadata.annotations ?? {})) labels[`__meta_kubernetes_pod_annotation_${sanitize(k)}`] = v;
          for (const [k, v] of Object.entries(t.metadata.labels)) labels[`__meta_kubernetes_pod_label_${sanitize(k)}`] = v;
          const out = relabel(labels, job.relabel_configs);
          // Prometheus makes one target per container port; the annotation's port rewrites each.
          if (out) results.set(`${w.metadata.name}:${p.name}`, out);
        }
      }
    }
    assert.deepEqual([...results.keys()].sort(), ['flowlens-api:http', 'flowlens-capture:metrics']);
    const api = results.get('flowlens-api:http');
    const cap = results.get('flowlens-capture:metrics');
    assert.equal(api?.job, 'flowlens-api');
    assert.equal(api?.__address__, '10.0.0.7:4000');
    assert.equal(cap?.job, 'flowlens-capture');
    assert.equal(cap?.__address__, '10.0.0.7:9464');
    assert.equal(cap?.__metrics_path__, '/metrics');
    assert.equal(cap?.k8s_node, 'node-a');
    assert.match(alerts, /job="flowlens-capture"/);
    assert.match(alerts, /job="flowlens-api"/);
  });

  it('kubernetes-scrape.yml is valid Prometheus configuration apart from its Kubernetes discovery', {
    skip: missingTool('promtool') ? 'needs promtool' : false,
  }, () => {
    // Debian's Prometheus is built without Kubernetes service discovery; the rest is checked with a static target.
    const text = readFileSync(join(DEPLOY, 'prometheus', 'kubernetes-scrape.yml'), 'utf8');
    const sd = / {4}kubernetes_sd_configs:\n {6}- role: pod\n {8}namespaces:\n {10}names: \[flowlens\]\n/;
    assert.match(text, sd);
    const copy = join(dir, 'kubernetes-scrape.yml');
    writeFileSync(copy, text.replace(sd, '    static_configs:\n      - targets: ["10.0.0.7:4000"]\n'));
    writeFileSync(join(dir, 'flowlens-alerts.yml'), readFileSync(join(DEPLOY, 'prometheus', 'flowlens-alerts.yml')));
    const r = spawnSync('promtool', ['check', 'config', '--syntax-only', copy], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });
});

describe('docker-compose.yml', { skip: yamlUnavailable() ?? false }, () => {
  it('is valid for docker compose (the plugin, or Debian’s docker-compose)', (t) => {
    const plugin = spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' });
    const [cmd, args] = plugin.status === 0 ? ['docker', ['compose', 'config', '-q']] : ['docker-compose', ['config', '-q']];
    if (cmd === 'docker-compose' && missingTool('docker-compose')) {
      t.skip('needs docker compose or docker-compose (apt-get install docker-compose)');
      return;
    }
    const r = spawnSync(cmd, args as string[], { cwd: REPO_ROOT, encoding: 'utf8', env: { ...process.env, FLOWLENS_IFACE: 'eth0' } });
    assert.equal(r.status, 0, `${cmd} ${(args as string[]).join(' ')}: ${r.stderr}`);
  });

  it('publishes every port on loopback only, and mounts only files of deploy/ from the checkout', () => {
    const c = readYaml<{ services: Record<string, ComposeService & { volumes?: string[] }> }>(join(REPO_ROOT, 'docker-compose.yml'));
    for (const [name, s] of Object.entries(c.services)) {
      for (const p of s.ports ?? []) assert.match(p, /^127\.0\.0\.1:\d+:\d+$/, `${name}: ${p}`);
      for (const v of s.volumes ?? []) {
        const source = v.split(':')[0];
        if (source.startsWith('.')) {
          assert.match(source, /^\.\/deploy\//, `${name}: ${v}`);
          assert.match(v, /:ro$/, `${name}: ${v} is mounted writable`);
        }
      }
    }
  });
});
