// The npm package of tessera-wasm, driven as an embedder would, against the local
// authorization server (tests/provider). Node stands in for the browser: the launcher
// follows the provider's redirects like chrome.identity.launchWebAuthFlow, storage is
// an adapter in memory. The extension in headless Chromium is tested in host-wasm/e2e.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  garbageServer, loadPackage, memoryStorage, redirectFollower, rejection, startProvider,
} from './support.mjs';

const REDIRECT = 'http://127.0.0.1/callback';
let tessera;
let provider;

before(async () => {
  tessera = await loadPackage();
  provider = await startProvider({ ACCESS_TOKEN_TTL: '600' });
});
after(() => provider?.stop());

function config(extra = {}) {
  return {
    issuer: provider.issuer,
    client_id: 'tessera-ext',
    scopes: ['openid', 'offline_access', 'email'],
    redirect_uri: REDIRECT,
    ...extra,
  };
}

async function signedIn(storage = memoryStorage()) {
  const browser = redirectFollower();
  const session = await tessera.Session.open(config(), { storage, launcher: browser.launcher });
  const login = await session.login();
  return { session, storage, browser, login };
}

describe('a session', () => {
  test('signs in with PKCE through the launcher and hands out the token', async () => {
    const events = [];
    const { session, storage, browser, login } = await signedIn();
    session.onEvent((e) => events.push(e));
    assert.equal(browser.launches.length, 1);
    const authorize = new URL(browser.launches[0]);
    assert.equal(authorize.searchParams.get('code_challenge_method'), 'S256');
    assert.equal(authorize.searchParams.get('redirect_uri'), REDIRECT);
    assert.equal(login.identity.email, 'alice@example.test');
    assert.ok(login.expiresAt > Date.now());

    const token = await session.getAccessToken();
    const introspection = await provider.introspect(token);
    assert.equal(introspection.active, true);
    assert.equal(introspection.client_id, 'tessera-ext');

    const status = await session.status();
    assert.equal(status.logged_in, true);
    assert.equal(status.refresh_token_present, true);
    assert.equal(status.state, 'idle');
    const stored = JSON.parse(storage.map.get('tessera.session.tessera-ext'));
    assert.equal(stored.access_token, token, 'the session is in storage');
    session.close();
  });

  test('concurrent callers share one refresh', async () => {
    const { session } = await signedIn();
    const first = await session.getAccessToken();
    const before = (await provider.counters()).token_requests.refresh_token;
    // A token valid for 600 s does not satisfy a caller that needs an hour: all five
    // need a refresh at once.
    const tokens = await Promise.all(
      Array.from({ length: 5 }, () => session.getAccessToken({ minTtlSecs: 3600 })),
    );
    const after = (await provider.counters()).token_requests.refresh_token;
    assert.equal(after - before, 1, 'exactly one refresh request');
    assert.equal(new Set(tokens).size, 1, 'every caller got the same token');
    assert.notEqual(tokens[0], first);
    session.close();
  });

  test('comes back from storage after the worker restarts', async () => {
    const { session, storage } = await signedIn();
    const token = await session.getAccessToken();
    session.close();
    await assert.rejects(session.getAccessToken(), { name: 'TesseraError', code: 'closed' });

    const launches = (await provider.counters()).authorization_requests;
    const again = await tessera.Session.open(config(), { storage, launcher: redirectFollower().launcher });
    assert.equal((await again.status()).logged_in, true);
    assert.equal(await again.getAccessToken(), token);
    assert.equal((await provider.counters()).authorization_requests, launches, 'no new sign-in');
    again.close();
  });

  test('signs in with the device flow: user code event, approval, token', async () => {
    const storage = memoryStorage();
    const session = await tessera.Session.open(
      { issuer: provider.issuer, client_id: 'tessera-cli', scopes: ['openid', 'offline_access'] },
      { storage },
    );
    const codes = [];
    session.onEvent((event) => {
      if (event.type !== 'user_code') return;
      codes.push(event);
      provider.approve(event.user_code);
    });
    const login = await session.login({ method: 'device' });
    assert.equal(codes.length, 1);
    assert.match(codes[0].verification_uri, /^http:\/\/127\.0\.0\.1:\d+\/device/);
    assert.equal(login.identity.subject, 'alice');
    assert.ok(await session.getAccessToken());
    session.close();
  });

  test('logout revokes at the provider and empties storage', async () => {
    const { session, storage } = await signedIn();
    const token = await session.getAccessToken();
    const refresh = JSON.parse(storage.map.get('tessera.session.tessera-ext')).refresh_token;
    const result = await session.logout();
    assert.ok(result.serverCalls.every((c) => c.error === undefined), JSON.stringify(result));
    assert.equal(storage.map.size, 0);
    assert.equal((await provider.introspect(refresh, 'refresh_token')).active, false);
    assert.equal((await provider.introspect(token)).active, false);
    const error = await rejection(session.getAccessToken());
    assert.equal(error.code, 'not_logged_in');
    session.close();
  });
});

describe('bad input', () => {
  test('a redirect with the wrong state rejects and keeps the stored session', async () => {
    const { session, storage } = await signedIn();
    session.close();
    const before = storage.map.get('tessera.session.tessera-ext');
    const forged = redirectFollower((url) => {
      const u = new URL(url);
      u.searchParams.set('state', 'forged');
      return u.toString();
    });
    const again = await tessera.Session.open(config(), { storage, launcher: forged.launcher });
    const error = await rejection(again.login());
    assert.equal(error.code, 'protocol');
    assert.match(error.message, /state/);
    assert.equal(storage.map.get('tessera.session.tessera-ext'), before);
    assert.equal((await again.status()).login_in_progress, false);
    assert.ok(await again.getAccessToken(), 'the previous session still works');
    again.close();
  });

  test('a closed sign-in window rejects as interrupted', async () => {
    const storage = memoryStorage();
    const closed = async () => { throw new Error('The user did not approve access.'); };
    const session = await tessera.Session.open(config(), { storage, launcher: closed });
    const error = await rejection(session.login());
    assert.equal(error.code, 'interrupted');
    assert.match(error.message, /did not approve/);
    assert.equal(storage.map.size, 0);
    session.close();
  });

  test('the ID token\'s signature is checked by WebCrypto, and a failed check fails the sign-in', async () => {
    // The package is built without RustCrypto (docs/adr/018): the engine chooses the key
    // and algorithm, WebCrypto does the arithmetic. The provider signs with RS256.
    const subtle = globalThis.crypto.subtle;
    const verify = subtle.verify;
    const seen = [];
    let answer = (result) => result;
    subtle.verify = async function (algorithm, ...rest) {
      seen.push(algorithm?.name ?? algorithm);
      return answer(await verify.call(this, algorithm, ...rest));
    };
    try {
      const { session } = await signedIn();
      assert.deepEqual(seen, ['RSASSA-PKCS1-v1_5'], 'one check, by WebCrypto');
      session.close();

      seen.length = 0;
      answer = () => false;
      const storage = memoryStorage();
      const refused = await tessera.Session.open(config(), { storage, launcher: redirectFollower().launcher });
      const error = await rejection(refused.login());
      assert.ok(seen.length >= 1);
      assert.match(error.message, /does not verify|forged or altered|signature/i, error.message);
      assert.equal(storage.map.size, 0, 'nothing stored');
      refused.close();
    } finally {
      subtle.verify = verify;
    }
  });

  test('a token endpoint answering HTML rejects as a protocol error', async () => {
    const garbage = await garbageServer();
    const { session: good, storage } = await signedIn();
    good.close();
    const before = storage.map.get('tessera.session.tessera-ext');
    const discovered = await (await fetch(`${provider.issuer}/.well-known/openid-configuration`)).json();
    const session = await tessera.Session.open(
      config({ endpoints: { authorization: discovered.authorization_endpoint, token: garbage.url }, discovery: false }),
      { storage, launcher: redirectFollower().launcher },
    );
    const error = await rejection(session.login());
    assert.equal(error.code, 'protocol');
    assert.match(error.message, /text\/html/);
    assert.equal(garbage.requests(), 1);
    assert.equal(storage.map.get('tessera.session.tessera-ext'), before, 'stored session intact');
    session.close();
    await garbage.close();
  });

  test('a corrupt stored session is reported, kept, and replaced by a new sign-in', async () => {
    const storage = memoryStorage();
    storage.map.set('tessera.session.tessera-ext', '{"version":1,"access_tok');
    const session = await tessera.Session.open(config(), { storage, launcher: redirectFollower().launcher });
    const status = await session.status();
    assert.equal(status.logged_in, false);
    assert.match(status.storage_problem, /unreadable/);
    const error = await rejection(session.getAccessToken());
    assert.equal(error.code, 'not_logged_in');
    assert.equal(storage.map.get('tessera.session.tessera-ext'), '{"version":1,"access_tok');
    await session.login();
    assert.equal((await session.status()).storage_problem, undefined);
    assert.equal(JSON.parse(storage.map.get('tessera.session.tessera-ext')).client_id, 'tessera-ext');
    session.close();
  });

  test('full storage rejects the sign-in with a storage error', async () => {
    const storage = memoryStorage();
    storage.failWrites = true;
    const events = [];
    const session = await tessera.Session.open(config(), { storage, launcher: redirectFollower().launcher });
    session.onEvent((e) => events.push(e));
    const error = await rejection(session.login());
    assert.equal(error.code, 'storage');
    assert.match(error.message, /quota exceeded/);
    assert.ok(events.some((e) => e.type === 'storage_failed'));
    session.close();
  });

  test('wrong arguments and configuration reject with their own codes', async () => {
    await assert.rejects(tessera.Session.open({ client_id: 'x', clientSecret: 'y' }, { storage: memoryStorage() }),
      (e) => e.code === 'config' && /clientSecret/.test(e.message));
    await assert.rejects(tessera.Session.open(config({ client_secret: 'not-secret-in-a-browser' }), { storage: memoryStorage() }),
      (e) => e.code === 'config' && /public client/.test(e.message) && !e.message.includes('not-secret-in-a-browser'));
    const session = await tessera.Session.open(config(), { storage: memoryStorage() });
    await assert.rejects(session.getAccessToken({ minTtlSecs: -1 }), { code: 'invalid_argument' });
    await assert.rejects(session.login({ method: 'paste' }), { code: 'invalid_argument' });
    const error = await rejection(session.login());
    assert.equal(error.code, 'interrupted', 'no launcher outside an extension');
    assert.match(error.message, /options\.launcher/);
    session.close();
  });

  test('a token the API rejected is refreshed once; an older one is not', async () => {
    const { session } = await signedIn();
    const rejected = await session.getAccessToken();
    const before = (await provider.counters()).token_requests.refresh_token;
    const fresh = await session.tokenRejected(rejected);
    assert.notEqual(fresh, rejected);
    assert.equal(await session.tokenRejected(rejected), fresh, 'a newer token exists already');
    assert.equal((await provider.counters()).token_requests.refresh_token - before, 1);
    session.close();
  });
});
