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
  return {
    async get(key) {
      const items = await area.get(key);
      return items[key] ?? null;
    },
    async set(key, value) {
      await area.set({ [key]: value });
    },
    async remove(key) {
      await area.remove(key);
    },
  };
}

function indexedDbStorage(database, store) {
  let opened;
  const db = () =>
    (opened ??= new Promise((resolve, reject) => {
      const request = indexedDB.open(database, 1);
      request.onupgradeneeded = () => request.result.createObjectStore(store);
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    }));
  const run = async (mode, operation) => {
    const transaction = (await db()).transaction(store, mode);
    const request = operation(transaction.objectStore(store));
    return new Promise((resolve, reject) => {
      transaction.oncomplete = () => resolve(request.result);
      transaction.onerror = () => reject(transaction.error);
      transaction.onabort = () => reject(transaction.error ?? new Error("transaction aborted"));
    });
  };
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
