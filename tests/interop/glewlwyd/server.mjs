#!/usr/bin/env node
// glewlwyd 2.7.5 (Debian's package) as an authorization server for tessera's end-to-end
// tests. This only sets it up the way its documentation says and starts it:
//   - a fresh SQLite database from the package's own init script, in a temp directory;
//   - a configuration file binding 127.0.0.1 on a free port;
//   - through glewlwyd's admin API (as the admin user of the init script): an OIDC plugin
//     instance named `oidc` (RS256 keys made here; code, refresh and device grants; PKCE;
//     refresh tokens that rotate on every use), the user alice and the public client
//     tessera-cli with the redirect URI http://127.0.0.1:$CALLBACK_PORT/callback.
// It prints `READY {"issuer": ..., "database": ...}` and stops glewlwyd when its stdin
// closes. Environment: ACCESS_TOKEN_TTL (seconds, default 3600), GLEWLWYD_LOG=1 for
// glewlwyd's log on stderr. The issuer is http://127.0.0.1:PORT/api/oidc.

import { spawn, execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

const ttl = Number(process.env.ACCESS_TOKEN_TTL ?? 3600);
const callbackPort = Number(process.env.CALLBACK_PORT ?? 8400);
const dir = mkdtempSync(join(tmpdir(), 'tessera-glewlwyd-'));
const database = join(dir, 'glewlwyd.db');

const port = await new Promise((resolve) => {
  const probe = createServer().listen(0, '127.0.0.1', () => {
    const { port } = probe.address();
    probe.close(() => resolve(port));
  });
});
const origin = `http://127.0.0.1:${port}`;

execFileSync('sqlite3', [database], {
  input: gunzipSync(readFileSync('/usr/share/doc/glewlwyd/database/init.sqlite3.sql.gz')),
});
// The package's sample configuration, with the port, the address, the database and
// cookies for plain http changed.
const config = gunzipSync(readFileSync('/usr/share/doc/glewlwyd/glewlwyd.conf.sample.gz'))
  .toString()
  .replace(/^port=.*$/m, `port=${port}`)
  .replace(/^external_url=.*$/m, `external_url="${origin}"`)
  .replace(/^#bind_address=.*$/m, 'bind_address="127.0.0.1"')
  .replace(/^log_level=.*$/m, `log_level="${process.env.GLEWLWYD_LOG ? 'DEBUG' : 'ERROR'}"`)
  .replace(/^cookie_secure=1$/m, 'cookie_secure=0')
  .replace(/^cookie_domain=.*$/m, 'cookie_domain=""')
  .replace('path = "/var/cache/glewlwyd/glewlwyd.db"', `path = "${database}"`);
writeFileSync(join(dir, 'glewlwyd.conf'), config);

const glewlwyd = spawn('glewlwyd', ['--config-file', join(dir, 'glewlwyd.conf')], {
  // Its log (on its stdout) goes to our stderr: our stdout is for the READY line.
  stdio: ['ignore', process.env.GLEWLWYD_LOG ? 2 : 'ignore', process.env.GLEWLWYD_LOG ? 2 : 'ignore'],
});
const stop = () => {
  glewlwyd.kill();
  rmSync(dir, { recursive: true, force: true });
  process.exit(0);
};
process.on('uncaughtException', (error) => {
  console.error(error);
  glewlwyd.kill();
  process.exit(1);
});
glewlwyd.on('exit', (code) => {
  console.error(`glewlwyd exited (${code})`);
  process.exit(1);
});

let cookie = '';
async function api(method, path, body) {
  const response = await fetch(`${origin}/api${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...(cookie ? { cookie } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const setCookie = response.headers.getSetCookie?.()[0];
  if (setCookie) cookie = setCookie.split(';')[0];
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: HTTP ${response.status}: ${text}`);
  return text;
}

for (let i = 0; ; i++) {
  try {
    await api('POST', '/auth/', { username: 'admin', password: 'password' });
    break;
  } catch (error) {
    if (i > 100) throw error;
    await new Promise((r) => setTimeout(r, 100));
  }
}

const { privateKey, publicKey } = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  publicKeyEncoding: { type: 'spki', format: 'pem' },
});

for (const [name, description] of [['email', 'Email'], ['profile', 'Profile'], ['offline_access', 'Offline access']]) {
  await api('POST', '/scope/', { name, display_name: description, description, password_required: false });
}
await api('POST', '/mod/plugin/', {
  module: 'oidc',
  name: 'oidc',
  display_name: 'OpenID Connect',
  enabled: true,
  parameters: {
    iss: `${origin}/api/oidc`,
    'jwt-type': 'rsa',
    'jwt-key-size': '256',
    key: privateKey,
    cert: publicKey,
    'access-token-duration': ttl,
    'refresh-token-duration': 1209600,
    'code-duration': 600,
    'refresh-token-rolling': true,
    'refresh-token-one-use': 'always',
    'allow-non-oidc': true,
    'auth-type-code-enabled': true,
    'auth-type-token-enabled': false,
    'auth-type-id-token-enabled': true,
    'auth-type-none-enabled': false,
    'auth-type-password-enabled': false,
    'auth-type-client-enabled': false,
    'auth-type-refresh-enabled': true,
    'auth-type-device-enabled': true,
    'device-authorization-expiration': 600,
    'device-authorization-interval': 1,
    'pkce-allowed': true,
    'pkce-method-plain-allowed': false,
    'introspection-revocation-allowed': true,
    // "Required scopes in the access token": a public client has no other way to
    // authenticate its revocation (with none, /revoke answers it 401 with an empty body).
    'introspection-revocation-auth-scope': ['openid'],
    'introspection-revocation-allow-target-client': true,
    'scope': [],
    'claims': [],
    'session-cookie-name': 'GLEWLWYD2_OIDC_SID',
    'session-cookie-expiration': 2419200,
    'name-claim': 'on-demand',
    'name-claim-scope': ['profile'],
    'email-claim': 'on-demand',
    'email-claim-scope': ['email'],
    'session-management-allowed': true,
  },
});
await api('POST', '/user/', {
  username: 'alice',
  name: 'Alice Example',
  email: 'alice@example.test',
  password: 'alice-password',
  scope: ['openid', 'email', 'profile', 'offline_access'],
  enabled: true,
});
await api('POST', '/client/', {
  client_id: 'tessera-cli',
  name: 'tessera',
  confidential: false,
  enabled: true,
  // glewlwyd compares redirect URIs exactly, port included: tessera logs in with --port.
  redirect_uri: [`http://127.0.0.1:${callbackPort}/callback`],
  authorization_type: ['code', 'refresh_token', 'device_authorization'],
  scope: [],
});

console.log(`READY ${JSON.stringify({ issuer: `${origin}/api/oidc`, database })}`);
process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.stdin.resume();
process.on('SIGTERM', stop);
