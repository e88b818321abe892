// The first access token after an MV3 service-worker cold start (issue 17, BENCHMARKS.md
// "Service-worker cold start"): tessera-wasm (the npm package as `make wasm-package` builds
// it) against oauth4webapi doing the same step, in one headless Chromium, alternating.
//
// Each bench extension (host-wasm/e2e/coldstart/) finds a valid stored session in
// chrome.storage.local. Its worker is stopped (CDP ServiceWorker.stopAllWorkers) and started
// again by a message from one of its pages; the worker reports performance.now() (ms since
// it started) when its module body runs (`script`: imports fetched, compiled, evaluated),
// when the library is ready (`ready`: tessera's `init()`, the wasm instantiated) and when
// it holds the token (`end`: tessera's `Session.open` + `getAccessToken()`). `roundTrip` is
// the page's view: message sent → reply, worker start included. No network: tessera's
// token endpoint is a closed port, so a request would fail the test.
//
// COLDSTART_ROUNDS (default 15) cold starts per library; the medians are printed.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';

import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../../..');
const benches = path.join(root, 'host-wasm/e2e/coldstart');
const ROUNDS = Number(process.env.COLDSTART_ROUNDS ?? 15);
const CLIENT_ID = 'bench';

let context;
let work;
const lib = {}; // name → { id, page, worker }

/** The two bench extensions in a temp dir: tessera with host-wasm/pkg, oauth4webapi
 *  bundled and minified by esbuild as the size report does (host-wasm/size). */
function prepare() {
  work = mkdtempSync(path.join(tmpdir(), 'tessera-coldstart-'));
  const pkg = path.join(root, 'host-wasm/pkg');
  assert.ok(existsSync(path.join(pkg, 'tessera_wasm.js')), 'host-wasm/pkg is missing: make wasm-package');
  cpSync(path.join(benches, 'tessera'), path.join(work, 'tessera'), { recursive: true });
  cpSync(pkg, path.join(work, 'tessera/pkg'), { recursive: true });
  cpSync(path.join(benches, 'oauth4webapi'), path.join(work, 'oauth4webapi'), { recursive: true });
  const size = path.join(root, 'host-wasm/size');
  const esbuild = path.join(size, 'node_modules/.bin/esbuild');
  assert.ok(existsSync(esbuild), 'host-wasm/size/node_modules is missing: (cd host-wasm/size && npm ci)');
  execFileSync(esbuild, ['--bundle', '--minify', '--format=esm', '--log-level=warning',
    `--outfile=${path.join(work, 'oauth4webapi/oauth4webapi.min.js')}`], {
    cwd: size, input: 'export * from "oauth4webapi";',
  });
}

before(async () => {
  prepare();
  const dirs = [path.join(work, 'tessera'), path.join(work, 'oauth4webapi')];
  context = await chromium.launchPersistentContext(path.join(work, 'profile'), {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', `--disable-extensions-except=${dirs.join(',')}`,
      `--load-extension=${dirs.join(',')}`],
  });
  const deadline = Date.now() + 15_000;
  while (context.serviceWorkers().length < 2 && Date.now() < deadline) {
    await context.waitForEvent('serviceworker', { timeout: 15_000 }).catch(() => {});
  }
  for (const worker of context.serviceWorkers()) {
    const name = await worker.evaluate(() => chrome.runtime.getManifest().name);
    const id = new URL(worker.url()).host;
    lib[name.startsWith('tessera') ? 'tessera' : 'oauth4webapi'] = { id, worker };
  }
  assert.ok(lib.tessera && lib.oauth4webapi, 'both bench workers started');

  // A valid stored session for each (one hour left), and the configuration.
  const now = Date.now();
  const config = { client_id: CLIENT_ID, endpoints: { token: 'http://127.0.0.1:9/token' } };
  const stored = JSON.stringify({
    version: 1, client_id: CLIENT_ID, access_token: `at-${'x'.repeat(40)}`,
    refresh_token: `rt-${'y'.repeat(40)}`, obtained_at: now, expires_at: now + 3_600_000, scopes: ['openid'],
  });
  await lib.tessera.worker.evaluate(
    ([config, key, stored]) => chrome.storage.local.set({ config, [key]: stored }),
    [config, `tessera.session.${CLIENT_ID}`, stored],
  );
  await lib.oauth4webapi.worker.evaluate(([config, stored]) => chrome.storage.local.set({ config, stored }), [config, stored]);
  for (const name of Object.keys(lib)) {
    lib[name].page = await context.newPage();
    await lib[name].page.goto(`chrome-extension://${lib[name].id}/page.html`);
  }
});

after(async () => {
  await context?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Stops every service worker and waits until DevTools reports both stopped. */
async function stopWorkers() {
  const cdp = await context.newCDPSession(lib.tessera.page);
  const running = new Map();
  const allStopped = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the workers were not reported stopped within 10 s')), 10_000);
    cdp.on('ServiceWorker.workerVersionUpdated', ({ versions }) => {
      for (const v of versions) running.set(v.scriptURL, v.runningStatus);
      if (running.size >= 2 && [...running.values()].every((s) => s === 'stopped')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  await cdp.send('ServiceWorker.enable');
  await cdp.send('ServiceWorker.stopAllWorkers');
  await allStopped;
  await cdp.detach();
}

/** One cold start of `name`'s worker, woken by a message from its page. */
async function coldStart(name) {
  await stopWorkers();
  return lib[name].page.evaluate(async () => {
    const t0 = performance.now();
    const reply = await chrome.runtime.sendMessage({ type: 'coldStart' });
    return { ...reply, roundTrip: performance.now() - t0 };
  });
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

test('first getAccessToken() after a service-worker cold start: tessera-wasm and oauth4webapi', async () => {
  const runs = { tessera: [], oauth4webapi: [] };
  for (let round = 0; round < ROUNDS; round += 1) {
    for (const name of round % 2 ? ['oauth4webapi', 'tessera'] : ['tessera', 'oauth4webapi']) {
      const reply = await coldStart(name);
      assert.ok(reply.ok, `${name}: ${reply.error}`);
      assert.equal(reply.tokenLength, 43, `${name}: the stored token`);
      runs[name].push(reply);
    }
  }
  const row = (name) => {
    const m = (key) => median(runs[name].map((r) => r[key])).toFixed(1);
    return `| ${name} | ${m('script')} | ${m('ready')} | ${m('end')} | ${m('roundTrip')} |`;
  };
  console.log([
    `cold starts: ${ROUNDS} per library, medians in ms (${await lib.tessera.page.evaluate(() => navigator.userAgent.match(/Chrome\/\S+/)[0])})`,
    '| library | module body runs | library ready | token in hand | page round trip |',
    '|---|---|---|---|---|',
    row('tessera'),
    row('oauth4webapi'),
  ].join('\n'));
});
