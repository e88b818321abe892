// Bad input against the example extension in headless Chromium: a forged `state`, a
// closed sign-in window, a token endpoint answering HTML, storage that is full or corrupt.
// Each rejects with the documented TesseraError code, and the signed-in session that
// chrome.storage.local holds stays as it was (byte for byte) and keeps working.
//
// Extra sessions are opened inside the extension's service worker with
// `tesseraExample.Session.open(config, options)` (exposed by background.js), with the
// launcher or storage a test needs; the real chrome.identity.launchWebAuthFlow does the
// browser part everywhere.

import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';

import {
  CLIENT_ID, Log, STORAGE_KEY, extensionId, launchExtension, misbehavingServer, startProvider,
} from '../support.mjs';

const log = new Log();
let provider;
let bad;
let extension;
let popup;
let stored; // the signed-in session as chrome.storage.local holds it

before(async () => {
  provider = await startProvider({
    redirectUri: `https://${extensionId()}.chromiumapp.org/`,
    env: { ACCESS_TOKEN_TTL: '600' }, // no refresh may change the stored session during these tests
    log,
  });
  bad = await misbehavingServer();
  extension = await launchExtension({ log });
  popup = await extension.openPopup();
  const configured = await popup.send({ type: 'configure', config: { issuer: provider.issuer } });
  assert.ok(configured.ok, `configure failed: ${JSON.stringify(configured)}`);
  const signIn = await popup.click('Sign in');
  assert.ok(signIn.ok, `sign-in failed: ${JSON.stringify(signIn.error)}`);
  stored = await extension.storedSession();
  assert.equal((await extension.decryptedSession()).client_id, CLIENT_ID);
});

after(async () => {
  await extension?.close();
  await bad?.close();
  provider?.stop();
});

afterEach((t) => {
  if (!t.passed || process.env.E2E_VERBOSE) console.error(`--- ${t.name}: recent provider and browser output\n${log.tail()}`);
});

/** Runs `fn(arg)` in the service worker; resolves with the TesseraError it threw as
 *  {name, code, message}, or fails when it did not throw. */
async function rejectionIn(fn, arg) {
  // Evaluated by DevTools (not subject to the extension's CSP): `fn` runs as written.
  const outcome = await extension.evaluate(`(async () => {
    try {
      const value = await (${fn})(${JSON.stringify(arg)});
      return { resolved: JSON.stringify(value) ?? 'undefined' };
    } catch (error) {
      return { name: error?.name, code: error?.code, message: String(error?.message ?? error) };
    }
  })()`);
  assert.equal(outcome.resolved, undefined, `expected a rejection, got ${outcome.resolved}`);
  assert.equal(outcome.name, 'TesseraError', `not a TesseraError: ${JSON.stringify(outcome)}`);
  return outcome;
}

/** The stored session is byte for byte what it was, and the extension still uses it. */
async function assertSessionIntact() {
  assert.equal(await extension.storedSession(), stored, 'the stored session is unchanged');
  const api = await popup.click('Call API');
  assert.ok(api.ok, `the signed-in session no longer works: ${JSON.stringify(api.error)}`);
  assert.equal(api.body.sub, 'alice');
}

test('a redirect with a forged state is refused (protocol), and its code is never exchanged', async () => {
  const before = await provider.counters();
  const error = await rejectionIn(async () => {
    const forgeState = async (url) => {
      const redirect = new URL(await chrome.identity.launchWebAuthFlow({ url, interactive: true }));
      redirect.searchParams.set('state', 'forged');
      return redirect.href;
    };
    const session = await tesseraExample.Session.open(await tesseraExample.config(), { launcher: forgeState });
    try {
      return await session.login();
    } finally {
      session.close();
    }
  });
  assert.equal(error.code, 'protocol');
  assert.match(error.message, /state/);
  const after = await provider.counters();
  assert.equal(after.authorization_requests - before.authorization_requests, 1, 'the browser went to the provider');
  assert.equal(after.token_requests.authorization_code, before.token_requests.authorization_code, 'no code exchange');
  await assertSessionIntact();
});

test('a closed sign-in window rejects as interrupted', async () => {
  // The authorization endpoint is a page that never redirects: launchWebAuthFlow shows it
  // in a window (a page of the headless browser), and the user closes it.
  const opened = extension.waitForAuthWindow(bad.authorizeUrl);
  const outcome = rejectionIn(async (authorization) => {
    const config = await tesseraExample.config();
    const session = await tesseraExample.Session.open({
      ...config, discovery: false, endpoints: { authorization, token: `${config.issuer}/token` },
    });
    try {
      return await session.login();
    } finally {
      session.close();
    }
  }, bad.authorizeUrl);
  const window = await opened;
  assert.equal(await window.title(), 'Sign in');
  await window.close();

  const error = await outcome;
  assert.equal(error.code, 'interrupted');
  assert.match(error.message, /did not approve/, 'says what happened');
  assert.equal(bad.requests.authorize, 1);
  await assertSessionIntact();
});

test('a token endpoint answering HTML rejects the sign-in as a protocol error', async () => {
  // Through the extension's own configuration, as a user would misconfigure it.
  const configured = await popup.send({
    type: 'configure',
    config: { issuer: provider.issuer, discovery: false, endpoints: { authorization: `${provider.issuer}/auth`, token: bad.tokenUrl } },
  });
  assert.ok(configured.ok, `configure failed: ${JSON.stringify(configured)}`);
  try {
    const reply = await popup.click('Sign in');
    assert.equal(reply.ok, false, 'the sign-in must fail');
    assert.equal(reply.error.code, 'protocol', JSON.stringify(reply.error));
    assert.match(reply.error.message, /text\/html/);
    assert.match(await popup.shown('error'), /^protocol: /);
    assert.equal(bad.requests.token, 1, 'the code went to the configured token endpoint');
    assert.equal(await popup.shown('identity'), 'Alice Example <alice@example.test>', 'still signed in');
  } finally {
    const restored = await popup.send({ type: 'configure', config: { issuer: provider.issuer } });
    assert.ok(restored.ok, `configure failed: ${JSON.stringify(restored)}`);
  }
  await assertSessionIntact();
});

test('a configuration with an unknown field is refused (config) until configure fixes it', async () => {
  const reply = await popup.send({ type: 'configure', config: { issuer: provider.issuer, clientSecret: 'x' } });
  assert.equal(reply.ok, false);
  assert.equal(reply.error.code, 'config', JSON.stringify(reply.error));
  assert.match(reply.error.message, /clientSecret/, 'names the field');
  const status = await popup.click('Status');
  assert.equal(status.ok, false);
  assert.equal(status.error.code, 'config');

  const fixed = await popup.send({ type: 'configure', config: { issuer: provider.issuer } });
  assert.ok(fixed.ok, `configure failed: ${JSON.stringify(fixed)}`);
  await assertSessionIntact();
});

test('full storage rejects the sign-in with a storage error', async () => {
  const error = await rejectionIn(async () => {
    // chrome.storage.local for reading, a full quota for writing.
    const full = {
      get: async (key) => (await chrome.storage.local.get(key))[key] ?? null,
      set: async () => { throw new DOMException('quota exceeded', 'QuotaExceededError'); },
      remove: async (key) => chrome.storage.local.remove(key),
    };
    const session = await tesseraExample.Session.open(await tesseraExample.config(), { storage: full });
    try {
      return await session.login();
    } finally {
      session.close();
    }
  });
  assert.equal(error.code, 'storage');
  assert.match(error.message, /quota exceeded/);
  await assertSessionIntact();
});

test('a corrupt stored session is reported and kept; getAccessToken rejects as not_logged_in; a sign-in replaces it', async () => {
  const corrupt = '{"version":1,"access_tok';
  await extension.evaluate(([key, value]) => chrome.storage.local.set({ [key]: value }), [STORAGE_KEY, corrupt]);
  await extension.stopWorker(); // the next start reads it

  const status = await popup.click('Status');
  assert.ok(status.ok, `status failed: ${JSON.stringify(status.error)}`);
  assert.equal(status.status.logged_in, false);
  assert.match(status.status.storage_problem ?? '', /unreadable/);
  assert.match(await popup.shown('problem'), /^Stored session unreadable: /);

  const api = await popup.click('Call API');
  assert.equal(api.ok, false);
  assert.equal(api.error.code, 'not_logged_in');
  assert.equal(await extension.storedSession(), corrupt, 'left as it was');

  const signIn = await popup.click('Sign in');
  assert.ok(signIn.ok, `sign-in failed: ${JSON.stringify(signIn.error)}`);
  assert.equal((await extension.decryptedSession()).client_id, CLIENT_ID, 'replaced by the new session');
  assert.equal(await popup.shown('problem'), '');
});

test('an altered encrypted session is reported as undecryptable and kept; a sign-in replaces it', async () => {
  const sealed = await extension.storedSession();
  assert.ok(sealed.startsWith('tessera-aes-gcm.1.'), 'encrypted at rest');
  const at = sealed.length - 10; // inside the ciphertext
  const altered = sealed.slice(0, at) + (sealed[at] === 'A' ? 'B' : 'A') + sealed.slice(at + 1);
  await extension.evaluate(([key, value]) => chrome.storage.local.set({ [key]: value }), [STORAGE_KEY, altered]);
  await extension.stopWorker();

  const status = await popup.click('Status');
  assert.ok(status.ok, `status failed: ${JSON.stringify(status.error)}`);
  assert.equal(status.status.logged_in, false);
  assert.equal(status.status.storage_error, 'undecryptable');
  assert.match(status.status.storage_problem ?? '', /does not decrypt/);
  const api = await popup.click('Call API');
  assert.equal(api.error?.code, 'not_logged_in');
  assert.equal(await extension.storedSession(), altered, 'left as it was');

  const signIn = await popup.click('Sign in');
  assert.ok(signIn.ok, `sign-in failed: ${JSON.stringify(signIn.error)}`);
  assert.equal((await extension.decryptedSession()).client_id, CLIENT_ID, 'replaced by the new session');
});
