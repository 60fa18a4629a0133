/**
 * Explore's Sankey and stacked area in a real browser (Debian's Chromium through playwright-core)
 * against a real `flowlens serve` holding a capture imported with `flowlens import`: the Sankey of
 * client → server has the nodes and bands of the API's explore answer with heights proportional to
 * the bytes, shows a value on hover, filters on a click (a chip and the narrowed answer), reloads
 * into the same view, and is offered only for a pair; the stacked area draws the top items' series.
 * Both readable in the light and the dark theme.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { formatBytes } from '../web/src/lib/format.js';
import { sampleCapture } from './api-helpers.js';
import { chromiumMissing, screenshot, type BrowserSession, type ServeProcess } from './helpers/browser.js';
import { runCli } from './helpers/cli.js';
import { startWebSession, type WebSession } from './helpers/web-session.js';

const skip = chromiumMissing();

interface Item {
  keys: string[];
  bytes: number;
  packets: number;
  flows: number;
  series: { bytes: number }[];
}

interface SvgNode {
  side: number;
  key: string;
  value: number;
  h: number;
}
interface SvgLink {
  source: string;
  target: string;
  value: number;
}

/** The Sankey as drawn: its nodes (with their bar heights) and its bands. */
async function drawn(page: Page): Promise<{ nodes: SvgNode[]; links: SvgLink[] }> {
  return page.evaluate(() => {
    const svg = document.querySelector('[data-testid=sankey] svg')!;
    const nodes = [...svg.querySelectorAll<SVGGElement>('g.node')].map((g) => ({
      side: Number(g.dataset.side),
      key: g.dataset.key ?? '',
      value: Number(g.dataset.value),
      h: Number(g.querySelector('rect')!.getAttribute('height')),
    }));
    const links = [...svg.querySelectorAll<SVGPathElement>('path.link')].map((p) => ({
      source: p.dataset.source ?? '',
      target: p.dataset.target ?? '',
      value: Number(p.dataset.value),
    }));
    return { nodes, links };
  });
}

const byKey = <T extends { key?: string; source?: string; target?: string }>(a: T, b: T) =>
  JSON.stringify([a.key, a.source, a.target]) < JSON.stringify([b.key, b.source, b.target]) ? -1 : 1;

/** What the Sankey should show for an explore answer: per-side sums and one band per item. */
function expected(items: Item[]): { nodes: Omit<SvgNode, 'h'>[]; links: SvgLink[] } {
  const nodes = new Map<string, Omit<SvgNode, 'h'>>();
  for (const i of items) {
    for (const side of [0, 1]) {
      const id = `${side}|${i.keys[side]}`;
      const n = nodes.get(id) ?? { side, key: i.keys[side], value: 0 };
      n.value += i.bytes;
      nodes.set(id, n);
    }
  }
  return {
    nodes: [...nodes.values()].sort(byKey),
    links: items.map((i) => ({ source: i.keys[0], target: i.keys[1], value: i.bytes })).sort(byKey),
  };
}

/** WCAG contrast ratio of two CSS colours as the browser computes them (rgb(...)). */
function contrast(a: string, b: string): number {
  const lum = (c: string) => {
    const [r, g, bl] = (c.match(/[\d.]+/g) ?? []).slice(0, 3).map((x) => {
      const v = Number(x) / 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * bl;
  };
  const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
}

describe('web client: Explore as a Sankey and a stacked area', { skip }, () => {
  let web: WebSession;
  let serve: ServeProcess;
  let b: BrowserSession;
  let page: Page;

  async function explore(dimensions: string[], filters: { dimension: string; value: string }[] = [], limit = 20): Promise<Item[]> {
    const r = await fetch(`${serve.base}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        query: `query($d: [ExploreDimension!]!, $f: [ExploreFilter!], $l: Int) {
          explore(dimensions: $d, filters: $f, limit: $l, metric: BYTES) { items { keys bytes packets flows series { bytes } } }
        }`,
        variables: { d: dimensions, f: filters, l: limit },
      }),
    });
    const body = (await r.json()) as { data?: { explore: { items: Item[] } }; errors?: unknown };
    assert.ok(body.data, JSON.stringify(body.errors));
    return body.data.explore.items;
  }

  /** Waits until the Sankey draws as many bands as asked. */
  const bands = (n: number) =>
    page.waitForFunction((count) => document.querySelectorAll('[data-testid=sankey] path.link').length === count, n, { timeout: 20_000 });

  before(async () => {
    web = await startWebSession('flowlens-web-sankey-', async (dir) => {
      const sample = sampleCapture(join(dir, 'sample.pcap'));
      const r = await runCli(['import', '--db', join(dir, 'flows.duckdb'), '--no-progress', sample.path]);
      assert.equal(r.code, 0, r.stderr);
    });
    ({ serve, page, browser: b } = web);
  });

  after(() => web?.close());

  it('offers a Sankey for a pair only', async () => {
    await page.goto(`${serve.base}/#/explore?dims=CLIENT&metric=BYTES&limit=20&range=default`);
    await page.getByTestId('explore-table').waitFor({ timeout: 20_000 });
    const views = page.getByRole('group', { name: 'Show as' }).getByRole('button');
    assert.deepEqual(await views.allTextContents(), ['Table', 'Stacked area']);
    await page.getByTestId('dim-1').selectOption('SERVER');
    await page.waitForFunction(() => /dims=CLIENT%2CSERVER|dims=CLIENT,SERVER/.test(location.hash));
    // The page follows the hash on its hashchange event, a task after the hash itself changed.
    await page.getByTestId('view-sankey').waitFor({ timeout: 20_000 });
    assert.deepEqual(await views.allTextContents(), ['Table', 'Stacked area', 'Sankey']);
  });

  it('the Sankey of client → server has the nodes and bands of the API’s answer, bars proportional to bytes', async () => {
    const items = await explore(['CLIENT', 'SERVER']);
    assert.equal(items.length, 14, '12 HTTPS servers of 10.0.0.1, DNS from 10.0.0.2, a ping from 10.0.0.3');
    // The switch is a button reached by the keyboard.
    const button = page.getByTestId('view-sankey');
    await button.focus();
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => /view=sankey/.test(location.hash));
    // As above: the button is pressed once the page has followed the hash, not when the hash changes.
    await page.locator('[data-testid=view-sankey][aria-pressed=true]').waitFor({ timeout: 20_000 });
    assert.equal(await button.getAttribute('aria-pressed'), 'true');
    await bands(items.length);
    const svg = await drawn(page);
    const want = expected(items);
    assert.deepEqual(svg.nodes.map(({ side, key, value }) => ({ side, key, value })).sort(byKey), want.nodes);
    assert.deepEqual([...svg.links].sort(byKey), want.links);
    assert.deepEqual(
      svg.nodes.filter((n) => n.side === 0).map((n) => n.key),
      ['10.0.0.1', '10.0.0.2', '10.0.0.3'],
      'left: the clients, largest first',
    );
    // One scale: every bar's height over its bytes is the same (bars of at least 2 px, rounded to 0.01).
    const scales = svg.nodes.filter((n) => n.h >= 2).map((n) => n.h / n.value);
    assert.ok(scales.length >= 5, JSON.stringify(svg.nodes));
    for (const s of scales) assert.ok(Math.abs(s / scales[0] - 1) < 0.01, `scales ${scales.join(', ')}`);
    // The table stays below with the same items.
    assert.equal(await page.getByTestId('explore-table').locator('tbody tr').count(), items.length);

    // Hover shows the value.
    const big = items[0];
    await page.locator(`[data-testid=sankey] g.node[data-side="1"][data-key="${big.keys[1]}"]`).hover();
    await page.waitForFunction(
      (t) => (document.querySelector('[data-testid=sankey-info]')?.textContent ?? '').includes(t),
      `Server ${big.keys[1]}: ${formatBytes(big.bytes)}`,
    );
    await screenshot(page, 'explore-sankey');
  });

  it('a click on a node adds its filter chip and narrows the answer; a reload opens the same view', async () => {
    const node = page.locator('[data-testid=sankey] g.node[data-side="0"][data-key="10.0.0.1"]');
    await node.click();
    await page.getByTestId('filters').getByText('10.0.0.1').waitFor({ timeout: 10_000 });
    assert.match((await page.getByTestId('filters').textContent()) ?? '', /Client: 10\.0\.0\.1/);
    assert.match(decodeURIComponent(page.url()), /f=CLIENT:10\.0\.0\.1/);
    assert.match(page.url(), /view=sankey/);
    const narrowed = await explore(['CLIENT', 'SERVER'], [{ dimension: 'CLIENT', value: '10.0.0.1' }]);
    assert.equal(narrowed.length, 12, 'the 12 HTTPS servers of 10.0.0.1');
    await bands(12);
    let svg = await drawn(page);
    assert.deepEqual([...svg.links].sort(byKey), expected(narrowed).links);
    assert.deepEqual(
      svg.nodes.filter((n) => n.side === 0).map((n) => n.key),
      ['10.0.0.1'],
    );

    await page.reload();
    await page.getByTestId('filters').getByText('10.0.0.1').waitFor({ timeout: 20_000 });
    await bands(12);
    assert.equal(await page.getByTestId('view-sankey').getAttribute('aria-pressed'), 'true');
    svg = await drawn(page);
    assert.deepEqual([...svg.links].sort(byKey), expected(narrowed).links, 'the same Sankey after a reload');

    // A band, by the keyboard: both of its values become filters.
    const band = page.locator('[data-testid=sankey] path.link[data-target="10.0.1.12"]');
    await band.focus();
    assert.match((await page.getByTestId('sankey-info').textContent()) ?? '', /10\.0\.0\.1 → 10\.0\.1\.12: /);
    await page.keyboard.press('Enter');
    await page.getByTestId('filters').getByText('10.0.1.12').waitFor({ timeout: 10_000 });
    const one = await explore(
      ['CLIENT', 'SERVER'],
      [
        { dimension: 'CLIENT', value: '10.0.0.1' },
        { dimension: 'SERVER', value: '10.0.1.12' },
      ],
    );
    assert.equal(one.length, 1);
    await bands(1);
    assert.deepEqual((await drawn(page)).links, expected(one).links);
    assert.deepEqual(b.errors, []);
  });

  it('readable in both themes: labels contrast with the panel', async () => {
    await page.goto(`${serve.base}/#/explore?dims=APP,SERVER&metric=BYTES&limit=20&range=default&view=sankey`);
    const items = await explore(['APP', 'SERVER']);
    await bands(items.length);
    for (const scheme of ['light', 'dark'] as const) {
      await page.emulateMedia({ colorScheme: scheme });
      await page.reload();
      await bands(items.length);
      const [text, panel, theme] = await page.evaluate(() => [
        getComputedStyle(document.querySelector('[data-testid=sankey] g.node text')!).fill,
        getComputedStyle(document.querySelector('section.panel')!).backgroundColor,
        document.documentElement.dataset.theme ?? '',
      ]);
      assert.equal(theme, scheme);
      assert.ok(contrast(text, panel) >= 4.5, `${scheme}: ${text} on ${panel}: ${contrast(text, panel).toFixed(2)}`);
      await screenshot(page, `explore-sankey-${scheme}`);
    }
    await page.emulateMedia({ colorScheme: 'light' });
    // At phone size the Sankey fits its panel and every label stays inside the drawing.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForFunction(() => Number(document.querySelector('[data-testid=sankey] svg')?.getAttribute('width')) < 390);
    const fit = await page.evaluate(() => {
      const svg = document.querySelector<SVGSVGElement>('[data-testid=sankey] svg')!;
      const width = svg.getBoundingClientRect().width;
      const panel = svg.closest('section')!.getBoundingClientRect().width;
      const out = [...svg.querySelectorAll<SVGTextElement>('g.node text')]
        .map((t) => ({ text: t.textContent, box: t.getBBox() }))
        .filter(({ box }) => box.x < 0 || box.x + box.width > width + 0.5);
      return { width, panel, out };
    });
    assert.ok(fit.width <= fit.panel, JSON.stringify(fit));
    assert.deepEqual(fit.out, [], 'labels cut off');
    await screenshot(page, 'explore-sankey-phone');
    await page.setViewportSize({ width: 1366, height: 860 });
    assert.deepEqual(b.errors, []);
  });

  it('the stacked area draws the top items’ series; a legend entry filters; one dimension drops the Sankey', async () => {
    await page.goto(`${serve.base}/#/explore?dims=CLIENT,SERVER&metric=BYTES&limit=20&range=default&view=sankey`);
    await bands(14);
    await page.getByTestId('view-area').click();
    await page.waitForFunction(() => /view=area/.test(location.hash));
    const items = await explore(['CLIENT', 'SERVER']);
    const layers = page.locator('[data-testid=stacked-area] path.layer');
    await layers.first().waitFor({ timeout: 10_000 });
    assert.equal(await layers.count(), 10, 'the top 10 of 14, stacked');
    const labels = await layers.evaluateAll((ps) => ps.map((p) => (p as SVGPathElement).dataset.label));
    assert.deepEqual(
      labels,
      items.slice(0, 10).map((i) => i.keys.join(' → ')),
    );
    // Each layer's top edge lies above the one below it (or on it where the upper item had nothing).
    const tops = await page.evaluate(() =>
      [...document.querySelectorAll('[data-testid=stacked-area] path.edge')].map((p) =>
        (p.getAttribute('d') ?? '')
          .slice(1)
          .split('L')
          .map((xy) => Number(xy.split(',')[1])),
      ),
    );
    for (let k = 1; k < tops.length; k++) for (let j = 0; j < tops[k].length; j++) assert.ok(tops[k][j] <= tops[k - 1][j] + 0.01);
    // The stack's peak reaches the upper half of the plot (280 px tall, 8 px above and 24 below).
    assert.ok(Math.min(...tops[tops.length - 1]) < (8 + 256) / 2, JSON.stringify(tops.at(-1)));
    await screenshot(page, 'explore-stacked-area');
    // A legend entry adds its item's filters.
    await page
      .getByTestId('stacked-area')
      .getByRole('button', { name: items[2].keys.join(' → ') })
      .click();
    await page.getByTestId('filters').getByText(items[2].keys[1]).waitFor({ timeout: 10_000 });
    assert.match(decodeURIComponent(page.url()), new RegExp(`f=SERVER:${items[2].keys[1].replaceAll('.', '\\.')}`));
    // Down to one dimension: no Sankey offered, and a Sankey URL opens as a table.
    await page.getByTestId('dim-1').selectOption('');
    await page.waitForFunction(() => !/dims=CLIENT%2CSERVER/.test(location.hash));
    await page.getByTestId('view-sankey').waitFor({ state: 'detached', timeout: 20_000 });
    assert.equal(await page.getByTestId('view-sankey').count(), 0);
    await page.goto(`${serve.base}/#/explore?dims=CLIENT&metric=BYTES&range=default&view=sankey`);
    await page.getByTestId('explore-table').waitFor({ timeout: 20_000 });
    assert.equal(await page.getByTestId('sankey').count(), 0);
    assert.deepEqual(b.errors, []);
  });
});
