#!/usr/bin/env node
// A stand-in for a web browser in end-to-end tests, used as `$BROWSER`:
//   BROWSER="node tests/provider/browser.mjs" tessera login --browser
// It opens the authorization URL, follows the provider's redirects by hand (the test
// provider completes its login and consent pages by itself), and when a redirect points
// at a loopback address it requests that URL, exactly as a browser would deliver the
// redirect to tessera's loopback server. It only ever contacts 127.0.0.1.
//
// Exit status: 0 when the loopback redirect was delivered, 1 otherwise. Diagnostics on
// stderr. Set BROWSER_LOG=<file> to append the URLs it visited (for test assertions).

import { appendFileSync } from 'node:fs';

const start = process.argv[2];
if (!start) {
  console.error('usage: browser.mjs URL');
  process.exit(2);
}

const isLoopback = (url) => ['127.0.0.1', '[::1]', 'localhost'].includes(new URL(url).hostname);
const log = (line) => { if (process.env.BROWSER_LOG) appendFileSync(process.env.BROWSER_LOG, line + '\n'); };

async function main() {
  let url = start;
  const cookies = new Map();
  for (let hop = 0; hop < 20; hop++) {
    if (!isLoopback(url)) throw new Error(`refusing to visit a non-loopback URL: ${url}`);
    log(url);
    const headers = {};
    if (cookies.size) headers.cookie = [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const response = await fetch(url, { redirect: 'manual', headers, signal: AbortSignal.timeout(10_000) });
    for (const cookie of response.headers.getSetCookie?.() ?? []) {
      const [pair] = cookie.split(';');
      const index = pair.indexOf('=');
      cookies.set(pair.slice(0, index).trim(), pair.slice(index + 1));
    }
    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location) {
      url = new URL(location, url).toString();
      continue;
    }
    const body = await response.text();
    if (new URL(url).port !== new URL(start).port) {
      // Another port than the provider's: tessera's loopback server answered.
      console.error(`browser: ${response.status} from the redirect target`);
      log(`PAGE ${response.status} ${body.replace(/\s+/g, ' ').slice(0, 300)}`);
      return response.status < 400;
    }
    throw new Error(`stuck at ${url}: HTTP ${response.status}: ${body.slice(0, 200)}`);
  }
  throw new Error('too many redirects');
}

main().then(
  (ok) => process.exit(ok ? 0 : 1),
  (error) => { console.error(`browser: ${error.message}`); process.exit(1); },
);
