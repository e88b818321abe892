// Koa middleware for the test-only authorization server (see server.mjs):
//   - completes interactions automatically (login as the fixed test account,
//     grant everything requested; login_hint=deny -> access_denied),
//   - lets cookie-less user agents (curl -L, fetch) finish the flow,
//   - counts token/revocation/... requests, injects slow_down,
//   - serves the /test/* control routes documented in README.md.

export const TEST_ACCOUNT = Object.freeze({
  sub: 'alice',
  email: 'alice@example.test',
  email_verified: true,
  name: 'Alice Example',
  given_name: 'Alice',
  family_name: 'Example',
  preferred_username: 'alice',
  groups: ['engineering', 'release-managers'],
});

const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const MAX_BODY = 64 * 1024;

const epochTime = () => Math.floor(Date.now() / 1000);

function freshCounters() {
  return {
    token_requests: {
      authorization_code: 0,
      refresh_token: 0,
      device_code: 0,
      other: 0,
    },
    refresh_invalid_grant: 0,
    slow_down_sent: 0,
    revocation_requests: 0,
    device_authorization_requests: 0,
    authorization_requests: 0,
    jwks_requests: 0,
    refresh_held: 0,
    refresh_dropped: 0,
  };
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(Object.assign(new Error('request body too large'), { status: 413 }));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

// JSON or application/x-www-form-urlencoded body -> plain object.
async function parseBody(ctx) {
  const raw = (await readBody(ctx.req)).toString('utf8');
  if (!raw.trim()) return {};
  if (ctx.is('application/json') || /^\s*[{[]/.test(raw)) {
    try {
      const v = JSON.parse(raw);
      return v && typeof v === 'object' ? v : {};
    } catch {
      ctx.throw(400, 'invalid JSON body');
    }
  }
  return Object.fromEntries(new URLSearchParams(raw));
}

function json(ctx, status, body) {
  ctx.status = status;
  ctx.type = 'application/json';
  ctx.set('Cache-Control', 'no-store');
  ctx.body = body;
}

function requestedClaimNames(claimsParam) {
  if (!claimsParam) return [];
  try {
    const parsed = typeof claimsParam === 'string' ? JSON.parse(claimsParam) : claimsParam;
    return [...new Set([
      ...Object.keys(parsed?.id_token ?? {}),
      ...Object.keys(parsed?.userinfo ?? {}),
    ])];
  } catch {
    return [];
  }
}

export function createTestMiddleware(provider, {
  issuer, introspector, supportedScopes, devicePollInterval, log,
}) {
  let counters = freshCounters();
  let slowDownPending = 0;
  // Milliseconds to hold back the answer to a refresh after the provider rotated the
  // token: the window in which a client that dies loses the session.
  let refreshDelayMs = 0;
  // `/test/refresh_hold`: refresh requests wait, before the provider sees them, until
  // released (then they are served) or their client goes away (then they are dropped,
  // the refresh token untouched).
  let holdRefreshes = false;
  const heldRefreshes = new Set();
  const supported = new Set(supportedScopes);
  const resumeCookie = provider.cookieName('resume');

  function grantedScope(scopeParam) {
    return String(scopeParam ?? '').split(' ').filter((s) => supported.has(s));
  }

  async function newGrant(clientId, scopes, claimNames = []) {
    const grant = new provider.Grant({ accountId: TEST_ACCOUNT.sub, clientId });
    if (scopes.length) grant.addOIDCScope(scopes.join(' '));
    if (claimNames.length) grant.addOIDCClaims(claimNames);
    return grant.save();
  }

  // GET /interaction/:uid -- no UI, decide immediately.
  async function completeInteraction(ctx, uid) {
    const interaction = await provider.Interaction.find(uid);
    if (!interaction) {
      json(ctx, 400, { error: 'invalid_request', error_description: 'interaction not found or expired' });
      return;
    }
    const { params = {}, prompt = {} } = interaction;
    let result;
    if (params.login_hint === 'deny') {
      result = {
        error: 'access_denied',
        error_description: 'End-User denied the request (login_hint=deny)',
      };
    } else {
      const details = prompt.details ?? {};
      let grant = interaction.grantId
        ? await provider.Grant.find(interaction.grantId)
        : undefined;
      if (!grant || grant.accountId !== TEST_ACCOUNT.sub) {
        grant = new provider.Grant({ accountId: TEST_ACCOUNT.sub, clientId: params.client_id });
      }
      const scopes = new Set([...grantedScope(params.scope), ...(details.missingOIDCScope ?? [])]);
      if (scopes.size) grant.addOIDCScope([...scopes].join(' '));
      const claims = new Set([
        ...requestedClaimNames(params.claims),
        ...(details.missingOIDCClaims ?? []),
      ]);
      if (claims.size) grant.addOIDCClaims([...claims]);
      for (const [indicator, s] of Object.entries(details.missingResourceScopes ?? {})) {
        grant.addResourceScope(indicator, s.join(' '));
      }
      const grantId = await grant.save();
      result = {
        login: { accountId: TEST_ACCOUNT.sub, amr: ['pwd'] },
        consent: { grantId },
      };
    }
    interaction.result = result;
    await interaction.save(Math.max(interaction.exp - epochTime(), 1));
    log(`interaction ${uid} (${prompt.name}) for ${params.client_id}: ${result.error ?? 'approved'}`);
    ctx.status = 303;
    ctx.redirect(interaction.returnTo);
  }

  async function deviceDecision(ctx, approve) {
    const body = await parseBody(ctx);
    const userCode = String(body.user_code ?? '');
    if (!userCode) {
      json(ctx, 400, { error: 'invalid_request', error_description: 'user_code is required' });
      return;
    }
    // Same normalisation as oidc-provider (helpers/user_codes.js).
    const normalized = userCode.toUpperCase().replace(/\W/g, '');
    const code = await provider.DeviceCode.findByUserCode(normalized);
    if (!code || code.isExpired) {
      json(ctx, 404, { error: 'not_found', error_description: 'unknown or expired user_code' });
      return;
    }
    if (code.accountId || code.error || code.consumed) {
      json(ctx, 409, { error: 'already_decided', error_description: 'this device code was already approved or denied' });
      return;
    }
    if (approve) {
      const scopes = grantedScope(code.params?.scope);
      const grantId = await newGrant(code.clientId, scopes, requestedClaimNames(code.params?.claims));
      Object.assign(code, {
        accountId: TEST_ACCOUNT.sub,
        authTime: epochTime(),
        amr: ['pwd'],
        grantId,
        scope: scopes.join(' '),
      });
    } else {
      Object.assign(code, {
        error: 'access_denied',
        errorDescription: 'End-User aborted interaction',
      });
    }
    await code.save();
    log(`device code ${userCode} for ${code.clientId}: ${approve ? 'approved' : 'denied'}`);
    json(ctx, 200, approve
      ? { approved: true, user_code: userCode, client_id: code.clientId, scope: code.scope }
      : { denied: true, user_code: userCode, client_id: code.clientId });
  }

  async function introspect(ctx) {
    const body = await parseBody(ctx);
    if (!body.token) {
      json(ctx, 400, { error: 'invalid_request', error_description: 'token is required' });
      return;
    }
    const form = new URLSearchParams({ token: String(body.token) });
    if (body.token_type_hint) form.set('token_type_hint', String(body.token_type_hint));
    const basic = Buffer.from(
      `${encodeURIComponent(introspector.client_id)}:${encodeURIComponent(introspector.client_secret)}`,
    ).toString('base64');
    const res = await fetch(`${issuer}/token/introspection`, {
      method: 'POST',
      headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: form,
      signal: AbortSignal.timeout(5_000),
    });
    json(ctx, res.status, await res.json());
  }

  async function testRoute(ctx) {
    ctx.set('Access-Control-Allow-Origin', '*');
    if (ctx.method === 'OPTIONS') {
      ctx.set('Access-Control-Allow-Methods', 'GET, POST, OPTIONS');
      ctx.set('Access-Control-Allow-Headers', 'content-type');
      ctx.status = 204;
      return;
    }
    const route = `${ctx.method} ${ctx.path.replace(/\/+$/, '')}`;
    switch (route) {
      case 'GET /test/health':
        json(ctx, 200, { ok: true, issuer });
        return;
      case 'GET /test/counters':
        json(ctx, 200, { ...counters, slow_down_pending: slowDownPending });
        return;
      case 'POST /test/counters/reset':
        await parseBody(ctx);
        counters = freshCounters();
        json(ctx, 200, { ...counters, slow_down_pending: slowDownPending });
        return;
      case 'POST /test/slow_down': {
        const body = await parseBody(ctx);
        const n = Number(body.count ?? 1);
        if (!Number.isInteger(n) || n < 0) {
          json(ctx, 400, { error: 'invalid_request', error_description: 'count must be a non-negative integer' });
          return;
        }
        slowDownPending = n;
        json(ctx, 200, { slow_down_pending: slowDownPending });
        return;
      }
      case 'POST /test/refresh_delay': {
        const body = await parseBody(ctx);
        const ms = Number(body.ms ?? 0);
        if (!Number.isInteger(ms) || ms < 0 || ms > 60000) {
          json(ctx, 400, { error: 'invalid_request', error_description: 'ms must be an integer from 0 to 60000' });
          return;
        }
        refreshDelayMs = ms;
        json(ctx, 200, { refresh_delay_ms: refreshDelayMs });
        return;
      }
      case 'POST /test/refresh_hold': {
        const body = await parseBody(ctx);
        if (typeof body.on !== 'boolean') {
          json(ctx, 400, { error: 'invalid_request', error_description: 'on must be true or false' });
          return;
        }
        holdRefreshes = body.on;
        const released = heldRefreshes.size;
        if (!holdRefreshes) {
          for (const release of heldRefreshes) release();
          heldRefreshes.clear();
        }
        json(ctx, 200, { refresh_hold: holdRefreshes, released: holdRefreshes ? 0 : released });
        return;
      }
      case 'POST /test/device/approve':
        await deviceDecision(ctx, true);
        return;
      case 'POST /test/device/deny':
        await deviceDecision(ctx, false);
        return;
      case 'POST /test/introspect':
        await introspect(ctx);
        return;
      default:
        json(ctx, 404, { error: 'not_found', error_description: `no test route ${route}` });
    }
  }

  async function tokenEndpoint(ctx, next) {
    // Read the form body ourselves (to see grant_type before the provider
    // does) and hand the buffer to oidc-provider, which accepts a pre-read
    // body via req.body.
    const raw = await readBody(ctx.req);
    ctx.req.body = raw;
    const grantType = ctx.is('application/x-www-form-urlencoded')
      ? new URLSearchParams(raw.toString('utf8')).get('grant_type')
      : null;
    switch (grantType) {
      case 'authorization_code': counters.token_requests.authorization_code += 1; break;
      case 'refresh_token': counters.token_requests.refresh_token += 1; break;
      case DEVICE_CODE_GRANT: counters.token_requests.device_code += 1; break;
      default: counters.token_requests.other += 1;
    }
    if (grantType === 'refresh_token' && holdRefreshes) {
      counters.refresh_held += 1;
      const socket = ctx.req.socket;
      await new Promise((resolve) => {
        heldRefreshes.add(resolve);
        socket.once('close', () => {
          heldRefreshes.delete(resolve);
          resolve();
        });
      });
      if (socket.destroyed) {
        counters.refresh_dropped += 1;
        ctx.respond = false;
        return;
      }
    }
    if (grantType === DEVICE_CODE_GRANT && slowDownPending > 0) {
      slowDownPending -= 1;
      counters.slow_down_sent += 1;
      json(ctx, 400, { error: 'slow_down', error_description: 'polling too fast (test control)' });
      ctx.set('Pragma', 'no-cache');
      return;
    }
    await next();
    if (grantType === 'refresh_token' && ctx.body?.error === 'invalid_grant') {
      counters.refresh_invalid_grant += 1;
    }
    if (grantType === 'refresh_token' && refreshDelayMs > 0) {
      await new Promise((resolve) => setTimeout(resolve, refreshDelayMs));
    }
  }

  return async function testMiddleware(ctx, next) {
    const { path, method } = ctx;

    if (path === '/test' || path.startsWith('/test/')) {
      await testRoute(ctx);
      return;
    }

    const interaction = /^\/interaction\/([A-Za-z0-9_-]+)$/.exec(path);
    if (interaction && (method === 'GET' || method === 'POST')) {
      await completeInteraction(ctx, interaction[1]);
      return;
    }

    if (method === 'POST' && path === '/token') {
      await tokenEndpoint(ctx, next);
      return;
    }

    // Cookie-less user agents: supply the resume cookie oidc-provider set on
    // the way to /interaction/:uid. Cookies are unsigned (test only).
    const resume = /^\/auth\/([A-Za-z0-9_-]+)$/.exec(path);
    if (resume && method === 'GET' && !ctx.cookies.get(resumeCookie)) {
      const existing = ctx.req.headers.cookie;
      const injected = `${resumeCookie}=${resume[1]}`;
      ctx.req.headers.cookie = existing ? `${existing}; ${injected}` : injected;
    }

    if (method === 'POST' && path === '/token/revocation') counters.revocation_requests += 1;
    if (path === '/auth' && (method === 'GET' || method === 'POST')) counters.authorization_requests += 1;
    if (method === 'GET' && path === '/jwks') counters.jwks_requests += 1;

    if (method === 'POST' && path === '/device/auth') {
      counters.device_authorization_requests += 1;
      await next();
      if (devicePollInterval !== undefined && ctx.status === 200
        && ctx.body && typeof ctx.body === 'object' && ctx.body.device_code) {
        ctx.body = { ...ctx.body, interval: devicePollInterval };
      }
      return;
    }

    await next();
  };
}
