// Compiled (never run) by build.sh with `tsc --strict` against the generated
// declarations: fails the build when the published types and the documented usage drift.
import init, { Session } from "../pkg/tessera_wasm.js";
import type { SessionEvent, Status, TesseraError, LoginResult, LogoutResult } from "../pkg/tessera_wasm.js";

export async function usage(): Promise<void> {
  await init();
  const session: Session = await Session.open(
    { issuer: "https://login.example.com", client_id: "my-extension", scopes: ["openid", "offline_access"] },
    {
      storageKey: "my-extension.session",
      launcher: async (url: string, redirectUri: string) => `${redirectUri}?from=${url}`,
      storage: {
        get: async (key: string) => localStorage.getItem(key),
        set: async (key: string, value: string) => localStorage.setItem(key, value),
        remove: async (key: string) => localStorage.removeItem(key),
      },
    },
  );
  session.onEvent((event: SessionEvent) => {
    if (event.type === "user_code") console.log(event.verification_uri, event.user_code);
    if (event.type === "logged_out") console.log(event.reason, event.message);
  });
  const login: LoginResult = await session.login({ method: "browser" });
  const expiresAt: number = login.expiresAt;
  const token: string = await session.getAccessToken({ minTtlSecs: 60 });
  const retried: string = await session.tokenRejected(token);
  const status: Status = await session.status();
  const signedIn: boolean = status.logged_in && status.refresh_token_present;
  try {
    const result: LogoutResult = await session.logout({ force: false });
    console.log(result.endSessionUrl, result.serverCalls.length, expiresAt, retried, signedIn);
  } catch (e) {
    const error = e as TesseraError;
    if (error.code === "network") console.log(error.message);
  }
  session.close();
}
