// Loads an optimized tessera-wasm module with its JS glue and drives it once, so that
// measure.sh never reports the size of a module that does not work.
// Usage: node smoke.mjs <glue .js> <module .wasm> <specs dir>
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [glue, wasm, specs] = process.argv.slice(2);
const api = await import(pathToFileURL(glue));
api.initSync({ module: readFileSync(wasm) });

const now = 1_700_000_000_000;
// The bare Engine class (feature `engine-api`; not in the npm package).
let engine = { stateName: "(no Engine class)" };
const effects = [];
if (api.Engine) {
engine = new api.Engine(JSON.stringify({ issuer: "https://op.example", client_id: "app" }), new Uint8Array(32), now);
const first = JSON.parse(engine.pollEffect());
if (first.type !== "load_session") throw new Error(`unexpected first effect ${JSON.stringify(first)}`);
engine.handle(now, JSON.stringify({ type: "session_loaded" }));
engine.handle(now, JSON.stringify({ type: "login", method: "browser", redirect_uri: "http://127.0.0.1:1/cb" }));
for (let e; (e = engine.pollEffect()) !== undefined; ) effects.push(JSON.parse(e));
if (effects.length === 0) throw new Error("a browser login produced no effect");
}
// The Session class too: open on a storage in memory, read its status.
const stored = new Map();
const storage = { get: async (k) => stored.get(k), set: async (k, v) => void stored.set(k, v), remove: async (k) => void stored.delete(k) };
if (api.Session) {
const session = await api.Session.open({ issuer: "https://op.example", client_id: "app" }, { storage });
const status = await session.status();
if (status.logged_in !== false || status.state !== "logged_out") throw new Error(`unexpected status ${JSON.stringify(status)}`);
session.close();
}
let replayed = 0;
if (api.replayTranscript) {
  for (const flow of readdirSync(specs, { withFileTypes: true }).filter((d) => d.isDirectory())) {
    for (const file of readdirSync(join(specs, flow.name)).filter((f) => f.endsWith(".toml"))) {
      api.replayTranscript(`specs/${flow.name}/${file}`, readFileSync(join(specs, flow.name, file), "utf8"));
      replayed += 1;
    }
  }
}
console.log(`smoke: tessera-wasm ${api.engineVersion()} ok (state ${engine.stateName}, ${effects.length} effects` +
  (api.replayTranscript ? `, ${replayed} transcripts replayed)` : ")"));
