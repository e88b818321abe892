// The provider's test-only routes: holding a refresh, and the counters the e2e tests read.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  TEST_TIMEOUT,
  startServer,
  stopServer,
  randomPort,
  http,
  tokenRequest,
  postJson,
  getJson,
  loginAndExchange,
  deviceAuthorize,
  devicePoll,
} from './support.mjs';

describe('test-only routes', { timeout: 60_000 }, () => {
  let srv;
  before(async () => { srv = await startServer(); });
  after(async () => { await stopServer(srv); });

  test('refresh_hold: a held refresh is served when released, dropped unserved when its client leaves', TEST_TIMEOUT, async () => {
    const t = await loginAndExchange(srv, { redirectUri: `http://127.0.0.1:${randomPort()}/callback` });
    const counters = async () => (await getJson(srv, '/test/counters')).body;
    const until = async (name, value) => {
      for (let i = 0; i < 200 && (await counters())[name] < value; i += 1) {
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.equal((await counters())[name], value, name);
    };
    const start = await counters();
    assert.equal((await postJson(srv, '/test/refresh_hold', { on: true })).body.refresh_hold, true);

    // The client goes away while its refresh is held: dropped, the refresh token untouched.
    const abort = new AbortController();
    const gone = fetch(`${srv.issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', client_id: 'tessera-cli', refresh_token: t.refresh_token }),
      signal: abort.signal,
    }).catch((e) => e.name);
    await until('refresh_held', start.refresh_held + 1);
    abort.abort();
    assert.equal(await gone, 'AbortError');
    await until('refresh_dropped', start.refresh_dropped + 1);

    // Held, then released: served with the same (unused) refresh token.
    const served = tokenRequest(srv, { grant_type: 'refresh_token', client_id: 'tessera-cli', refresh_token: t.refresh_token });
    await until('refresh_held', start.refresh_held + 2);
    const off = await postJson(srv, '/test/refresh_hold', { on: false });
    assert.deepEqual(off.body, { refresh_hold: false, released: 1 });
    const answer = await served;
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.ok(answer.body.access_token);
    assert.equal((await postJson(srv, '/test/refresh_hold', { on: 'yes' })).status, 400);
  });

  test('counters count token requests by grant type, refresh invalid_grant and revocations', TEST_TIMEOUT, async () => {
    const reset = await postJson(srv, '/test/counters/reset');
    assert.equal(reset.status, 200);
    assert.deepEqual(reset.body.token_requests, {
      authorization_code: 0, refresh_token: 0, device_code: 0, other: 0,
    });

    const t = await loginAndExchange(srv, { redirectUri: `http://127.0.0.1:${randomPort()}/callback` });
    const r1 = await tokenRequest(srv, { grant_type: 'refresh_token', client_id: 'tessera-cli', refresh_token: t.refresh_token });
    assert.equal(r1.status, 200);
    const bad = await tokenRequest(srv, { grant_type: 'refresh_token', client_id: 'tessera-cli', refresh_token: 'bogus' });
    assert.equal(bad.body.error, 'invalid_grant');
    const da = await deviceAuthorize(srv);
    await devicePoll(srv, da.device_code);
    await postJson(srv, '/test/slow_down', { count: 1 });
    assert.equal((await devicePoll(srv, da.device_code)).body.error, 'slow_down');
    await http(`${srv.issuer}/token/revocation`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: 'tessera-cli', token: r1.body.refresh_token }),
    });
    await tokenRequest(srv, { grant_type: 'client_credentials', client_id: 'tessera-cli' });
    const jwks = await getJson(srv, '/jwks');
    assert.deepEqual(jwks.body.keys.map((k) => k.alg).sort(), ['ES256', 'EdDSA', 'PS256', 'RS256']);

    const { body: c } = await getJson(srv, '/test/counters');
    assert.deepEqual(c, {
      token_requests: {
        authorization_code: 1, refresh_token: 2, device_code: 2, other: 1,
      },
      refresh_invalid_grant: 1,
      slow_down_sent: 1,
      slow_down_pending: 0,
      revocation_requests: 1,
      device_authorization_requests: 1,
      authorization_requests: 1,
      jwks_requests: 1,
      refresh_held: 0,
      refresh_dropped: 0,
    });
  });
});
