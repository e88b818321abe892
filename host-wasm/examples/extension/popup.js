// The popup: buttons that message the service worker (background.js), which owns the
// session. The popup holds no token: it shows who is signed in and what the API said.

const $ = (id) => document.getElementById(id);
const buttons = { "sign-in": "signIn", status: "status", "call-api": "callApi", "sign-out": "signOut" };

async function send(message) {
  try {
    return await chrome.runtime.sendMessage(message);
  } catch (error) {
    return { ok: false, error: { code: "error", message: `the service worker did not answer: ${error.message}` } };
  }
}

function showStatus(reply) {
  if (!reply.ok) {
    $("provider").textContent = "";
    $("identity").textContent = $("expiry").textContent = $("state").textContent = "–";
    return;
  }
  const { status, issuer, clientId, lastEvent } = reply;
  $("provider").textContent = `${clientId} at ${issuer ?? "(no issuer)"}`;
  const who = status.identity;
  $("identity").textContent = status.logged_in
    ? [who?.name, who?.email && `<${who.email}>`].filter(Boolean).join(" ") || who?.subject || "(unknown)"
    : "not signed in";
  $("expiry").textContent = status.expires_at
    ? `${status.expires_in_secs > 0 ? `expires in ${status.expires_in_secs} s` : "expired"} ` +
      `(${new Date(status.expires_at).toLocaleTimeString()})` +
      (status.refresh_token_present ? ", refreshable" : "")
    : "–";
  $("state").textContent = status.state;
  const problems = [];
  if (status.storage_problem) problems.push(`Stored session unreadable: ${status.storage_problem}`);
  if (!status.logged_in && lastEvent?.type === "logged_out" && lastEvent.reason !== "requested") {
    problems.push(`Signed out (${lastEvent.reason}): sign in again.`);
  }
  $("problem").textContent = problems.join(" ");
  $("problem").hidden = problems.length === 0;
}

function showOutcome(action, reply) {
  $("error").hidden = reply.ok;
  $("error").textContent = reply.ok ? "" : `${reply.error.code}: ${reply.error.message}`;
  $("error").dataset.code = reply.ok ? "" : reply.error.code;
  $("result").hidden = !(reply.ok && action === "callApi");
  $("result").textContent = reply.ok && action === "callApi"
    ? `GET ${reply.url}${reply.retried ? " (retried after a 401)" : ""} with token #${reply.tokenId}\n` +
      JSON.stringify(reply.body, null, 2)
    : "";
}

/** Records the reply of the last action (what the e2e test waits for and reads). */
function publish(action, reply) {
  const out = $("reply");
  out.dataset.action = action;
  out.dataset.ok = String(reply.ok);
  out.value = JSON.stringify(reply);
  out.dataset.seq = String(Number(out.dataset.seq) + 1);
}

async function run(action) {
  for (const id of Object.keys(buttons)) $(id).disabled = true;
  try {
    const reply = await send({ type: action });
    showOutcome(action, reply);
    showStatus(action === "status" ? reply : await send({ type: "status" }));
    publish(action, reply);
  } finally {
    for (const id of Object.keys(buttons)) $(id).disabled = false;
  }
}

for (const [id, action] of Object.entries(buttons)) $(id).addEventListener("click", () => run(action));
run("status");
