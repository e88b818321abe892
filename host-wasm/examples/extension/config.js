// Which provider and client the example signs in to.
//
// DEFAULT_CONFIG is tessera's session configuration (the engine's `Config`, snake_case:
// see host-wasm/README.md and the `SessionConfig` declaration in pkg/tessera_wasm.d.ts).
// The defaults fit the local test provider started on port 9000 (see README.md); point
// them at your own provider, or override them at run time without rebuilding:
//
//   chrome.runtime.sendMessage({ type: "configure", config: { issuer: "…", client_id: "…" } })
//
// from any page of the extension (the fields given replace the defaults; `config: null`
// goes back to the defaults). The override is kept in chrome.storage.local under
// CONFIG_KEY, so it survives the service worker being stopped.

export const DEFAULT_CONFIG = Object.freeze({
  issuer: "http://127.0.0.1:9000",
  client_id: "tessera-ext",
  scopes: ["openid", "offline_access", "profile", "email"],
  // redirect_uri defaults to chrome.identity.getRedirectURL():
  // https://<extension-id>.chromiumapp.org/ — register exactly that with the provider.
});

export const CONFIG_KEY = "example.config";

/** The configuration in force: the defaults with the stored override on top. */
export async function loadConfig() {
  const { [CONFIG_KEY]: override } = await chrome.storage.local.get(CONFIG_KEY);
  return { ...DEFAULT_CONFIG, ...(override ?? {}) };
}

/** Stores an override (an object of SessionConfig fields), or removes it (null). */
export async function saveConfig(override) {
  if (override == null) {
    await chrome.storage.local.remove(CONFIG_KEY);
  } else if (typeof override === "object" && !Array.isArray(override)) {
    await chrome.storage.local.set({ [CONFIG_KEY]: override });
  } else {
    throw new TypeError("configure: config must be an object of SessionConfig fields, or null");
  }
}
