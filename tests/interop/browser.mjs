#!/usr/bin/env node
// A stand-in for a person at a web browser, for the servers of tests/interop/ whose login
// and consent are real pages (tests/provider/browser.mjs is the one for tests/provider,
// whose interactions complete themselves). Used as `$BROWSER` by tessera, or run by a test
// on a device page:
//   BROWSER="node tests/interop/browser.mjs" tessera login --browser
//   BROWSER_USER_CODE=ABCD1234 node tests/interop/browser.mjs http://127.0.0.1:PORT/o/device/
//
// It follows redirects by hand (keeping cookies) and, on an HTML page with a POST form,
// does what a person would: fills in the user name and password (BROWSER_USER,
// BROWSER_PASSWORD; default alice / alice-password) and the user code (BROWSER_USER_CODE),
// keeps the hidden fields, and presses the button that allows (BROWSER_DECISION=allow, the
// default) or the one that denies (BROWSER_DECISION=deny).
//
// glewlwyd (BROWSER_MODE=glewlwyd): its login page is a JavaScript application, so this
// does what that application does through glewlwyd's own API: sign in (POST /api/auth/),
// grant the client its scopes (PUT /api/auth/grant/{client_id}) and "continue" (the
// authorization URL again with `g_continue`); on the device page, sign in and send the
// typed code (`/api/oidc/device?code=...&g_continue`). It has no button that refuses.
//
// Exit status: 0 when the loopback redirect was delivered (or, on a device page, when the
// server showed its final page), 1 otherwise. It only ever contacts 127.0.0.1. Set
// BROWSER_LOG=<file> to append the URLs it visited and the final page.

import { appendFileSync } from 'node:fs';

const start = process.argv[2];
if (!start) {
  console.error('usage: browser.mjs URL');
  process.exit(2);
}
const env = process.env;
const user = env.BROWSER_USER ?? 'alice';
const password = env.BROWSER_PASSWORD ?? 'alice-password';
const decision = env.BROWSER_DECISION ?? 'allow';
const isLoopback = (url) => ['127.0.0.1', '[::1]', 'localhost'].includes(new URL(url).hostname);
const log = (line) => { if (env.BROWSER_LOG) appendFileSync(env.BROWSER_LOG, line + '\n'); };
const serverOrigin = new URL(start).origin;
const cookies = new Map();

async function request(url, { method = 'GET', body, headers = {} } = {}) {
  if (!isLoopback(url)) throw new Error(`refusing to visit a non-loopback URL: ${url}`);
  log(`${method} ${url}`);
  if (cookies.size) headers.cookie = [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  const response = await fetch(url, {
    method, body, headers, redirect: 'manual', signal: AbortSignal.timeout(15_000),
  });
  for (const cookie of response.headers.getSetCookie?.() ?? []) {
    const [pair] = cookie.split(';');
    const index = pair.indexOf('=');
    cookies.set(pair.slice(0, index).trim(), pair.slice(index + 1));
  }
  return response;
}

const attr = (tag, name) => {
  const m = tag.match(new RegExp(`\\s${name}\\s*=\\s*("([^"]*)"|'([^']*)'|([^\\s>]+))`, 'i'));
  return m ? (m[2] ?? m[3] ?? m[4]).replace(/&amp;/g, '&').replace(/&quot;/g, '"') : undefined;
};

// The first POST form of a page: its action and the fields a person would send.
function fillForm(html, pageUrl) {
  const form = html.match(/<form\b[^>]*>([\s\S]*?)<\/form>/i);
  if (!form || (attr(form[0].match(/<form\b[^>]*>/i)[0], 'method') ?? 'get').toLowerCase() !== 'post') {
    return undefined;
  }
  const fields = new URLSearchParams();
  const buttons = [];
  for (const [tag] of form[1].matchAll(/<(input|button)\b[^>]*>/gi)) {
    const name = attr(tag, 'name');
    const type = (attr(tag, 'type') ?? (tag.toLowerCase().startsWith('<button') ? 'submit' : 'text')).toLowerCase();
    const value = attr(tag, 'value') ?? '';
    if (type === 'submit') buttons.push({ name, value });
    else if (!name) continue;
    else if (name === 'username') fields.set(name, user);
    else if (type === 'password') fields.set(name, password);
    else if (name === 'user_code') fields.set(name, env.BROWSER_USER_CODE ?? value);
    else fields.set(name, value);
  }
  // Allow: the button named "allow" or valued "accept"; deny: "deny" or a nameless one
  // (DOT's "Cancel"). A login or code form has a single button.
  const allows = (b) => b.name === 'allow' || b.value === 'accept';
  const denies = (b) => b.value === 'deny' || (!b.name && buttons.some(allows));
  const button = buttons.length <= 1 ? buttons[0]
    : buttons.find(decision === 'deny' ? denies : allows);
  if (buttons.length > 1 && !button) throw new Error(`no button to ${decision} on ${pageUrl}`);
  if (button?.name) fields.set(button.name, button.value);
  const action = attr(form[0].match(/<form\b[^>]*>/i)[0], 'action');
  return { url: new URL(action || pageUrl, pageUrl).toString(), body: fields.toString() };
}

// glewlwyd's login application, done through its API (see the header). Returns the URL
// the application would go to next, or `true` when the device page said it is done.
async function glewlwydLogin(pageUrl) {
  const page = new URL(pageUrl);
  const prompt = page.searchParams.get('prompt') ?? '';
  const callback = page.searchParams.get('callback_url');
  if (prompt === 'deviceComplete') {
    log(`PAGE device complete`);
    console.log('device complete');
    return true;
  }
  if (prompt.startsWith('device') && prompt !== 'device') {
    throw new Error(`glewlwyd's device page says ${prompt}`);
  }
  const api = `${serverOrigin}/api`;
  const json = { 'content-type': 'application/json' };
  const auth = await request(`${api}/auth/`, {
    method: 'POST', headers: json, body: JSON.stringify({ username: user, password }),
  });
  if (!auth.ok) throw new Error(`glewlwyd sign-in answered ${auth.status}`);
  if (prompt === 'device') {
    // The code typed into the device page, sent as the page sends it.
    const device = new URL(callback);
    device.searchParams.set('code', env.BROWSER_USER_CODE ?? '');
    return `${device}&g_continue`;
  }
  const clientId = page.searchParams.get('client_id');
  const grant = await request(`${api}/auth/grant/${encodeURIComponent(clientId)}`, {
    method: 'PUT', headers: json, body: JSON.stringify({ scope: page.searchParams.get('scope') ?? '' }),
  });
  if (!grant.ok) throw new Error(`glewlwyd grant answered ${grant.status}: ${await grant.text()}`);
  // The page's "continue" button.
  return `${callback}${callback.includes('?') ? '&' : '?'}g_continue`;
}

async function main() {
  let url = start;
  let method = 'GET';
  let body;
  for (let hop = 0; hop < 30; hop++) {
    const response = await request(url, {
      method,
      body,
      headers: body === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded', referer: url },
    });
    method = 'GET';
    body = undefined;
    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location) {
      url = new URL(location, url).toString();
      if (env.BROWSER_MODE === 'glewlwyd' && new URL(url).pathname.endsWith('/login.html')) {
        const next = await glewlwydLogin(url);
        if (next === true) return true;
        url = next;
      }
      continue;
    }
    const text = await response.text();
    if (new URL(url).origin !== serverOrigin) {
      // Another origin than the server's: tessera's loopback server answered.
      console.error(`browser: ${response.status} from the redirect target`);
      log(`PAGE ${response.status} ${text.replace(/\s+/g, ' ').slice(0, 300)}`);
      return response.status < 400;
    }
    const form = response.ok ? fillForm(text, url) : undefined;
    if (form) {
      ({ url, body } = form);
      method = 'POST';
      continue;
    }
    if (response.ok && env.BROWSER_USER_CODE) {
      // The device page's last word ("Device Authorized", "Device Denied").
      const page = text.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim();
      log(`PAGE ${response.status} ${page.slice(0, 300)}`);
      console.log(page.slice(0, 300));
      return true;
    }
    throw new Error(`stuck at ${url}: HTTP ${response.status}: ${text.slice(0, 300)}`);
  }
  throw new Error('too many redirects');
}

main().then(
  (ok) => process.exit(ok ? 0 : 1),
  (error) => { console.error(`browser: ${error.message}`); process.exit(1); },
);
