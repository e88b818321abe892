// The same step as ../tessera/background.js with oauth4webapi (its whole module, minified
// by esbuild as the size report bundles it): the app keeps the token response itself, so
// the first token after a cold start is: load the module, read the stored token, check its
// expiry. oauth4webapi is not called for a valid token (no network), as with tessera.
import * as oauth from "./oauth4webapi.min.js";

const script = performance.now();
const measured = (async () => {
  const { config, stored } = await chrome.storage.local.get(["config", "stored"]);
  const ready = performance.now();
  // What an app holds besides the token: the authorization server and the client.
  const as = { issuer: "http://127.0.0.1:9", token_endpoint: config.endpoints.token };
  const client = { client_id: config.client_id };
  const session = JSON.parse(stored);
  if (!(session.expires_at > Date.now() + 30_000)) throw new Error("expired");
  void oauth.None(), void as, void client;
  const token = session.access_token;
  const end = performance.now();
  return { script, ready, end, tokenLength: token.length };
})();

chrome.runtime.onMessage.addListener((message, _sender, reply) => {
  if (message?.type !== "coldStart") return false;
  measured.then(
    (times) => reply({ ok: true, ...times }),
    (error) => reply({ ok: false, error: String(error?.message ?? error) }),
  );
  return true;
});
