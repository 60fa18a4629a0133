/**
 * The Explore page's Sankey and stacked area layouts (web/src/lib/sankey.ts, stack.ts) and the
 * view switch in its URL (web/src/lib/explore.ts), in node.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { exploreHref, itemLabel, parseExploreParams, viewsFor, withItemFilters } from '../web/src/lib/explore.js';
import { sankeyHeight, sankeyLayout, shortLabel } from '../web/src/lib/sankey.js';
import { nearestIndex, niceTicks, stackLayout, timeTicks } from '../web/src/lib/stack.js';

const close = (a: number, b: number, msg: string) => assert.ok(Math.abs(a - b) < 0.02, `${msg}: ${a} vs ${b}`);

describe('Sankey layout', () => {
  const items = [
    { keys: ['10.0.0.1', '10.0.1.12'], value: 12_000 },
    { keys: ['10.0.0.1', '10.0.1.2'], value: 2_000 },
    { keys: ['10.0.0.2', '10.0.2.1'], value: 500 },
    { keys: ['10.0.0.3', '10.0.0.1'], value: 300 },
    { keys: ['10.0.0.2', '10.0.1.12'], value: 200 },
  ];
  const opts = { width: 800, height: 300, nodeWidth: 10, nodePadding: 16, labelWidth: 150 };
  const layout = sankeyLayout(items, opts);
  const node = (side: 0 | 1, key: string) => layout.nodes.find((n) => n.side === side && n.key === key)!;

  it('one node per value on each side, each as tall as the sum of its bands, at one scale', () => {
    const left = layout.nodes.filter((n) => n.side === 0).map((n) => [n.key, n.value]);
    assert.deepEqual(left, [
      ['10.0.0.1', 14_000],
      ['10.0.0.2', 700],
      ['10.0.0.3', 300],
    ]);
    const right = new Map(layout.nodes.filter((n) => n.side === 1).map((n) => [n.key, n.value]));
    assert.deepEqual(
      right,
      new Map([
        ['10.0.1.12', 12_200],
        ['10.0.1.2', 2_000],
        ['10.0.2.1', 500],
        ['10.0.0.1', 300],
      ]),
    );
    assert.equal(layout.total, 15_000);
    // The right column has four nodes (three gaps): it sets the scale and fills the height.
    close(layout.scale, (300 - 3 * 16) / 15_000, 'scale');
    for (const n of layout.nodes) close(n.h, n.value * layout.scale, `height of ${n.key}`);
    const rights = layout.nodes.filter((n) => n.side === 1);
    close(rights[0].y, 0, 'the crowded column starts at the top');
    close(rights[3].y + rights[3].h, 300, 'and ends at the bottom');
    // The left column is centred.
    const lefts = layout.nodes.filter((n) => n.side === 0);
    const used = 15_000 * layout.scale + 2 * 16;
    close(lefts[0].y, (300 - used) / 2, 'left column centred');
    assert.deepEqual([lefts[0].x, rights[0].x], [150, 800 - 150 - 10], 'columns beside the label room');
  });

  it('bands are proportional to their values, stacked within their nodes without overlap', () => {
    assert.equal(layout.links.length, items.length);
    for (const [k, l] of layout.links.entries()) {
      assert.deepEqual([layout.nodes[l.source].key, layout.nodes[l.target].key], items[k].keys, 'in the items’ order');
      close(l.w, items[k].value * layout.scale, 'width');
      assert.match(l.path, /^M[\d.]+,[\d.]+C.*L.*C.*Z$/);
    }
    for (const n of layout.nodes) {
      const bands = layout.links
        .filter((l) => layout.nodes[n.side === 0 ? l.source : l.target] === n)
        .map((l) => ({ y: n.side === 0 ? l.sy : l.ty, w: l.w }))
        .sort((a, b) => a.y - b.y);
      close(bands[0].y, n.y, `${n.key}: first band at the top`);
      for (let i = 1; i < bands.length; i++) close(bands[i].y, bands[i - 1].y + bands[i - 1].w, `${n.key}: bands abut`);
      close(bands.at(-1)!.y + bands.at(-1)!.w, n.y + n.h, `${n.key}: last band at the bottom`);
    }
    // 10.0.1.2 has only 10.0.0.1 (the top left node) as source, 10.0.1.12 has 10.0.0.2 too: 10.0.1.2
    // goes above, and 10.0.0.1's bands leave in that order.
    assert.ok(node(1, '10.0.1.2').y < node(1, '10.0.1.12').y);
    assert.ok(layout.links[1].sy < layout.links[0].sy);
  });

  it('orders right nodes by where their sources are (fewer crossings), then by value', () => {
    const l = sankeyLayout(
      [
        { keys: ['a', 'x'], value: 10 },
        { keys: ['b', 'y'], value: 5 },
        { keys: ['b', 'z'], value: 50 },
        { keys: ['c', 'w'], value: 1 },
      ],
      opts,
    );
    assert.deepEqual(
      l.nodes.map((n) => `${n.side}${n.key}`),
      ['0b', '0a', '0c', '1z', '1y', '1x', '1w'],
    );
  });

  it('leaves out zero values, sums a pair given twice, keeps an empty key, and copes with nothing', () => {
    const l = sankeyLayout(
      [
        { keys: ['', 'x'], value: 4 },
        { keys: ['', 'x'], value: 6 },
        { keys: ['b', 'y'], value: 0 },
      ],
      opts,
    );
    assert.deepEqual(
      l.nodes.map((n) => [n.side, n.key, n.value]),
      [
        [0, '', 10],
        [1, 'x', 10],
      ],
    );
    assert.equal(l.links.length, 1);
    close(l.links[0].w, 300, 'one band fills the height');
    const empty = sankeyLayout([], opts);
    assert.deepEqual([empty.nodes, empty.links, empty.total], [[], [], 0]);
  });

  it('is tall enough for a readable row per node of the longer column, and cuts long labels', () => {
    assert.equal(sankeyHeight(items), 220, 'the minimum');
    const many = Array.from({ length: 20 }, (_, i) => ({ keys: ['a', `s${i}`], value: 1 }));
    assert.equal(sankeyHeight(many), 20 * 28 + 24);
    const l = sankeyLayout(many, { ...opts, height: sankeyHeight(many) });
    const ys = l.nodes.filter((n) => n.side === 1).map((n) => n.y + n.h / 2);
    for (let i = 1; i < ys.length; i++) assert.ok(ys[i] - ys[i - 1] >= 16, 'label centres at least a line apart');
    assert.equal(shortLabel('www.example.com', 8), 'www.exa…');
    assert.equal(shortLabel('a.b', 8), 'a.b');
  });
});

describe('stacked area layout', () => {
  const t0 = Date.UTC(2023, 10, 14, 22, 0);
  const times = Array.from({ length: 5 }, (_, i) => t0 + i * 60_000);
  const series = [
    [1, 2, 3, 4, 5],
    [10, 0, 10, 0, 10],
  ];
  const margin = { top: 0, right: 0, bottom: 20, left: 50 };
  const l = stackLayout({ times, series, width: 450, height: 220, margin });

  it('stacks each layer on the ones below it, scaled to a nice top', () => {
    assert.deepEqual(l.totals, [11, 2, 13, 4, 15]);
    assert.equal(l.yMax, 15);
    assert.deepEqual(
      l.yTicks.map((t) => [t.value, t.y]),
      [
        [0, 200],
        [5, 133.33],
        [10, 66.67],
        [15, 0],
      ],
    );
    assert.deepEqual(l.xs, [50, 150, 250, 350, 450]);
    // The second layer's top edge is the sum; its bottom the first layer's top.
    const y = (v: number) => Math.round((200 - (v / 15) * 200) * 100) / 100;
    assert.equal(l.layers[1].line, `M${l.xs.map((x, j) => `${x},${y(l.totals[j])}`).join('L')}`);
    assert.equal(
      l.layers[0].path,
      `M${l.xs.map((x, j) => `${x},${y(series[0][j])}`).join('L')}L${[...l.xs]
        .reverse()
        .map((x) => `${x},200`)
        .join('L')}Z`,
    );
    assert.ok(l.layers[1].path.includes(`L450,${y(5)}L350,${y(4)}`), 'the second layer closes along the first one’s top');
    assert.deepEqual(l.layers[1].values, series[1]);
  });

  it('picks nice value ticks and round local time ticks', () => {
    assert.deepEqual(niceTicks(13), [0, 5, 10, 15]);
    assert.deepEqual(niceTicks(0.9), [0, 0.25, 0.5, 0.75, 1]);
    assert.deepEqual(niceTicks(4000, 4), [0, 1000, 2000, 3000, 4000]);
    assert.deepEqual(niceTicks(0), [0, 1]);
    const utc = () => 0;
    const from = Date.UTC(2023, 10, 14, 21, 53);
    assert.deepEqual(
      timeTicks(from, from + 3 * 3_600_000, 4, utc).map((t) => new Date(t).toISOString().slice(11, 16)),
      ['22:00', '23:00', '00:00'],
    );
    // In a zone 5h30 east of UTC the ticks fall on local round hours.
    const ist = () => 5.5 * 3_600_000;
    assert.deepEqual(
      timeTicks(from, from + 3 * 3_600_000, 4, ist).map((t) => new Date(t + ist()).toISOString().slice(11, 16)),
      ['04:00', '05:00', '06:00'],
    );
    assert.deepEqual(timeTicks(from, from, 4), []);
  });

  it('finds the point nearest to the pointer', () => {
    assert.equal(nearestIndex(l.xs, 0), 0);
    assert.equal(nearestIndex(l.xs, 210), 2);
    assert.equal(nearestIndex(l.xs, 1000), 4);
    assert.equal(nearestIndex([], 10), -1);
  });
});

describe('Explore view switch in the URL', () => {
  it('offers a Sankey for a pair only, and a URL asking for one with one dimension opens the table', () => {
    assert.deepEqual(
      viewsFor(['APP']).map((k) => k.id),
      ['table', 'area'],
    );
    assert.deepEqual(
      viewsFor(['CLIENT', 'SERVER']).map((k) => k.id),
      ['table', 'area', 'sankey'],
    );
    const pair = parseExploreParams('dims=CLIENT,SERVER&view=sankey&metric=PACKETS');
    assert.equal(pair.view, 'sankey');
    assert.equal(parseExploreParams(exploreHref(pair).split('?')[1]).view, 'sankey', 'a shared link opens the Sankey');
    assert.equal(parseExploreParams('dims=APP&view=sankey').view, 'table');
    assert.equal(parseExploreParams('dims=APP&view=nope').view, 'table');
    // Down to one dimension: the URL no longer says sankey.
    assert.doesNotMatch(exploreHref({ ...pair, dims: ['CLIENT'] }), /view=/);
    assert.match(exploreHref({ ...pair, dims: ['CLIENT'], view: 'area' }), /view=area/);
  });

  it('a band or a layer filters on each of its values', () => {
    const v = parseExploreParams('dims=APP,SERVER_NAME&view=sankey&f=APP:TLS');
    const next = withItemFilters(v, ['TLS', 'example.com']);
    assert.deepEqual(next.filters, [
      { dimension: 'APP', value: 'TLS' },
      { dimension: 'SERVER_NAME', value: 'example.com' },
    ]);
    assert.equal(next.view, 'sankey');
    assert.equal(itemLabel(['APP', 'SERVER_NAME'], ['', 'a.example']), '(not identified) → a.example');
  });
});
