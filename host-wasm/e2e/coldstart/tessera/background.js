// Cold start of tessera-wasm in an MV3 service worker: instantiate the module, open the
// session (it loads the stored session from chrome.storage.local) and get the access token.
// The stored token is valid: no network. Times are performance.now() in the worker, i.e.
// milliseconds since the worker started; `script` is when this module's body runs (after
// the static imports were fetched, compiled and evaluated).
import init, { Session } from "./pkg/tessera_wasm.js";

const script = performance.now();
const measured = (async () => {
  const { config } = await chrome.storage.local.get("config");
  await init();
  const ready = performance.now();
  const session = await Session.open(config);
  const token = await session.getAccessToken();
  const end = performance.now();
  session.close();
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
