// The extension's service worker: it owns the tessera session. The popup (and any other
// page of the extension) asks it for things with chrome.runtime.sendMessage:
//
//   {type: "signIn"}      sign in with PKCE (chrome.identity.launchWebAuthFlow)
//   {type: "status"}      who is signed in, until when
//   {type: "signOut"}     revoke at the provider and forget the session
//   {type: "callApi"}     GET the provider's userinfo endpoint with the access token
//   {type: "configure", config: {...} | null}   override config.js (null: defaults)
//
// Every reply is {ok: true, ...} or {ok: false, error: {code, message}}, where `code` is
// a TesseraError code (host-wasm/README.md) or "api" / "invalid_argument" from here.
//
// Chrome stops this worker when it is idle and starts it again for the next message:
// nothing here keeps state that matters in memory. tessera writes every change to
// chrome.storage.local before it answers, and Session.open loads it back.

import init, { Session } from "./pkg/tessera_wasm.js";
import { loadConfig, saveConfig } from "./config.js";

// Service workers forbid top-level await: start once here, await inside the listeners.
const wasm = init();
let ready = start();
let lastEvent = null;

function start() {
  const opening = wasm.then(() => loadConfig()).then(async (config) => {
    const session = await Session.open(config);
    session.onEvent((event) => {
      // Only the kind of event: a user_code event carries a code that is not for logs.
      console.info("tessera event:", event.type, event.reason ?? "");
      lastEvent = { type: event.type, reason: event.reason, message: event.message };
    });
    return { session, config };
  });
  opening.catch((error) => console.warn("tessera: the session did not open:", error.code, error.message));
  return opening;
}

const handlers = {
  async signIn({ session }) {
    const result = await session.login();
    return { identity: result.identity, scopes: result.scopes, expiresAt: result.expiresAt };
  },

  async status({ session, config }) {
    return { status: await session.status(), issuer: config.issuer, clientId: config.client_id, lastEvent };
  },

  async signOut({ session }) {
    const result = await session.logout();
    // result.endSessionUrl, when present, would also end the provider's own browser
    // session (RP-initiated logout); this example only revokes the tokens.
    return { serverCalls: result.serverCalls };
  },

  async callApi({ session, config }) {
    const url = await userinfoUrl(config);
    let token = await session.getAccessToken();
    let response = await get(url, token);
    let retried = false;
    if (response.status === 401) {
      // The API refused a token tessera thought valid (revoked, clock skew...): one
      // refresh, one retry. tessera does not refresh again if a newer token exists.
      token = await session.tokenRejected(token);
      response = await get(url, token);
      retried = true;
    }
    if (!response.ok) {
      throw apiError(`${url} answered HTTP ${response.status}${retried ? " after a refresh and a retry" : ""}`);
    }
    // Which token was used, without showing it: its SHA-256, shortened.
    return { url, retried, tokenId: await fingerprint(token), body: await response.json() };
  },

  async configure(_session, message) {
    await saveConfig(message.config);
    const previous = ready;
    ready = start();
    (await previous.catch(() => null))?.session.close();
    const { config } = await ready;
    return { config };
  },
};

chrome.runtime.onMessage.addListener((message, sender, reply) => {
  if (sender.id !== chrome.runtime.id) return false;
  const handler = Object.hasOwn(handlers, message?.type) ? handlers[message.type] : undefined;
  if (!handler) {
    reply({ ok: false, error: { code: "invalid_argument", message: `unknown message ${JSON.stringify(message?.type)}` } });
    return false;
  }
  // `configure` must not wait for a session that may never open (a bad configuration).
  const opened = message.type === "configure" ? Promise.resolve(null) : ready;
  opened
    .then((session) => handler(session, message))
    .then(
      (result) => reply({ ok: true, ...result }),
      (error) => reply({ ok: false, error: { code: error?.code ?? "error", message: String(error?.message ?? error) } }),
    );
  return true; // the reply comes asynchronously
});

const discovered = new Map();

/** The userinfo endpoint: from the configuration, else from the provider's discovery. */
async function userinfoUrl(config) {
  if (config.endpoints?.userinfo) return config.endpoints.userinfo;
  if (!config.issuer) throw apiError("no userinfo endpoint: configure endpoints.userinfo or an issuer");
  if (!discovered.has(config.issuer)) {
    const response = await fetch(`${config.issuer}/.well-known/openid-configuration`);
    if (!response.ok) throw apiError(`discovery answered HTTP ${response.status}`);
    const { userinfo_endpoint: url } = await response.json();
    if (typeof url !== "string") throw apiError("the provider has no userinfo endpoint");
    discovered.set(config.issuer, url);
  }
  return discovered.get(config.issuer);
}

function get(url, token) {
  return fetch(url, { headers: { Authorization: `Bearer ${token}` } });
}

async function fingerprint(token) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token));
  return Array.from(new Uint8Array(digest).slice(0, 6), (b) => b.toString(16).padStart(2, "0")).join("");
}

function apiError(message) {
  return Object.assign(new Error(message), { code: "api" });
}

// For the service worker's DevTools console (chrome://extensions → "service worker"),
// and for the end-to-end test, which opens extra sessions with its own launcher and
// storage: `await tesseraExample.session()`, `tesseraExample.Session.open(...)`.
globalThis.tesseraExample = {
  Session,
  session: async () => (await ready).session,
  config: async () => (await ready).config,
};
