// Helpers for the extension's end-to-end tests: the local authorization server, headless
// Chromium with the unpacked example extension, its popup, its service worker, and small
// misbehaving servers. Everything binds and calls 127.0.0.1 only; the
// https://<id>.chromiumapp.org/ redirect is intercepted by Chrome and never fetched.

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
export const EXTENSION_DIR = path.join(root, 'host-wasm/examples/extension');
const CHROMIUM = '/usr/bin/chromium';
export const CLIENT_ID = 'tessera-ext';
export const STORAGE_KEY = `tessera.session.${CLIENT_ID}`;

/** The extension id Chrome derives from the manifest's `key`: sha256 of the DER public
 *  key, first 32 hex digits written with the letters a–p. */
export function extensionId(manifest = readManifest()) {
  const digest = createHash('sha256').update(Buffer.from(manifest.key, 'base64')).digest('hex');
  return [...digest.slice(0, 32)].map((d) => String.fromCharCode(97 + parseInt(d, 16))).join('');
}

function readManifest() {
  return JSON.parse(readFileSync(path.join(EXTENSION_DIR, 'manifest.json'), 'utf8'));
}

/** A short, stable name for a token (never the token itself): what callApi reports. */
export const tokenId = (token) => createHash('sha256').update(token).digest('hex').slice(0, 12);

/** Lines of output kept for a failure report (tokens never reach them). */
export class Log {
  lines = [];
  add(source, text) {
    for (const line of String(text).split('\n')) if (line.trim()) this.lines.push(`[${source}] ${line}`);
  }
  tail(n = 60) {
    return this.lines.slice(-n).join('\n');
  }
}

/** tests/provider/server.mjs on an ephemeral port, with `tessera-ext` registered for the
 *  extension's redirect URI. Stops when its stdin closes. */
export async function startProvider({ redirectUri, env = {}, log }) {
  const client = {
    client_id: CLIENT_ID,
    application_type: 'web',
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: [redirectUri],
  };
  const child = spawn(process.execPath, [path.join(root, 'tests/provider/server.mjs')], {
    env: { ...process.env, PORT: '0', CLIENTS_JSON: JSON.stringify([client]), LOG_REQUESTS: '1', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  // LOG_REQUESTS logs method, URL and status (no bodies, no headers): the test reads the
  // authorization requests the browser made from it.
  const authorizeRequests = [];
  let partial = '';
  child.stderr.on('data', (chunk) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop();
    for (const line of lines) {
      log.add('provider', line);
      const [, url] = line.match(/ GET (\/auth\?\S+) -> /) ?? [];
      if (url) authorizeRequests.push(url);
    }
  });
  const ready = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`the provider did not print READY within 20 s:\n${log.tail()}`)), 20_000);
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const line = out.split('\n').find((l) => l.startsWith('READY '));
      if (line) {
        clearTimeout(timer);
        resolve(JSON.parse(line.slice('READY '.length)));
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the provider exited (${code}) before READY:\n${log.tail()}`));
    });
  });
  const call = async (route, body) => {
    const response = await fetch(`${ready.issuer}${route}`, body === undefined ? {} : {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
    });
    if (!response.ok) throw new Error(`provider ${route} answered HTTP ${response.status}`);
    return response.json();
  };
  return {
    issuer: ready.issuer,
    /** The query of every GET /auth?… the provider answered, as URLSearchParams. */
    authorizeRequests: () => authorizeRequests.map((url) => new URL(url, ready.issuer).searchParams),
    counters: () => call('/test/counters'),
    introspect: (token, hint) => call('/test/introspect', { token, token_type_hint: hint }),
    /** Revokes one access token as the client would (RFC 7009): the grant lives on. */
    async revokeAccessToken(token) {
      const response = await fetch(`${ready.issuer}/token/revocation`, {
        method: 'POST',
        body: new URLSearchParams({ token, token_type_hint: 'access_token', client_id: CLIENT_ID }),
      });
      if (!response.ok) throw new Error(`revocation answered HTTP ${response.status}`);
    },
    stop: () => {
      child.stdin.end();
      child.kill('SIGTERM');
    },
  };
}

/** One small server for the bad-input tests: `/authorize` is a sign-in page that never
 *  redirects (so the window stays open until closed), `/token` answers 200 with HTML. */
export async function misbehavingServer() {
  const requests = { authorize: 0, token: 0 };
  const server = http.createServer((request, response) => {
    request.resume();
    const route = new URL(request.url, 'http://127.0.0.1').pathname.slice(1);
    if (route in requests) requests[route] += 1;
    response.writeHead(route in requests ? 200 : 404, { 'content-type': 'text/html' });
    response.end('<!doctype html><title>Sign in</title><p>Sign in to continue</p>');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  return {
    authorizeUrl: `${base}/authorize`,
    tokenUrl: `${base}/token`,
    requests,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

/**
 * Headless Chromium (Debian's, new headless mode) with the unpacked example extension (or
 * `dir`, a copy of it with the same manifest key) in a temporary profile. Resolves once the
 * extension's service worker runs.
 */
export async function launchExtension({ log, dir = EXTENSION_DIR }) {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: apt-get install -y chromium`);
  if (!existsSync(path.join(dir, 'pkg/tessera_wasm.js'))) {
    throw new Error(`${EXTENSION_DIR}/pkg/ is missing: run make extension-test (it copies host-wasm/pkg there)`);
  }
  const id = extensionId();
  const userDataDir = await mkdtemp(path.join(tmpdir(), 'tessera-e2e-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true, // playwright passes --headless: Chromium's new headless mode (the only one since 132)
    args: [
      '--no-sandbox', // root in a container
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      `--disable-extensions-except=${dir}`,
      `--load-extension=${dir}`,
    ],
  });
  // Pages' and the service worker's console (the extension logs event types, never tokens).
  context.on('console', (message) => log.add(`browser ${message.type()}`, message.text()));
  const ours = (worker) => worker.url() === `chrome-extension://${id}/background.js`;
  const worker = context.serviceWorkers().find(ours)
    ?? await context.waitForEvent('serviceworker', { predicate: ours, timeout: 15_000 }).catch(() => {
      throw new Error(`the extension's service worker did not start (expected id ${id}); workers: ${
        context.serviceWorkers().map((w) => w.url()).join(', ') || 'none'}`);
    });
  return new Extension(context, id, worker, userDataDir);
}

export class Extension {
  constructor(context, id, worker, userDataDir) {
    this.context = context;
    this.id = id;
    this.worker = worker;
    this.userDataDir = userDataDir;
  }

  get redirectUri() {
    return `https://${this.id}.chromiumapp.org/`;
  }

  /** Runs `fn(arg)` in the service worker (which must be running). */
  evaluate(fn, arg) {
    return this.worker.evaluate(fn, arg);
  }

  async openPopup() {
    const page = await this.context.newPage();
    await page.goto(`chrome-extension://${this.id}/popup.html`);
    const popup = new Popup(page);
    await popup.waitForReplies(1); // the status it asks for when it opens
    return popup;
  }

  /** The stored session as chrome.storage.local holds it (the raw string), or null. */
  storedSession() {
    return this.evaluate(async (key) => (await chrome.storage.local.get(key))[key] ?? null, STORAGE_KEY);
  }

  /**
   * The stored session decrypted, as the extension's own code could (the worker reads the
   * non-extractable key from IndexedDB "tessera-keys" and asks WebCrypto to decrypt: the
   * format of host-wasm/src/browser/glue.js), or null. A plaintext value is parsed as is.
   */
  decryptedSession() {
    return this.evaluate(async (key) => {
      const value = (await chrome.storage.local.get(key))[key];
      if (value == null) return null;
      const prefix = 'tessera-aes-gcm.1.';
      if (!value.startsWith(prefix)) return { plaintext: true, ...JSON.parse(value) };
      const [id, iv, data] = value.slice(prefix.length).split('.');
      const bytes = (b64) => Uint8Array.from(atob(b64.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
      const db = await new Promise((resolve, reject) => {
        const request = indexedDB.open('tessera-keys', 1);
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
      });
      const record = await new Promise((resolve, reject) => {
        const request = db.transaction('keys').objectStore('keys').get('session-key');
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
      });
      db.close();
      if (record?.id !== id) throw new Error(`key ${id} is not in IndexedDB (found ${record?.id})`);
      if (record.key.extractable !== false) throw new Error('the key is extractable');
      const plain = await crypto.subtle.decrypt(
        { name: 'AES-GCM', iv: bytes(iv), additionalData: new TextEncoder().encode(key) }, record.key, bytes(data),
      );
      return JSON.parse(new TextDecoder().decode(plain));
    }, STORAGE_KEY);
  }

  /**
   * Stops the service worker as Chrome does when it is idle (CDP ServiceWorker.stopAllWorkers
   * from an extension page), and waits until DevTools reports it stopped. The next event
   * (a message from a page) starts it again with a fresh global scope.
   */
  async stopWorker() {
    const page = await this.context.newPage();
    try {
      await page.goto(`chrome-extension://${this.id}/popup.html`);
      const cdp = await this.context.newCDPSession(page);
      const stopped = new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the service worker was not reported stopped within 10 s')), 10_000);
        cdp.on('ServiceWorker.workerVersionUpdated', ({ versions }) => {
          if (versions.some((v) => v.scriptURL === this.worker.url() && v.runningStatus === 'stopped')) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      await cdp.send('ServiceWorker.enable');
      await cdp.send('ServiceWorker.stopAllWorkers');
      await stopped;
      await cdp.detach();
    } finally {
      await page.close();
    }
  }

  /** The page of a window that launchWebAuthFlow opened on `urlPrefix`. */
  waitForAuthWindow(urlPrefix) {
    return this.context.waitForEvent('page', { predicate: (p) => p.url().startsWith(urlPrefix), timeout: 15_000 });
  }

  async close() {
    await this.context.close();
    await rm(this.userDataDir, { recursive: true, force: true });
  }
}

/** The extension's popup page, opened as a tab. */
export class Popup {
  constructor(page) {
    this.page = page;
  }

  /** Sends a message to the service worker as the popup does, and resolves with the reply. */
  send(message) {
    return this.page.evaluate((m) => chrome.runtime.sendMessage(m), message);
  }

  async waitForReplies(count, timeout = 20_000) {
    await this.page.waitForFunction(
      (n) => Number(document.getElementById('reply').dataset.seq) >= n, count, { timeout },
    ).catch(async (error) => {
      throw new Error(`the popup got no reply #${count} within ${timeout} ms; it shows:\n${await this.text()}\n(${error.message.split('\n')[0]})`);
    });
  }

  /** Clicks a button and resolves with the service worker's reply to it. */
  async click(label, timeout) {
    const seq = Number(await this.page.getAttribute('#reply', 'data-seq'));
    await this.page.getByRole('button', { name: label, exact: true }).click();
    await this.waitForReplies(seq + 1, timeout);
    return JSON.parse(await this.page.$eval('#reply', (o) => o.value));
  }

  shown(id) {
    return this.page.$eval(`#${id}`, (e) => (e.hidden ? '' : e.textContent.trim()));
  }

  /** Everything the popup shows, for failure messages. */
  text() {
    return this.page.evaluate(() => document.body.innerText);
  }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
