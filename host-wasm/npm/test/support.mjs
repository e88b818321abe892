// Helpers for the package tests: the local authorization server, a launcher that plays
// the browser, storage adapters, and loading the built package into node.

import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../../..');
export const pkgDir = path.join(root, 'host-wasm/pkg');

/** The built package (host-wasm/npm/build.sh), initialised from the .wasm bytes. */
export async function loadPackage() {
  const tessera = await import(path.join(pkgDir, 'tessera_wasm.js'));
  await tessera.default({ module_or_path: await readFile(path.join(pkgDir, 'tessera_wasm_bg.wasm')) });
  return tessera;
}

/** Starts tests/provider/server.mjs on an ephemeral 127.0.0.1 port. */
export async function startProvider(env = {}) {
  const child = spawn(process.execPath, [path.join(root, 'tests/provider/server.mjs')], {
    env: { ...process.env, PORT: '0', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => { stderr += chunk; });
  const ready = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const line = out.split('\n').find((l) => l.startsWith('READY '));
      if (line) resolve(JSON.parse(line.slice(6)));
    });
    child.on('exit', (code) => reject(new Error(`provider exited (${code}): ${stderr}`)));
    setTimeout(() => reject(new Error(`provider not ready after 20 s: ${stderr}`)), 20_000);
  });
  const issuer = ready.issuer;
  const call = async (route, body) => {
    const response = await fetch(`${issuer}${route}`, body === undefined ? {} : {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
    });
    return response.json();
  };
  return {
    issuer,
    counters: () => call('/test/counters'),
    introspect: (token, hint) => call('/test/introspect', { token, token_type_hint: hint }),
    approve: (userCode) => call('/test/device/approve', { user_code: userCode }),
    stop: () => { child.stdin.end(); child.kill('SIGTERM'); },
  };
}

/**
 * Plays the browser for `launchWebAuthFlow`: follows the provider's redirects (its
 * interactions complete by themselves) and resolves with the first URL that goes to
 * `redirectUri`, without loading it. `rewrite` may change that URL (bad-input tests).
 */
export function redirectFollower(rewrite = (url) => url) {
  const launches = [];
  const launcher = async (url, redirectUri) => {
    launches.push(url);
    const cookies = new Map();
    for (let hop = 0; hop < 20; hop++) {
      if (new URL(url).hostname !== '127.0.0.1') throw new Error(`refusing to visit ${url}`);
      const headers = {};
      if (cookies.size) headers.cookie = [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
      const response = await fetch(url, { redirect: 'manual', headers });
      for (const cookie of response.headers.getSetCookie()) {
        const [pair] = cookie.split(';');
        const i = pair.indexOf('=');
        cookies.set(pair.slice(0, i).trim(), pair.slice(i + 1));
      }
      const location = response.headers.get('location');
      if (!location) throw new Error(`no redirect from ${url}: HTTP ${response.status}`);
      url = new URL(location, url).toString();
      if (url.startsWith(redirectUri)) return rewrite(url);
    }
    throw new Error('too many redirects');
  };
  return { launcher, launches };
}

/** A SessionStorage in a Map, with switches for failures. */
export function memoryStorage() {
  const map = new Map();
  return {
    map,
    failWrites: false,
    async get(key) { return map.get(key) ?? null; },
    async set(key, value) {
      if (this.failWrites) throw new DOMException('quota exceeded', 'QuotaExceededError');
      map.set(key, value);
    },
    async remove(key) { map.delete(key); },
  };
}

/** A token endpoint that answers 200 with an HTML page: what a misconfigured proxy does. */
export async function garbageServer() {
  let requests = 0;
  const server = http.createServer((request, response) => {
    requests += 1;
    request.resume();
    response.writeHead(200, { 'content-type': 'text/html' });
    response.end('<html><body>Sign in to continue</body></html>');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/token`,
    requests: () => requests,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

/** The promise's rejection (fails when it resolves). */
export async function rejection(promise) {
  try {
    const value = await promise;
    throw new Error(`expected a rejection, got ${JSON.stringify(value)}`);
  } catch (error) {
    if (error?.name !== 'TesseraError') throw error;
    return error;
  }
}
