/**
 * One filter language (issue 21): an application filter finds its flows in any case everywhere: the
 * flows that come from the bus (Live flows, subscriptions: matchesFlow) as the stores do (the
 * store contract suite checks History's pages and Explore on each back end; explore-memory checks
 * Explore's in-memory answer against its SQL).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { matchesFlow } from '../src/api/schema/flows.js';
import { emptySummary, FLOW } from '../src/records/index.js';
import { appMatches } from '../src/store/flow-filter.js';
import type { FlowSummary } from '../src/store/types.js';

describe('flow filter: applications', () => {
  const flow = (app: string): FlowSummary => ({ ...(emptySummary(FLOW) as FlowSummary), flowId: 'f1', app, clientIp: '10.0.0.1', serverIp: '10.0.0.53' });

  it('dns finds DNS, and DNS finds dns, on flows from the bus', () => {
    assert.equal(matchesFlow(flow('DNS'), { app: 'dns' }), true);
    assert.equal(matchesFlow(flow('dns'), { app: 'DNS' }), true);
    assert.equal(matchesFlow(flow('DNS'), { app: 'TLS' }), false);
    assert.equal(matchesFlow(flow('DNS.Google'), { app: 'dns' }), false, 'the whole name, not a prefix');
  });

  it('the empty application finds flows with none', () => {
    assert.equal(appMatches('', ''), true);
    assert.equal(appMatches(null, ''), true);
    assert.equal(appMatches('DNS', ''), false);
  });
});
