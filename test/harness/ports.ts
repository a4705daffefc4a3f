import { createServer } from "node:net";

/**
 * Ports this process handed out already. The OS may give a port that was just closed to the next
 * listen(0), so two calls in a row could return the same one (a replicated-scheduler test once got
 * one port for two members' peers); a port is handed out once per process.
 */
const handedOut = new Set<number>();
const MAX_ATTEMPTS = 50;

function listenOnce(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** A loopback port that was free a moment ago (the OS picks it), never one this process handed out before. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const port = await listenOnce();
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error(`freePort: the OS gave only ports already handed out, ${MAX_ATTEMPTS} times in a row`);
}
