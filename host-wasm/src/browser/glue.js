// Platform adapters of tessera's browser host: storage, the sign-in window, the lock.
//
// Only plumbing lives here: which browser API to use and how to call it. Every OAuth
// decision is taken by the engine (Rust); the host (src/browser/*.rs) only performs its
// effects. Each adapter is replaceable by the embedder through `Session.open` options.

/** chrome.storage.local when present (extension pages and service workers), else IndexedDB. */
export function defaultStorage() {
  const area = globalThis.chrome?.storage?.local;
  if (area) return chromeStorage(area);
  if (globalThis.indexedDB) return indexedDbStorage("tessera", "sessions");
  throw new Error(
    "no storage available (neither chrome.storage nor IndexedDB): pass options.storage",
  );
}

function chromeStorage(area) {
  // Content scripts may read chrome.storage.local unless its access level says otherwise:
  // restrict it to the extension's own pages and workers before the first write.
  let restricted;
  const restrictAccess = () => (restricted ??= trustedContextsOnly(area));
  return {
    async get(key) {
      const items = await area.get(key);
      return items[key] ?? null;
    },
    async set(key, value) {
      await restrictAccess();
      await area.set({ [key]: value });
    },
    async remove(key) {
      await area.remove(key);
    },
    restrictAccess,
  };
}

/** Resolves with undefined once `area` is closed to content scripts, else with a warning
 *  (never rejects: an older Chrome without the setting must still store the session). */
async function trustedContextsOnly(area) {
  let why;
  try {
    if (typeof area.setAccessLevel !== "function") why = "this browser does not offer it";
    else await area.setAccessLevel({ accessLevel: "TRUSTED_CONTEXTS" });
  } catch (error) {
    why = String(error?.message ?? error);
  }
  if (why === undefined) return undefined;
  const warning = `chrome.storage.local.setAccessLevel({accessLevel: "TRUSTED_CONTEXTS"}) \
failed (${why}): content scripts can read the stored session (it is encrypted at rest \
unless encryptAtRest is false)`;
  console.warn(`tessera: ${warning}`);
  return warning;
}

/** What `restrictAccess` of the default chrome.storage adapter said; undefined for other
 *  storage. */
export function restrictStorage(storage) {
  return typeof storage?.restrictAccess === "function"
    ? storage.restrictAccess()
    : Promise.resolve(undefined);
}

/** One object store of one IndexedDB database: `run(mode, store => request)` resolves with
 *  the request's result once its transaction committed. */
function indexedDbStore(database, store) {
  let opened;
  const db = () =>
    (opened ??= new Promise((resolve, reject) => {
      const request = indexedDB.open(database, 1);
      request.onupgradeneeded = () => request.result.createObjectStore(store);
      request.onsuccess = () => {
        // Let a deletion (clearing site data, a test) through; reopen on the next call.
        request.result.onversionchange = () => {
          request.result.close();
          opened = undefined;
        };
        resolve(request.result);
      };
      request.onerror = () => reject(request.error);
    }));
  return async (mode, operation) => {
    const transaction = (await db()).transaction(store, mode);
    const request = operation(transaction.objectStore(store));
    return new Promise((resolve, reject) => {
      transaction.oncomplete = () => resolve(request.result);
      transaction.onerror = () => reject(transaction.error);
      transaction.onabort = () => reject(transaction.error ?? new Error("transaction aborted"));
    });
  };
}

function indexedDbStorage(database, store) {
  const run = indexedDbStore(database, store);
  return {
    async get(key) {
      return (await run("readonly", (s) => s.get(key))) ?? null;
    },
    async set(key, value) {
      await run("readwrite", (s) => s.put(value, key));
    },
    async remove(key) {
      await run("readwrite", (s) => s.delete(key));
    },
  };
}

// Encryption at rest: AES-256-GCM under a key that WebCrypto generated non-extractable and
// that lives only in this origin's IndexedDB (database "tessera-keys"): JavaScript can use
// it, never read it. A sealed value is
//   tessera-aes-gcm.1.<key id>.<12-byte IV, base64url>.<ciphertext and tag, base64url>
// with the storage key as additional data (a value copied to another key does not open).
// The prefix is the one src/browser/storage.rs checks.
const SEALED = "tessera-aes-gcm.1.";
const KEY_RECORD = "session-key";

/** The cipher, or undefined where WebCrypto or IndexedDB is missing (node, some workers). */
export function sessionCipher() {
  if (!globalThis.crypto?.subtle || !globalThis.indexedDB) return undefined;
  const run = indexedDbStore("tessera-keys", "keys");
  const keys = new Map(); // key id -> CryptoKey: a record is never changed, only replaced
  const text = new TextEncoder();
  const failure = (kind, message) => Object.assign(new Error(message), { kind });
  return {
    /** Encrypts `plain` under the origin's key, generated (once, for every context) if none. */
    async seal(plain, label) {
      const fresh = {
        id: b64(crypto.getRandomValues(new Uint8Array(9))),
        key: await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, [
          "encrypt",
          "decrypt",
        ]),
      };
      // One readwrite transaction: two contexts sealing at once agree on one key.
      const { id, key } = await run("readwrite", (store) => {
        const request = store.get(KEY_RECORD);
        request.onsuccess = () => {
          if (!request.result) store.put(fresh, KEY_RECORD);
        };
        return { get result() { return request.result ?? fresh; } };
      });
      const iv = crypto.getRandomValues(new Uint8Array(12));
      const params = { name: "AES-GCM", iv, additionalData: text.encode(label) };
      const sealed = await crypto.subtle.encrypt(params, key, text.encode(plain));
      return `${SEALED}${id}.${b64(iv)}.${b64(new Uint8Array(sealed))}`;
    },
    /** Decrypts what `seal` wrote; rejects with `kind` "key_missing" or "undecryptable". */
    async open(value, label) {
      const [id, iv, data, extra] = value.slice(SEALED.length).split(".");
      let bytes;
      try {
        bytes = [unb64(iv), unb64(data)];
      } catch {}
      if (!bytes || extra !== undefined || bytes[0].length !== 12) {
        throw failure("undecryptable", "it is not a well-formed encrypted value");
      }
      if (!keys.has(id)) {
        const record = await run("readonly", (store) => store.get(KEY_RECORD));
        if (record?.id !== id) {
          throw failure(
            "key_missing",
            `it was encrypted with key ${id}, which this browser profile no longer has ` +
              `(IndexedDB "tessera-keys" was cleared or is another profile's)`,
          );
        }
        keys.set(id, record.key);
      }
      const params = { name: "AES-GCM", iv: bytes[0], additionalData: text.encode(label) };
      try {
        const plain = await crypto.subtle.decrypt(params, keys.get(id), bytes[1]);
        return new TextDecoder("utf-8", { fatal: true }).decode(plain);
      } catch {
        throw failure(
          "undecryptable",
          `it does not decrypt with key ${id} (altered, truncated or moved from another storage key)`,
        );
      }
    },
  };
}

const b64 = (bytes) =>
  btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const unb64 = (text) =>
  Uint8Array.from(atob(text.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));

/** chrome.identity.launchWebAuthFlow, or undefined outside an extension. */
export function defaultLauncher() {
  const identity = globalThis.chrome?.identity;
  if (typeof identity?.launchWebAuthFlow !== "function") return undefined;
  return async (url) => {
    const redirect = await identity.launchWebAuthFlow({ url, interactive: true });
    if (typeof redirect !== "string") throw new Error("the sign-in window returned no redirect");
    return redirect;
  };
}

/** `https://<extension-id>.chromiumapp.org/` in an extension, else undefined. */
export function defaultRedirectUri() {
  const identity = globalThis.chrome?.identity;
  return typeof identity?.getRedirectURL === "function" ? identity.getRedirectURL() : undefined;
}

/**
 * Takes the Web Lock `name` (shared by every page and worker of this origin) and resolves
 * with the function that releases it. Without Web Locks there is only this context to
 * coordinate with, and the release does nothing.
 */
export function acquireLock(name, timeoutMs) {
  const locks = globalThis.navigator?.locks;
  if (typeof locks?.request !== "function") return Promise.resolve(() => {});
  return new Promise((acquired, failed) => {
    const options = { signal: AbortSignal.timeout(timeoutMs) };
    locks
      .request(name, options, () => new Promise((release) => acquired(() => release())))
      .catch(failed);
  });
}

export function warn(message) {
  console.warn(`tessera: ${message}`);
}

/** Calls a listener; an exception in the embedder's code must not stop the session. */
export function notify(listener, event) {
  try {
    listener(event);
  } catch (error) {
    console.error("tessera: an event listener threw", error);
  }
}

/** An Error the embedder can tell apart: `name` "TesseraError" and a stable `code`. */
export function tesseraError(code, message) {
  const error = new Error(message);
  error.name = "TesseraError";
  error.code = code;
  return error;
}

/** An AbortSignal that fires after `ms` milliseconds (the request's whole time limit). */
export function timeoutSignal(ms) {
  return AbortSignal.timeout(ms);
}

/** setTimeout, capped to what browsers accept (longer delays fire early; the host re-arms). */
export function armTimer(ms, callback) {
  return setTimeout(callback, Math.min(Math.max(ms, 0), 2147483647));
}

export function disarmTimer(id) {
  clearTimeout(id);
}

// ID-token signatures (docs/adr/018): the engine chose the key and the algorithm; WebCrypto
// does the arithmetic. RFC 7518 §3: PSS salts are as long as the hash; ES256's R || S is
// WebCrypto's own ECDSA format.
const rsa = (name, hash, saltLength) => ({
  key: { name, hash },
  verify: saltLength === undefined ? { name } : { name, saltLength },
});
const SIGNATURE_ALGORITHMS = {
  RS256: rsa("RSASSA-PKCS1-v1_5", "SHA-256"),
  RS384: rsa("RSASSA-PKCS1-v1_5", "SHA-384"),
  RS512: rsa("RSASSA-PKCS1-v1_5", "SHA-512"),
  PS256: rsa("RSA-PSS", "SHA-256", 32),
  PS384: rsa("RSA-PSS", "SHA-384", 48),
  PS512: rsa("RSA-PSS", "SHA-512", 64),
  ES256: {
    key: { name: "ECDSA", namedCurve: "P-256" },
    verify: { name: "ECDSA", hash: "SHA-256" },
  },
  EdDSA: { key: { name: "Ed25519" }, verify: { name: "Ed25519" } },
};

/** Resolves with whether the public JWK `keyJson` (the engine's JSON of it) signed
 *  `message` (the JWS signing input) with the JWS algorithm `alg`, giving `signature`
 *  (base64url). Never rejects: a key WebCrypto cannot import, an algorithm it lacks or a
 *  signature of the wrong shape is `false`. */
export async function verifySignature(alg, keyJson, message, signature) {
  try {
    const params = Object.hasOwn(SIGNATURE_ALGORITHMS, alg) ? SIGNATURE_ALGORITHMS[alg] : null;
    if (!params) return false;
    const key = JSON.parse(keyJson);
    // Only the key's public members: `alg` and `use` were judged by the engine already.
    const jwk = { kty: key.kty };
    for (const member of ["crv", "n", "e", "x", "y"]) {
      if (typeof key[member] === "string") jwk[member] = key[member];
    }
    const imported = await crypto.subtle.importKey("jwk", jwk, params.key, false, ["verify"]);
    const bytes = Uint8Array.from(atob(signature.replace(/-/g, "+").replace(/_/g, "/")), (c) =>
      c.charCodeAt(0),
    );
    return (
      (await crypto.subtle.verify(params.verify, imported, bytes, new TextEncoder().encode(message))) ===
      true
    );
  } catch {
    return false;
  }
}
