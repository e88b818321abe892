// The example extension (host-wasm/examples/extension) in headless Chromium against the
// local authorization server: a user signs in through the popup (chrome.identity
// launchWebAuthFlow, PKCE), calls the API, the service worker is stopped and restarted,
// the token expires and is refreshed once for several callers, and the user signs out.
//
// The tests run in order and share one browser: each one starts where the previous ended.

import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';

import {
  CLIENT_ID, Log, STORAGE_KEY, extensionId, launchExtension, sleep, startProvider, tokenId,
} from '../support.mjs';

// Short-lived access tokens, so that one can expire during the test. While the worker runs,
// tessera refreshes at 3/4 of the lifetime (11 s): the steps that expect the same token
// finish well before that.
const ACCESS_TOKEN_TTL = 15;

const log = new Log();
let provider;
let extension;
let popup;

before(async () => {
  provider = await startProvider({
    redirectUri: `https://${extensionId()}.chromiumapp.org/`,
    env: { ACCESS_TOKEN_TTL: String(ACCESS_TOKEN_TTL) },
    log,
  });
  extension = await launchExtension({ log });
  popup = await extension.openPopup();
  // The provider listens on an ephemeral port: point the extension at it.
  const configured = await popup.send({ type: 'configure', config: { issuer: provider.issuer } });
  assert.ok(configured.ok, `configure failed: ${JSON.stringify(configured)}`);
  assert.equal(configured.config.client_id, CLIENT_ID, 'config.js defaults apply under the override');
});

after(async () => {
  await extension?.close();
  provider?.stop();
});

afterEach((t) => {
  if (!t.passed || process.env.E2E_VERBOSE) console.error(`--- ${t.name}: recent provider and browser output\n${log.tail()}`);
});

const counters = () => provider.counters();

describe('the example extension in headless Chromium', () => {
  test('loads unpacked with the id its manifest key gives, in headless Chrome', async () => {
    assert.equal(extension.worker.url(), `chrome-extension://${extensionId()}/background.js`);
    assert.equal(await extension.evaluate(() => chrome.identity.getRedirectURL()), extension.redirectUri);
    assert.match(await popup.page.evaluate(() => navigator.userAgent), /HeadlessChrome\//);
    assert.match(await popup.shown('identity'), /not signed in/);
  });

  test('signs in with PKCE through the popup (launchWebAuthFlow) and shows the identity', async () => {
    const reply = await popup.click('Sign in');
    assert.ok(reply.ok, `sign-in failed: ${JSON.stringify(reply.error)}\npopup:\n${await popup.text()}`);
    assert.equal(reply.identity.email, 'alice@example.test');
    assert.ok(reply.expiresAt > Date.now(), 'the token expires in the future');

    const authorizeRequests = provider.authorizeRequests();
    assert.equal(authorizeRequests.length, 1, 'one authorization request, from the browser');
    const authorize = authorizeRequests[0];
    assert.equal(authorize.get('client_id'), CLIENT_ID);
    assert.equal(authorize.get('redirect_uri'), extension.redirectUri);
    assert.equal(authorize.get('code_challenge_method'), 'S256');
    assert.match(authorize.get('code_challenge'), /^[A-Za-z0-9_-]{43}$/);
    const seen = await counters();
    assert.equal(seen.authorization_requests, 1);
    assert.equal(seen.token_requests.authorization_code, 1, 'one code exchange');

    assert.equal(await popup.shown('identity'), 'Alice Example <alice@example.test>');
    assert.match(await popup.shown('expiry'), /^expires in \d+ s .*refreshable$/);
    assert.equal(await popup.shown('state'), 'idle');
    assert.equal(await popup.shown('error'), '');
    const stored = await extension.decryptedSession();
    assert.equal(stored?.client_id, CLIENT_ID, `the session is in chrome.storage.local under ${STORAGE_KEY}`);
    assert.equal(stored.plaintext, undefined, 'encrypted at rest');
    const raw = await extension.storedSession();
    assert.ok(raw.startsWith('tessera-aes-gcm.1.'), `encrypted at rest: ${raw.slice(0, 20)}…`);
    for (const token of [stored.refresh_token, stored.access_token]) assert.ok(!raw.includes(token), 'a token in clear');
  });

  test('calls the API (userinfo) with the access token', async () => {
    const reply = await popup.click('Call API');
    assert.ok(reply.ok, `call API failed: ${JSON.stringify(reply.error)}`);
    assert.equal(reply.retried, false);
    assert.equal(reply.body.sub, 'alice');
    assert.equal(reply.body.email, 'alice@example.test');
    const token = await extension.evaluate(async () => (await tesseraExample.session()).getAccessToken());
    assert.equal(reply.tokenId, tokenId(token), 'the API was called with the session token');
    assert.match(await popup.shown('result'), /"sub": "alice"/);
  });

  test('comes back from chrome.storage after the service worker is stopped', async () => {
    const token = await extension.evaluate(async () => {
      globalThis.e2eMarker = 'before the stop';
      return (await tesseraExample.session()).getAccessToken();
    });
    const before = await counters();

    await extension.stopWorker();
    const status = await popup.click('Status'); // the message starts the worker again
    assert.ok(status.ok, JSON.stringify(status.error));
    assert.equal(await extension.evaluate(() => globalThis.e2eMarker), undefined, 'a fresh worker');
    assert.equal(status.status.logged_in, true);
    assert.equal(status.status.identity.email, 'alice@example.test');
    assert.equal(await popup.shown('identity'), 'Alice Example <alice@example.test>');

    const api = await popup.click('Call API');
    assert.ok(api.ok, JSON.stringify(api.error));
    assert.equal(api.tokenId, tokenId(token), 'the stored token, without a new sign-in');
    assert.deepEqual(await counters(), before, 'no request to the provider but the API call');
  });

  test('an API 401 makes one refresh (tokenRejected) and one retry', async () => {
    const token = await extension.evaluate(async () => (await tesseraExample.session()).getAccessToken());
    await provider.revokeAccessToken(token); // the grant and the refresh token live on
    const before = await counters();

    const reply = await popup.click('Call API');
    assert.ok(reply.ok, `call API failed: ${JSON.stringify(reply.error)}`);
    assert.equal(reply.retried, true, 'retried after the 401');
    assert.notEqual(reply.tokenId, tokenId(token), 'with a new token');
    assert.equal(reply.body.sub, 'alice');
    assert.equal((await counters()).token_requests.refresh_token - before.token_requests.refresh_token, 1);
  });

  test('after the token expired, five callers at once share exactly one refresh', async () => {
    const old = await extension.evaluate(async () => (await tesseraExample.session()).getAccessToken());
    const { status } = await popup.click('Status');
    // Chrome stops an idle worker after ~30 s, and the proactive refresh timer with it:
    // the token then expires unrefreshed, as it does here.
    await extension.stopWorker();
    await sleep(Math.max(0, status.expires_at - Date.now()) + 1_000);
    assert.equal((await provider.introspect(old)).active, false, 'the old token expired');
    const before = await counters();

    // Five API calls at once start the worker; each asks the session for a token.
    const replies = await popup.page.evaluate(() => Promise.all(
      Array.from({ length: 5 }, () => chrome.runtime.sendMessage({ type: 'callApi' })),
    ));
    for (const reply of replies) {
      assert.ok(reply.ok, `a call failed: ${JSON.stringify(reply.error)}`);
      assert.equal(reply.retried, false, 'no caller was handed the expired token');
    }
    const ids = new Set(replies.map((r) => r.tokenId));
    assert.equal(ids.size, 1, `all callers got the same token, got ${[...ids].join(', ')}`);
    assert.notEqual([...ids][0], tokenId(old), 'a new token');

    // And five more getAccessToken calls at once inside the worker: the same token.
    const tokens = await extension.evaluate(async () => {
      const session = await tesseraExample.session();
      return Promise.all(Array.from({ length: 5 }, () => session.getAccessToken()));
    });
    assert.equal(new Set(tokens).size, 1);
    assert.equal(tokenId(tokens[0]), [...ids][0]);
    assert.equal((await provider.introspect(tokens[0])).active, true);

    const seen = await counters();
    assert.equal(seen.token_requests.refresh_token - before.token_requests.refresh_token, 1, 'exactly one refresh');
    assert.equal(seen.refresh_invalid_grant, 0, 'no refresh token was used twice');
    assert.equal(seen.authorization_requests, before.authorization_requests, 'no new sign-in');
  });

  test('signs out: the provider revoked the tokens and storage is empty', async () => {
    const stored = await extension.decryptedSession();
    const before = await counters();

    const reply = await popup.click('Sign out');
    assert.ok(reply.ok, `sign-out failed: ${JSON.stringify(reply.error)}`);
    for (const call of reply.serverCalls) assert.equal(call.error, undefined, `${call.call}: ${call.error}`);
    assert.ok((await counters()).revocation_requests > before.revocation_requests, 'a revocation request');
    assert.equal((await provider.introspect(stored.refresh_token, 'refresh_token')).active, false, 'refresh token revoked');
    assert.equal((await provider.introspect(stored.access_token)).active, false, 'access token revoked');

    assert.equal(await extension.storedSession(), null);
    assert.equal(await popup.shown('identity'), 'not signed in');
    const api = await popup.click('Call API');
    assert.equal(api.ok, false);
    assert.equal(api.error.code, 'not_logged_in');
    assert.match(await popup.shown('error'), /^not_logged_in: /);
  });
});
