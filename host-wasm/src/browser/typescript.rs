//! TypeScript declarations of the values that cross as plain objects. wasm-bindgen writes
//! them into `tessera_wasm.d.ts`; CI type-checks an example against it with `tsc`.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const DECLARATIONS: &str = r#"
/** The engine's configuration (snake_case, as in specs/README.md). Only `client_id` is required. */
export interface SessionConfig {
  client_id: string;
  /** Enables discovery and the RFC 9207 `iss` check. */
  issuer?: string;
  /** The `iss` of ID tokens when it is not `issuer`; `{tenantid}` stands for the token's `tid`. */
  id_token_issuer?: string;
  scopes?: string[];
  /** Default in an extension: chrome.identity.getRedirectURL(). */
  redirect_uri?: string;
  endpoints?: Endpoints;
  discovery?: boolean;
  authorization_params?: Record<string, string>;
  token_request?: "form" | "json";
  refresh_buffer_secs?: number;
  callback_timeout_secs?: number;
  device_poll_interval_secs?: number;
  assumed_token_lifetime_secs?: number;
  max_retry_backoff_secs?: number;
  http_timeout_ms?: number;
  max_response_bytes?: number;
  post_logout_redirect_uri?: string;
}

export interface Endpoints {
  authorization?: string;
  token?: string;
  device_authorization?: string;
  revocation?: string;
  userinfo?: string;
  end_session?: string;
  server_logout?: string;
  /** The client authentication methods the token endpoint accepts (RFC 8414). */
  token_auth_methods?: string[];
  /** The same for the revocation endpoint; unset: the token endpoint's. */
  revocation_auth_methods?: string[];
}

export interface SessionOptions {
  /** Where the session is kept. Default: chrome.storage.local, else IndexedDB. */
  storage?: SessionStorage;
  /** Default: "tessera.session.<client_id>". */
  storageKey?: string;
  /** Seal the stored session with AES-GCM under a non-extractable WebCrypto key kept in
   *  IndexedDB ("tessera-keys"). Default: true with the default storage (where WebCrypto
   *  and IndexedDB exist), false with `storage`. A sealed value is read either way. */
  encryptAtRest?: boolean;
  /** Opens `url` and resolves with the final redirect URL (to `redirectUri`).
   *  Default: chrome.identity.launchWebAuthFlow({ url, interactive: true }). */
  launcher?: (url: string, redirectUri: string) => Promise<string>;
}

/** A string store. Values are written whole; `get` of a missing key gives null or undefined. */
export interface SessionStorage {
  get(key: string): Promise<string | null | undefined>;
  set(key: string, value: string): Promise<void>;
  remove(key: string): Promise<void>;
}

export interface LoginOptions { method?: "browser" | "device"; }
export interface TokenOptions { minTtlSecs?: number; }
export interface LogoutOptions { force?: boolean; }

export interface Identity {
  subject?: string;
  email?: string;
  name?: string;
  preferred_username?: string;
  /** Groups or teams the provider names (at most 32). */
  groups?: string[];
}

export interface LoginResult {
  identity?: Identity;
  scopes: string[];
  /** Unix milliseconds. */
  expiresAt: number;
}

export interface LogoutResult {
  /** Open it to end the provider's browser session too. */
  endSessionUrl?: string;
  serverCalls: { call: string; error?: string }[];
  /** Every revocation was confirmed by the provider. */
  revoked: boolean;
  /** The provider may still accept the tokens until they expire (a revocation failed, or
   * the provider offers none). The local session is deleted either way. */
  tokensMayStillBeValid: boolean;
}

export interface Status {
  state: string;
  logged_in: boolean;
  issuer?: string;
  identity?: Identity;
  scopes: string[];
  /** Unix milliseconds. */
  expires_at?: number;
  expires_in_secs?: number;
  refresh_token_present: boolean;
  login_in_progress: boolean;
  /** Why the stored session could not be read or written, until a write succeeds. */
  storage_problem?: string;
  /** The kind of `storage_problem`. */
  storage_error?: StorageError;
  /** The stored session is less protected than it should be: chrome.storage.local could
   *  not be closed to content scripts, or it is stored unencrypted. */
  storage_warning?: string;
}

export type SessionEvent =
  | { type: "user_code"; user_code: string; verification_uri: string;
      verification_uri_complete?: string; expires_at: number }
  | { type: "logged_in"; identity?: Identity }
  | { type: "logged_out"; reason: "requested" | "session_ended" | "logged_out_elsewhere";
      message?: string }
  | { type: "refresh_failed"; message: string; retry_at?: number }
  | { type: "storage_failed"; detail: string; error?: StorageError };

/** `unavailable`: the storage call failed (quota, encryption unavailable); `unreadable`: not a
 *  tessera session; `key_missing`: encrypted with a key this profile no longer has;
 *  `undecryptable`: encrypted, but altered or moved; `conflict`: replaced meanwhile. The
 *  stored value is left as it is; a new sign-in replaces it. */
export type StorageError = "unavailable" | "unreadable" | "key_missing" | "undecryptable" | "conflict";

/** What every promise of a Session rejects with. */
export interface TesseraError extends Error {
  name: "TesseraError";
  code: "not_logged_in" | "denied" | "network" | "protocol" | "config" | "interrupted"
      | "storage" | "closed" | "invalid_argument";
}
"#;
