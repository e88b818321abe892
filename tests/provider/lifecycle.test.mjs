// The provider process: its environment knobs, and how it exits.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import {
  TEST_TIMEOUT,
  startServer,
  stopServer,
  randomPort,
  tokenRequest,
  postJson,
  loginAndExchange,
  deviceAuthorize,
  devicePoll,
} from './support.mjs';

describe('process lifecycle and env', { timeout: 30_000 }, () => {
  test('ACCESS_TOKEN_TTL / DEVICE_CODE_TTL are honoured; exits when stdin closes', TEST_TIMEOUT, async () => {
    const srv = await startServer({ ACCESS_TOKEN_TTL: '2', DEVICE_CODE_TTL: '2', DEVICE_POLL_INTERVAL: 'none' });
    try {
      const t = await loginAndExchange(srv, { redirectUri: `http://127.0.0.1:${randomPort()}/callback` });
      assert.equal(t.expires_in, 2);
      const da = await deviceAuthorize(srv);
      assert.equal(da.expires_in, 2);
      assert.equal(da.interval, undefined);
      await new Promise((r) => { setTimeout(r, 3_100); });
      assert.equal((await postJson(srv, '/test/introspect', { token: t.access_token })).body.active, false);
      // The device code has expired.
      assert.equal((await postJson(srv, '/test/device/approve', { user_code: da.user_code })).status, 404);
      const expired = await devicePoll(srv, da.device_code);
      assert.equal(expired.status, 400);
      assert.equal(expired.body.error, 'expired_token');
      // The refresh token still works and yields a fresh access token.
      const r = await tokenRequest(srv, { grant_type: 'refresh_token', client_id: 'tessera-cli', refresh_token: t.refresh_token });
      assert.equal(r.status, 200);
      assert.equal((await postJson(srv, '/test/introspect', { token: r.body.access_token })).body.active, true);

      const exited = once(srv.child, 'exit');
      srv.child.stdin.end();
      const timer = setTimeout(() => srv.child.kill('SIGKILL'), 5_000);
      const [code, signal] = await exited;
      clearTimeout(timer);
      assert.equal(signal, null, 'must exit by itself, not be killed');
      assert.equal(code, 0);
      assert.equal(srv.stdout().trim().split('\n').length, 1, 'only the READY line on stdout');
    } finally {
      await stopServer(srv);
    }
  });

  test('exits cleanly on SIGTERM; PORT is honoured', TEST_TIMEOUT, async () => {
    const probe = await startServer();
    const { port } = probe;
    await stopServer(probe);
    assert.equal(probe.child.exitCode, 0);
    const srv = await startServer({ PORT: String(port) });
    assert.equal(srv.port, port);
    assert.equal(srv.issuer, `http://127.0.0.1:${port}`);
    const exited = once(srv.child, 'exit');
    srv.child.kill('SIGTERM');
    const [code] = await exited;
    assert.equal(code, 0);
  });
});
