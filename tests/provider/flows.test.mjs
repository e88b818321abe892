// The provider as the e2e tests use it: discovery, the code flow with PKCE, refresh
// rotation, the device flow, revocation and logout. Run: node --test (after npm ci).
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEVICE_GRANT,
  Jar,
  TEST_TIMEOUT,
  startServer,
  stopServer,
  pkce,
  decodeJwt,
  randomPort,
  http,
  authorize,
  tokenRequest,
  postJson,
  getJson,
  loginAndExchange,
  deviceAuthorize,
  devicePoll,
} from './support.mjs';

describe('tessera test provider', { timeout: 60_000 }, () => {
  let srv;
  before(async () => { srv = await startServer(); });
  after(async () => { await stopServer(srv); });

  test('READY line and discovery', TEST_TIMEOUT, async () => {
    assert.match(srv.readyLine, /^READY \{"issuer":"http:\/\/127\.0\.0\.1:\d+","port":\d+\}$/);
    assert.equal(srv.issuer, `http://127.0.0.1:${srv.port}`);
    assert.ok(srv.port > 0);

    const { status, body: d } = await getJson(srv, '/.well-known/openid-configuration');
    assert.equal(status, 200);
    assert.equal(d.issuer, srv.issuer);
    assert.equal(d.authorization_endpoint, `${srv.issuer}/auth`);
    assert.equal(d.token_endpoint, `${srv.issuer}/token`);
    assert.equal(d.device_authorization_endpoint, `${srv.issuer}/device/auth`);
    assert.equal(d.revocation_endpoint, `${srv.issuer}/token/revocation`);
    assert.equal(d.introspection_endpoint, `${srv.issuer}/token/introspection`);
    assert.equal(d.end_session_endpoint, `${srv.issuer}/session/end`);
    assert.equal(d.jwks_uri, `${srv.issuer}/jwks`);
    assert.equal(d.authorization_response_iss_parameter_supported, true);
    assert.deepEqual(d.code_challenge_methods_supported, ['S256']);
    assert.deepEqual(d.response_types_supported, ['code']);
    for (const s of ['openid', 'offline_access', 'profile', 'email']) {
      assert.ok(d.scopes_supported.includes(s), s);
    }
    for (const g of ['authorization_code', 'refresh_token', DEVICE_GRANT]) {
      assert.ok(d.grant_types_supported.includes(g), g);
    }

    const oauth = await getJson(srv, '/.well-known/oauth-authorization-server');
    // oidc-provider only serves the OIDC discovery document.
    assert.equal(oauth.status, 404);
    const health = await getJson(srv, '/test/health');
    assert.deepEqual(health.body, { ok: true, issuer: srv.issuer });
  });

  test('authorization code + PKCE with loopback redirect on an arbitrary port', TEST_TIMEOUT, async () => {
    const port = randomPort();
    const redirectUri = `http://127.0.0.1:${port}/callback`;
    const { verifier, challenge } = pkce();
    const r = await authorize(srv, { redirectUri, challenge, state: 'st-123' });
    assert.ok(r.final, `no redirect: ${r.status} ${r.body}\n${r.hops.join('\n')}`);
    assert.equal(r.final.origin, `http://127.0.0.1:${port}`);
    assert.equal(r.final.searchParams.get('state'), 'st-123');
    assert.equal(r.final.searchParams.get('iss'), srv.issuer);
    assert.equal(r.final.searchParams.get('error'), null);
    const code = r.final.searchParams.get('code');
    assert.ok(code);

    const tok = await tokenRequest(srv, {
      grant_type: 'authorization_code',
      client_id: 'tessera-cli',
      code,
      redirect_uri: redirectUri,
      code_verifier: verifier,
    });
    assert.equal(tok.status, 200, JSON.stringify(tok.body));
    assert.equal(tok.body.token_type, 'Bearer');
    assert.equal(tok.body.expires_in, 60);
    assert.ok(tok.body.access_token);
    assert.ok(tok.body.refresh_token);
    assert.ok(tok.body.id_token);
    const id = decodeJwt(tok.body.id_token);
    assert.equal(id.iss, srv.issuer);
    assert.equal(id.aud, 'tessera-cli');
    assert.equal(id.sub, 'alice');
    assert.equal(id.email, 'alice@example.test');
    assert.equal(id.name, 'Alice Example');

    // Without prompt=consent oidc-provider drops offline_access (OIDC Core
    // 11); a refresh token is issued anyway (issueRefreshToken customised).
    assert.equal(tok.body.scope, 'openid profile email');

    // userinfo works with the access token.
    const ui = await http(`${srv.issuer}/me`, { headers: { authorization: `Bearer ${tok.body.access_token}` } });
    assert.equal(ui.status, 200);
    assert.equal((await ui.json()).email, 'alice@example.test');

    // A code can be used only once; replaying it revokes what it issued.
    const again = await tokenRequest(srv, {
      grant_type: 'authorization_code',
      client_id: 'tessera-cli',
      code,
      redirect_uri: redirectUri,
      code_verifier: verifier,
    });
    assert.equal(again.status, 400);
    assert.equal(again.body.error, 'invalid_grant');
    assert.equal((await postJson(srv, '/test/introspect', { token: tok.body.access_token })).body.active, false);
    assert.equal((await postJson(srv, '/test/introspect', { token: tok.body.refresh_token })).body.active, false);
  });

  test('offline_access is granted with prompt=consent', TEST_TIMEOUT, async () => {
    const redirectUri = `http://127.0.0.1:${randomPort()}/callback`;
    const { verifier, challenge } = pkce();
    const r = await authorize(srv, { redirectUri, challenge, extra: { prompt: 'consent' } });
    assert.ok(r.final);
    const tok = await tokenRequest(srv, {
      grant_type: 'authorization_code',
      client_id: 'tessera-cli',
      code: r.final.searchParams.get('code'),
      redirect_uri: redirectUri,
      code_verifier: verifier,
    });
    assert.equal(tok.status, 200, JSON.stringify(tok.body));
    assert.equal(tok.body.scope, 'openid offline_access profile email');
    assert.ok(tok.body.refresh_token);
  });

  test('refresh token issued without offline_access; second registered redirect on any port', TEST_TIMEOUT, async () => {
    const tokens = await loginAndExchange(srv, {
      redirectUri: `http://127.0.0.1:${randomPort()}/oauth/callback`,
      scope: 'openid email',
    });
    assert.ok(tokens.refresh_token, 'refresh token must be issued even without offline_access');
    assert.equal(tokens.scope, 'openid email');
  });

  test('PKCE is required (S256 only) and redirect URIs are checked', TEST_TIMEOUT, async () => {
    const redirectUri = `http://127.0.0.1:${randomPort()}/callback`;
    const noPkce = await authorize(srv, { redirectUri });
    assert.ok(noPkce.final);
    assert.equal(noPkce.final.searchParams.get('error'), 'invalid_request');
    assert.equal(noPkce.final.searchParams.get('iss'), srv.issuer);

    const plain = await authorize(srv, {
      redirectUri, extra: { code_challenge: 'x'.repeat(43), code_challenge_method: 'plain' },
    });
    assert.ok(plain.final);
    assert.equal(plain.final.searchParams.get('error'), 'invalid_request');

    // Unregistered path: no redirect at all, an error page.
    const bad = await authorize(srv, { redirectUri: 'http://127.0.0.1:5555/other', challenge: pkce().challenge });
    assert.equal(bad.final, null);
    assert.equal(bad.status, 400);
    assert.match(bad.body, /redirect_uri/);

    // Web client (tessera-ext): exact match only -- its https redirect works,
    // a loopback port it did not register does not.
    const ext = await loginAndExchange(srv, {
      clientId: 'tessera-ext',
      redirectUri: 'https://abcdefghijklmnopabcdefghijklmnop.chromiumapp.org/',
    });
    assert.ok(ext.refresh_token);
    const extBad = await authorize(srv, {
      clientId: 'tessera-ext', redirectUri: 'http://127.0.0.1:5555/callback', challenge: pkce().challenge,
    });
    assert.equal(extBad.final, null);
    assert.equal(extBad.status, 400);
  });

  test('login_hint=deny ends with access_denied at the redirect URI', TEST_TIMEOUT, async () => {
    const redirectUri = `http://127.0.0.1:${randomPort()}/callback`;
    const r = await authorize(srv, {
      redirectUri, challenge: pkce().challenge, loginHint: 'deny', state: 'deny-state',
    });
    assert.ok(r.final, `no redirect: ${r.status} ${r.body}`);
    assert.equal(r.final.searchParams.get('error'), 'access_denied');
    assert.equal(r.final.searchParams.get('state'), 'deny-state');
    assert.equal(r.final.searchParams.get('iss'), srv.issuer);
    assert.equal(r.final.searchParams.get('code'), null);
  });

  test('refresh token rotation and reuse detection', TEST_TIMEOUT, async () => {
    const t0 = await loginAndExchange(srv, { redirectUri: `http://127.0.0.1:${randomPort()}/callback` });
    const rt0 = t0.refresh_token;

    const r1 = await tokenRequest(srv, { grant_type: 'refresh_token', client_id: 'tessera-cli', refresh_token: rt0 });
    assert.equal(r1.status, 200, JSON.stringify(r1.body));
    const rt1 = r1.body.refresh_token;
    assert.ok(rt1);
    assert.notEqual(rt1, rt0, 'refresh token must rotate');
    assert.ok(r1.body.access_token);
    assert.ok(r1.body.id_token);

    const r2 = await tokenRequest(srv, { grant_type: 'refresh_token', client_id: 'tessera-cli', refresh_token: rt1 });
    assert.equal(r2.status, 200, JSON.stringify(r2.body));
    const rt2 = r2.body.refresh_token;
    assert.notEqual(rt2, rt1);
    const at2 = r2.body.access_token;
    assert.equal((await postJson(srv, '/test/introspect', { token: at2 })).body.active, true);

    // Reuse of an already-rotated token -> invalid_grant, and the grant is revoked ...
    const reuse = await tokenRequest(srv, { grant_type: 'refresh_token', client_id: 'tessera-cli', refresh_token: rt1 });
    assert.equal(reuse.status, 400);
    assert.equal(reuse.body.error, 'invalid_grant');
    // ... so the newest refresh token and access token are dead too.
    const after = await tokenRequest(srv, { grant_type: 'refresh_token', client_id: 'tessera-cli', refresh_token: rt2 });
    assert.equal(after.status, 400);
    assert.equal(after.body.error, 'invalid_grant');
    assert.equal((await postJson(srv, '/test/introspect', { token: rt2 })).body.active, false);
    assert.equal((await postJson(srv, '/test/introspect', { token: at2 })).body.active, false);
  });

  test('device flow: pending -> approve -> tokens; deny; slow_down', TEST_TIMEOUT, async () => {
    const da = await deviceAuthorize(srv);
    assert.ok(da.device_code);
    assert.match(da.user_code, /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
    assert.equal(da.verification_uri, `${srv.issuer}/device`);
    assert.ok(da.verification_uri_complete.startsWith(`${srv.issuer}/device?user_code=`));
    assert.equal(da.expires_in, 600);
    assert.equal(da.interval, 1);

    const pending = await devicePoll(srv, da.device_code);
    assert.equal(pending.status, 400);
    assert.equal(pending.body.error, 'authorization_pending');

    // slow_down control: next 2 device_code token requests get slow_down.
    assert.deepEqual((await postJson(srv, '/test/slow_down', { count: 2 })).body, { slow_down_pending: 2 });
    for (let i = 0; i < 2; i += 1) {
      const sd = await devicePoll(srv, da.device_code);
      assert.equal(sd.status, 400);
      assert.equal(sd.body.error, 'slow_down');
    }
    assert.equal((await devicePoll(srv, da.device_code)).body.error, 'authorization_pending');

    const unknown = await postJson(srv, '/test/device/approve', { user_code: 'ZZZZ-ZZZZ' });
    assert.equal(unknown.status, 404);

    // Lower case / no dash is accepted, like the provider's own form.
    const approved = await postJson(srv, '/test/device/approve', { user_code: da.user_code.toLowerCase().replace('-', '') });
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    assert.equal(approved.body.approved, true);
    const twice = await postJson(srv, '/test/device/approve', { user_code: da.user_code });
    assert.equal(twice.status, 409);

    const tok = await devicePoll(srv, da.device_code);
    assert.equal(tok.status, 200, JSON.stringify(tok.body));
    assert.ok(tok.body.access_token);
    assert.ok(tok.body.refresh_token);
    assert.equal(tok.body.expires_in, 60);
    assert.equal(decodeJwt(tok.body.id_token).sub, 'alice');
    assert.equal(decodeJwt(tok.body.id_token).email, 'alice@example.test');
    assert.equal((await postJson(srv, '/test/introspect', { token: tok.body.access_token })).body.active, true);
    // Device-flow refresh tokens rotate too.
    const rr = await tokenRequest(srv, { grant_type: 'refresh_token', client_id: 'tessera-cli', refresh_token: tok.body.refresh_token });
    assert.equal(rr.status, 200, JSON.stringify(rr.body));
    assert.notEqual(rr.body.refresh_token, tok.body.refresh_token);
    // Device code is single use; replaying it revokes the grant.
    assert.equal((await devicePoll(srv, da.device_code)).body.error, 'invalid_grant');
    assert.equal((await postJson(srv, '/test/introspect', { token: rr.body.refresh_token })).body.active, false);

    // Deny (form-encoded body works too).
    const db = await deviceAuthorize(srv);
    const denyRes = await http(`${srv.issuer}/test/device/deny`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ user_code: db.user_code }),
    });
    assert.equal(denyRes.status, 200);
    assert.equal((await denyRes.json()).denied, true);
    const denied = await devicePoll(srv, db.device_code);
    assert.equal(denied.status, 400);
    assert.equal(denied.body.error, 'access_denied');
  });

  test('device flow through the provider\'s own /device pages (browser-like, with cookies)', TEST_TIMEOUT, async () => {
    const jar = new Jar();
    const go = async (url, init = {}) => {
      const res = await http(url, { ...init, headers: { cookie: jar.header(), ...(init.headers ?? {}) } });
      jar.store(res);
      return res;
    };
    const da = await deviceAuthorize(srv);
    let res = await go(da.verification_uri_complete);
    let html = await res.text();
    assert.equal(res.status, 200);
    assert.doesNotMatch(html, /https?:\/\/(?!127\.0\.0\.1)/, 'pages must not reference external hosts');
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)?.[1];
    assert.ok(xsrf, html);
    res = await go(`${srv.issuer}/device`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ xsrf, user_code: da.user_code, confirm: 'yes' }),
    });
    let loc = res.headers.get('location');
    for (let i = 0; loc && i < 10; i += 1) {
      await res.arrayBuffer();
      res = await go(new URL(loc, srv.issuer).href);
      loc = res.headers.get('location');
    }
    html = await res.text();
    assert.equal(res.status, 200);
    assert.match(html, /id="device-success"/);
    const tok = await devicePoll(srv, da.device_code);
    assert.equal(tok.status, 200, JSON.stringify(tok.body));
    assert.equal(decodeJwt(tok.body.id_token).sub, 'alice');
  });

  test('revocation: revoking the refresh token makes it (and the grant) inactive', TEST_TIMEOUT, async () => {
    const t = await loginAndExchange(srv, { redirectUri: `http://127.0.0.1:${randomPort()}/callback` });
    const rtActive = await postJson(srv, '/test/introspect', { token: t.refresh_token });
    assert.equal(rtActive.status, 200);
    assert.equal(rtActive.body.active, true);
    assert.equal(rtActive.body.client_id, 'tessera-cli');
    assert.equal(rtActive.body.sub, 'alice');
    const atActive = await postJson(srv, '/test/introspect', { token: t.access_token, token_type_hint: 'access_token' });
    assert.equal(atActive.body.active, true);
    assert.equal(atActive.body.token_type, 'Bearer');

    const rev = await http(`${srv.issuer}/token/revocation`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: 'tessera-cli', token: t.refresh_token, token_type_hint: 'refresh_token' }),
    });
    assert.equal(rev.status, 200);

    assert.equal((await postJson(srv, '/test/introspect', { token: t.refresh_token })).body.active, false);
    assert.equal((await postJson(srv, '/test/introspect', { token: t.access_token })).body.active, false);
    const use = await tokenRequest(srv, { grant_type: 'refresh_token', client_id: 'tessera-cli', refresh_token: t.refresh_token });
    assert.equal(use.body.error, 'invalid_grant');
    // Revoking an unknown token is still 200 (RFC 7009).
    const rev2 = await http(`${srv.issuer}/token/revocation`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: 'tessera-cli', token: 'nope' }),
    });
    assert.equal(rev2.status, 200);
    assert.equal((await postJson(srv, '/test/introspect', { token: 'nope' })).body.active, false);
  });

  test('RP-initiated logout (end_session) with a browser-like cookie jar', TEST_TIMEOUT, async () => {
    const jar = new Jar();
    const redirectUri = `http://127.0.0.1:${randomPort()}/callback`;
    const { verifier, challenge } = pkce();
    const r = await authorize(srv, { redirectUri, challenge, jar });
    assert.ok(r.final);
    const tok = await tokenRequest(srv, {
      grant_type: 'authorization_code',
      client_id: 'tessera-cli',
      code: r.final.searchParams.get('code'),
      redirect_uri: redirectUri,
      code_verifier: verifier,
    });
    assert.equal(tok.status, 200);

    // With an existing session: native clients always get a consent
    // interaction, which is answered automatically as well ...
    const again = await authorize(srv, { redirectUri, challenge: pkce().challenge, jar });
    assert.ok(again.final?.searchParams.get('code'), again.hops.join('\n'));
    assert.ok(again.hops.some((h) => h.includes('/interaction/')));
    // ... and login_hint=deny still denies.
    const denied = await authorize(srv, {
      redirectUri, challenge: pkce().challenge, jar, loginHint: 'deny',
    });
    assert.equal(denied.final?.searchParams.get('error'), 'access_denied');

    const q = new URLSearchParams({
      id_token_hint: tok.body.id_token,
      post_logout_redirect_uri: 'http://127.0.0.1/logged-out',
      state: 'bye',
    });
    const page = await http(`${srv.issuer}/session/end?${q}`, { headers: { cookie: jar.header() } });
    jar.store(page);
    assert.equal(page.status, 200);
    const html = await page.text();
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)?.[1];
    assert.ok(xsrf, html);
    assert.match(html, /name="logout" value="yes"/);
    const confirm = await http(`${srv.issuer}/session/end/confirm`, {
      method: 'POST',
      headers: { cookie: jar.header(), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ xsrf, logout: 'yes' }),
    });
    assert.equal(confirm.status, 303);
    const loc = new URL(confirm.headers.get('location'));
    assert.equal(`${loc.origin}${loc.pathname}`, 'http://127.0.0.1/logged-out');
    assert.equal(loc.searchParams.get('state'), 'bye');
    // Without offline_access the grant does not survive the logout.
    const rt = await tokenRequest(srv, { grant_type: 'refresh_token', client_id: 'tessera-cli', refresh_token: tok.body.refresh_token });
    assert.equal(rt.body.error, 'invalid_grant');
  });

});
