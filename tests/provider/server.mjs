#!/usr/bin/env node
// Test-only OAuth 2.0 / OpenID Connect authorization server for tessera's
// end-to-end tests, built on panva's `oidc-provider` (in-memory adapter).
//
// NEVER use this outside tests: it logs in a fixed account without asking
// anybody, grants every requested scope, and exposes unauthenticated /test/*
// control routes.
//
// Usage: node server.mjs [port]        (or PORT=<port>; default 0 = ephemeral)
// Once listening it prints exactly one line to stdout:
//   READY {"issuer":"http://127.0.0.1:<port>","port":<port>}
// Everything else goes to stderr. See README.md.

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';

// Some oidc-provider notices are written with console.info/console.log, i.e. to
// stdout. stdout is reserved for the READY line, so route them to stderr
// before the library is loaded.
console.log = (...args) => console.error(...args);
console.info = (...args) => console.error(...args);

const { default: Provider, interactionPolicy } = await import('oidc-provider');
const { createTestMiddleware, TEST_ACCOUNT } = await import('./control-routes.mjs');
// The in-memory adapter keeps 1000 entries by default (about 150 signed-in sessions);
// load tests sign in hundreds of users, whose grants must not be evicted.
{
  const { setStorage } = await import('oidc-provider/lib/adapters/memory_adapter.js');
  const { default: QuickLRU } = await import('quick-lru');
  setStorage(new QuickLRU({ maxSize: envInt('MEMORY_ADAPTER_ENTRIES', 100000) }));
}

const HOST = '127.0.0.1'; // never bind anything else

function log(...args) {
  console.error('[test-provider]', ...args);
}

function envInt(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    throw new Error(`${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
  }
  return n;
}

function portFromArgsOrEnv() {
  const raw = process.argv[2] ?? process.env.PORT ?? '0';
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    throw new Error(`invalid port ${JSON.stringify(raw)}`);
  }
  return n;
}

const ACCESS_TOKEN_TTL = envInt('ACCESS_TOKEN_TTL', 60);
const REFRESH_TOKEN_TTL = envInt('REFRESH_TOKEN_TTL', 24 * 60 * 60);
const DEVICE_CODE_TTL = envInt('DEVICE_CODE_TTL', 600);
const ID_TOKEN_TTL = envInt('ID_TOKEN_TTL', 3600);
// RFC 8628 `interval` added to device authorization responses (oidc-provider
// omits it, which means clients fall back to 5 s). "none" omits it.
const DEVICE_POLL_INTERVAL = process.env.DEVICE_POLL_INTERVAL === 'none'
  ? undefined
  : envInt('DEVICE_POLL_INTERVAL', 1);

const SUPPORTED_SCOPES = ['openid', 'offline_access', 'profile', 'email', 'groups'];

const INTROSPECTOR = {
  client_id: 'tessera-introspector',
  client_secret: 'tessera-introspector-secret',
};

// ID_TOKEN_ALG: how tessera-cli's ID tokens are signed (RS256 by default; PS256, ES256,
// EdDSA: the provider holds a key for each).
const ID_TOKEN_ALG = process.env.ID_TOKEN_ALG || 'RS256';

function defaultClients() {
  return [
    {
      client_id: 'tessera-cli',
      client_name: 'tessera CLI (test)',
      application_type: 'native',
      id_token_signed_response_alg: ID_TOKEN_ALG,
      token_endpoint_auth_method: 'none',
      grant_types: [
        'authorization_code',
        'refresh_token',
        'urn:ietf:params:oauth:grant-type:device_code',
      ],
      response_types: ['code'],
      // Native clients with http loopback redirect URIs match on any port.
      redirect_uris: [
        'http://127.0.0.1/callback',
        'http://127.0.0.1:8487/oauth/callback',
        // tessera serve's callback route for the profile `test` (tests, make demo).
        'http://127.0.0.1/auth/test/callback',
      ],
      post_logout_redirect_uris: [
        'http://127.0.0.1/logged-out',
        'http://127.0.0.1:8487/logged-out',
      ],
    },
    {
      client_id: 'tessera-ext',
      client_name: 'tessera browser extension (test)',
      application_type: 'web',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      // Web clients: exact match, including the port.
      redirect_uris: [
        'https://abcdefghijklmnopabcdefghijklmnop.chromiumapp.org/',
        'http://127.0.0.1/callback',
      ],
      post_logout_redirect_uris: [
        'https://abcdefghijklmnopabcdefghijklmnop.chromiumapp.org/logged-out',
      ],
    },
    {
      ...INTROSPECTOR,
      client_name: 'test introspection client',
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: [],
      response_types: [],
      redirect_uris: [],
    },
  ];
}

// CLIENTS_JSON: a JSON array of client metadata objects. An entry whose
// client_id matches a default client replaces it; other entries are added.
function loadClients() {
  const clients = defaultClients();
  const raw = process.env.CLIENTS_JSON;
  if (!raw) return clients;
  const extra = JSON.parse(raw);
  if (!Array.isArray(extra)) throw new Error('CLIENTS_JSON must be a JSON array');
  for (const c of extra) {
    if (!c || typeof c.client_id !== 'string') throw new Error('CLIENTS_JSON entries need a client_id');
    const i = clients.findIndex((d) => d.client_id === c.client_id);
    if (i >= 0) clients[i] = c; else clients.push(c);
  }
  return clients;
}

function signingKeys() {
  const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey
    .export({ format: 'jwk' });
  const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
    .export({ format: 'jwk' });
  const ed = crypto.generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' });
  return [
    { ...rsa, kid: 'test-rs256', use: 'sig', alg: 'RS256' },
    // The same RSA key, published a second time for PS256 (a JWK names one alg).
    { ...rsa, kid: 'test-ps256', use: 'sig', alg: 'PS256' },
    { ...ec, kid: 'test-es256', use: 'sig', alg: 'ES256' },
    { ...ed, kid: 'test-eddsa', use: 'sig', alg: 'EdDSA' },
  ];
}

function interactions(issuer) {
  const { base, Check } = interactionPolicy;
  const policy = base();
  // login_hint=deny always goes through an interaction (even with an existing
  // session), where control-routes.mjs answers access_denied.
  policy.get('login').checks.push(new Check(
    'test_login_hint_deny',
    'login_hint=deny requests a (denied) interaction',
    (ctx) => ctx.oidc.params.login_hint === 'deny',
  ));
  return {
    policy,
    url: (ctx, interaction) => `${issuer}/interaction/${interaction.uid}`,
  };
}

// Minimal self-contained HTML (the library's default pages pull web fonts from
// the internet, which a headless browser in tests must not try to reach).
function page(title, body) {
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${title}</title></head><body><h1>${title}</h1>${body}</body></html>`;
}

const escapeHtml = (v) => String(v).replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);

function configuration(issuer, clients) {
  return {
    clients,
    jwks: { keys: signingKeys() },
    // All cookies unsigned: control-routes.mjs supplies the interaction resume
    // cookie for cookie-less user agents (curl, fetch).
    cookies: { keys: [] },
    findAccount: async (ctx, id) => (id === TEST_ACCOUNT.sub
      ? { accountId: id, claims: async () => ({ ...TEST_ACCOUNT }) }
      : undefined),
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'given_name', 'family_name', 'preferred_username'],
      groups: ['groups'],
    },
    scopes: SUPPORTED_SCOPES,
    responseTypes: ['code'],
    // Put scope-granted claims (email, name) into the ID token too.
    conformIdTokenClaims: false,
    interactions: interactions(issuer),
    pkce: {
      methods: ['S256'],
      required: () => true,
    },
    features: {
      devInteractions: { enabled: false },
      deviceFlow: {
        enabled: true,
        async userCodeInputSource(ctx, form, out, err) {
          const msg = err ? `<p id="error">${escapeHtml(out?.error_description ?? 'error')}</p>` : '<p>Enter the code displayed on your device</p>';
          ctx.body = page('Device sign-in', `${msg}${form}<button type="submit" form="op.deviceInputForm">Continue</button>`);
        },
        async userCodeConfirmSource(ctx, form, client, deviceInfo, userCode) {
          ctx.body = page('Confirm device', `<p>${escapeHtml(client.clientName ?? client.clientId)}: <code id="user-code">${escapeHtml(userCode)}</code></p>${form}<button type="submit" form="op.deviceConfirmForm">Continue</button><button type="submit" form="op.deviceConfirmForm" value="yes" name="abort">Abort</button>`);
        },
        async successSource(ctx) {
          ctx.body = page('Sign-in success', '<p id="device-success">You can return to your device.</p>');
        },
      },
      revocation: { enabled: true },
      introspection: { enabled: true },
      userinfo: { enabled: true },
      // OIDC Core §5.5: claims asked for in UserInfo only (the e2e test of `status`'s
      // identity from UserInfo).
      claimsParameter: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        // Auto-confirm the logout in a browser (no human in tests).
        async logoutSource(ctx, form) {
          const withConfirm = form.replace(
            '</form>',
            '<input type="hidden" name="logout" value="yes"/><button type="submit">Sign out</button></form>',
          );
          ctx.body = page('Sign out', `${withConfirm}<script>document.forms[0].submit()</script>`);
        },
        async postLogoutSuccessSource(ctx) {
          ctx.body = page('Signed out', '<p id="logout-success">You are signed out.</p>');
        },
      },
    },
    // Always issue a refresh token to clients allowed to use the grant, even
    // without offline_access (default requires offline_access).
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    // Rotate on every use. Reusing a rotated (consumed) refresh token makes
    // oidc-provider revoke the whole grant.
    rotateRefreshToken: true,
    // Test-only: any origin may make CORS requests (browser extension tests).
    clientBasedCORS: () => true,
    ttl: {
      AccessToken: ACCESS_TOKEN_TTL,
      AuthorizationCode: 60,
      DeviceCode: DEVICE_CODE_TTL,
      IdToken: ID_TOKEN_TTL,
      RefreshToken: REFRESH_TOKEN_TTL,
      Grant: Math.max(REFRESH_TOKEN_TTL, 14 * 24 * 60 * 60),
      Interaction: 600,
      Session: 24 * 60 * 60,
    },
    renderError: async (ctx, out, error) => {
      ctx.type = 'html';
      ctx.body = page(`Error ${ctx.status}`, `<pre id="error">${
        Object.entries(out).map(([k, v]) => `${k}: ${escapeHtml(v)}`).join('\n')
      }</pre>`);
      log('rendered error page', JSON.stringify(out), error?.message ?? '');
    },
  };
}

// ---------------------------------------------------------------------------

let handler = (req, res) => {
  res.statusCode = 503;
  res.end('starting');
};
const server = http.createServer((req, res) => handler(req, res));
server.keepAliveTimeout = 5_000;

let shuttingDown = false;
function shutdown(reason, code = 0) {
  if (shuttingDown) return;
  shuttingDown = true;
  log(`shutting down (${reason})`);
  server.close(() => process.exit(code));
  server.closeAllConnections?.();
  setTimeout(() => process.exit(code), 1_000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('SIGHUP', () => shutdown('SIGHUP'));

// Exit when the parent closes our stdin (e.g. the test process died). Only
// when stdin is a pipe or socket: /dev/null or a TTY would end immediately /
// never. EXIT_ON_STDIN_CLOSE=0 disables, =1 forces.
function watchStdin() {
  const mode = process.env.EXIT_ON_STDIN_CLOSE;
  if (mode === '0') return;
  let watch = mode === '1';
  if (!watch) {
    try {
      const st = fs.fstatSync(0);
      watch = st.isFIFO() || st.isSocket();
    } catch {
      watch = false;
    }
  }
  if (!watch) return;
  process.stdin.on('data', () => {});
  process.stdin.on('end', () => shutdown('stdin closed'));
  process.stdin.on('close', () => shutdown('stdin closed'));
  process.stdin.on('error', () => shutdown('stdin error'));
  process.stdin.resume();
}

const port = portFromArgsOrEnv();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(port, HOST, resolve);
});
const actualPort = server.address().port;
const issuer = `http://${HOST}:${actualPort}`;

const provider = new Provider(issuer, configuration(issuer, loadClients()));
provider.use(createTestMiddleware(provider, {
  issuer,
  introspector: INTROSPECTOR,
  supportedScopes: SUPPORTED_SCOPES,
  devicePollInterval: DEVICE_POLL_INTERVAL,
  log,
}));
provider.on('server_error', (ctx, err) => log('server_error', err));
for (const ev of ['grant.error', 'authorization.error', 'revocation.error', 'introspection.error', 'end_session.error', 'userinfo.error']) {
  provider.on(ev, (ctx, err) => log(ev, err.error ?? err.name, err.error_description ?? err.message, err.error_detail ?? ''));
}
if (process.env.LOG_REQUESTS === '1') {
  provider.use(async (ctx, next) => {
    await next();
    log(ctx.method, ctx.originalUrl, '->', ctx.status);
  });
}

handler = provider.callback();
watchStdin();

process.stdout.write(`READY ${JSON.stringify({ issuer, port: actualPort })}\n`);
log(`listening on ${issuer} (access token ttl ${ACCESS_TOKEN_TTL}s, device code ttl ${DEVICE_CODE_TTL}s)`);
