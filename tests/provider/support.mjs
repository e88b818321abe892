// Helpers of the provider's smoke tests (*.test.mjs): start and stop the server, and
// drive it as a client would (authorization by hand-followed redirects, token requests,
// the device flow, its test-only routes).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const SERVER = path.join(HERE, 'server.mjs');
export const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
export const TEST_TIMEOUT = { timeout: 20_000 };

export async function startServer(env = {}) {
  const child = spawn(process.execPath, [SERVER], {
    cwd: HERE,
    env: { ...process.env, PORT: '0', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  let stdout = '';
  const ready = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no READY line within 10s; stderr:\n${stderr}`)), 10_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited early (${code}); stderr:\n${stderr}`));
    });
    child.stdout.on('data', (d) => {
      stdout += d;
      const nl = stdout.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        resolve(stdout.slice(0, nl));
      }
    });
  });
  const m = /^READY (\{.*\})$/.exec(ready);
  assert.ok(m, `unexpected first stdout line: ${JSON.stringify(ready)}`);
  const info = JSON.parse(m[1]);
  return {
    child, ...info, readyLine: ready, stderr: () => stderr, stdout: () => stdout,
  };
}

export async function stopServer(srv) {
  if (!srv || srv.child.exitCode !== null || srv.child.signalCode !== null) return;
  const exited = once(srv.child, 'exit');
  srv.child.kill('SIGTERM');
  const timer = setTimeout(() => srv.child.kill('SIGKILL'), 3_000);
  await exited;
  clearTimeout(timer);
}

export function b64url(buf) {
  return Buffer.from(buf).toString('base64url');
}

export function pkce() {
  const verifier = b64url(crypto.randomBytes(32));
  const challenge = b64url(crypto.createHash('sha256').update(verifier).digest());
  return { verifier, challenge };
}

export function decodeJwt(jwt) {
  const [, payload] = jwt.split('.');
  return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
}

export function randomPort() {
  return 20_000 + crypto.randomInt(40_000);
}

export async function http(url, init = {}) {
  return fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(5_000), ...init });
}

// Minimal cookie jar (only for the logout test; everything else is cookie-less).
export class Jar {
  #c = new Map();

  store(res) {
    for (const sc of res.headers.getSetCookie()) {
      const [pair] = sc.split(';');
      const i = pair.indexOf('=');
      const name = pair.slice(0, i).trim();
      const value = pair.slice(i + 1).trim();
      if (/expires=Thu, 01 Jan 1970/i.test(sc) || value === '') this.#c.delete(name);
      else this.#c.set(name, value);
    }
  }

  header() {
    return [...this.#c].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

// Follow redirects by hand until Location points at the client's redirect URI
// (origin + path match); returns that URL. Never contacts the redirect URI.
export async function authorize(srv, {
  clientId = 'tessera-cli',
  redirectUri,
  scope = 'openid offline_access profile email',
  state = b64url(crypto.randomBytes(12)),
  loginHint,
  challenge,
  extra = {},
  jar,
} = {}) {
  const params = new URLSearchParams({
    client_id: clientId,
    response_type: 'code',
    redirect_uri: redirectUri,
    scope,
    state,
    ...(challenge ? { code_challenge: challenge, code_challenge_method: 'S256' } : {}),
    ...(loginHint ? { login_hint: loginHint } : {}),
    ...extra,
  });
  const target = new URL(redirectUri);
  let url = `${srv.issuer}/auth?${params}`;
  const hops = [];
  for (let i = 0; i < 10; i += 1) {
    const res = await http(url, jar ? { headers: { cookie: jar.header() } } : {});
    jar?.store(res);
    hops.push(`${res.status} ${url}`);
    const loc = res.headers.get('location');
    if (!loc) {
      const body = await res.text();
      return { final: null, status: res.status, body, hops, state };
    }
    await res.arrayBuffer();
    const next = new URL(loc, url);
    if (next.origin === target.origin && next.pathname === target.pathname) {
      return { final: next, hops, state };
    }
    url = next.href;
  }
  throw new Error(`too many redirects:\n${hops.join('\n')}`);
}

export async function tokenRequest(srv, form) {
  const res = await http(`${srv.issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form),
  });
  return { status: res.status, body: await res.json() };
}

export async function postJson(srv, route, body = {}) {
  const res = await http(`${srv.issuer}${route}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

export async function getJson(srv, route) {
  const res = await http(`${srv.issuer}${route}`);
  return { status: res.status, body: await res.json() };
}

export async function loginAndExchange(srv, { redirectUri, clientId = 'tessera-cli', scope } = {}) {
  const { verifier, challenge } = pkce();
  const r = await authorize(srv, {
    clientId, redirectUri, scope, challenge,
  });
  assert.ok(r.final, `no redirect to client: ${r.status} ${r.body}\n${r.hops.join('\n')}`);
  const code = r.final.searchParams.get('code');
  assert.ok(code, `no code in ${r.final}`);
  const tok = await tokenRequest(srv, {
    grant_type: 'authorization_code',
    client_id: clientId,
    code,
    redirect_uri: redirectUri,
    code_verifier: verifier,
  });
  assert.equal(tok.status, 200, JSON.stringify(tok.body));
  return tok.body;
}

export async function deviceAuthorize(srv, scope = 'openid offline_access email') {
  const res = await http(`${srv.issuer}/device/auth`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_id: 'tessera-cli', scope }),
  });
  assert.equal(res.status, 200);
  return res.json();
}

export function devicePoll(srv, deviceCode) {
  return tokenRequest(srv, { grant_type: DEVICE_GRANT, client_id: 'tessera-cli', device_code: deviceCode });
}
