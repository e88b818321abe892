// Security issue 12, finding 10: what a content script of the extension can read of the
// session. The example extension is copied with one content script added (same manifest
// key, so the same id and redirect URI); the script runs on a plain http page and reports
// what chrome.storage.local gives it. tessera sets chrome.storage.local's access level to
// TRUSTED_CONTEXTS when the session opens, so the script is refused; and what the worker
// stored is encrypted, so neither token appears in it.

import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, afterEach, before, test } from 'node:test';

import {
  CLIENT_ID, EXTENSION_DIR, Log, STORAGE_KEY, extensionId, launchExtension, misbehavingServer, startProvider,
} from '../support.mjs';

// Runs at document_idle on every 127.0.0.1 page; leaves what it saw on the page's <html>.
const PROBE = `
chrome.storage.local.get(null).then(
  (items) => { document.documentElement.dataset.probe = JSON.stringify({ read: true, items }); },
  (error) => { document.documentElement.dataset.probe = JSON.stringify({ read: false, error: String(error?.message ?? error) }); },
);
`;

const log = new Log();
let provider;
let page; // a plain http page on 127.0.0.1: where the content script runs
let extension;
let dir;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tessera-e2e-ext-'));
  await cp(EXTENSION_DIR, dir, { recursive: true });
  const manifest = JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8'));
  manifest.content_scripts = [{ matches: ['http://127.0.0.1/*'], js: ['probe.js'] }];
  await writeFile(path.join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2));
  await writeFile(path.join(dir, 'probe.js'), PROBE);

  provider = await startProvider({ redirectUri: `https://${extensionId()}.chromiumapp.org/`, log });
  page = await misbehavingServer();
  extension = await launchExtension({ log, dir });
  const popup = await extension.openPopup();
  const configured = await popup.send({ type: 'configure', config: { issuer: provider.issuer } });
  assert.ok(configured.ok, `configure failed: ${JSON.stringify(configured)}`);
  const signIn = await popup.click('Sign in');
  assert.ok(signIn.ok, `sign-in failed: ${JSON.stringify(signIn.error)}`);
});

after(async () => {
  await extension?.close();
  await page?.close();
  provider?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

afterEach((t) => {
  if (!t.passed || process.env.E2E_VERBOSE) console.error(`--- ${t.name}: recent provider and browser output\n${log.tail()}`);
});

test('the session in chrome.storage.local is encrypted: neither token in clear', async () => {
  const session = await extension.decryptedSession();
  assert.equal(session.client_id, CLIENT_ID);
  assert.equal(session.plaintext, undefined, 'stored encrypted');
  const raw = await extension.storedSession();
  assert.match(raw, /^tessera-aes-gcm\.1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+$/);
  assert.ok(!raw.includes(session.refresh_token), 'the refresh token in clear');
  assert.ok(!raw.includes(session.access_token), 'the access token in clear');
  const status = await extension.evaluate(async () => (await tesseraExample.session()).status());
  assert.equal(status.storage_warning, undefined, `a storage warning: ${status.storage_warning}`);
});

test("a content script cannot read chrome.storage.local (access level TRUSTED_CONTEXTS)", async () => {
  const tab = await extension.context.newPage();
  try {
    await tab.goto(page.authorizeUrl);
    const handle = await tab.waitForFunction(() => document.documentElement.dataset.probe, null, { timeout: 15_000 })
      .catch((error) => { throw new Error(`the content script reported nothing: ${error.message.split('\n')[0]}`); });
    const probe = JSON.parse(await handle.jsonValue());
    assert.equal(
      probe.read, false,
      `the content script read chrome.storage.local: keys ${JSON.stringify(Object.keys(probe.items ?? {}))}`,
    );
    assert.match(probe.error, /access|context/i, `refused for another reason: ${probe.error}`);
  } finally {
    await tab.close();
  }
  // The extension's own pages and worker still read it.
  assert.notEqual(await extension.storedSession(), null, `${STORAGE_KEY} is still stored`);
});
