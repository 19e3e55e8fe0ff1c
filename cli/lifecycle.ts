// Signal handling for the CLI. Node's default reaction to SIGINT/SIGTERM kills the process without
// running 'exit' handlers, which would leave an embedded PostgreSQL running; so every signal ends
// in process.exit() (the postgres-server exit hook then gives up our share of the server). A command
// that must clean up first (mount) claims the signals with waitForSignal() and exits on its own.
const SIGNALS = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 } as const;
type Sig = keyof typeof SIGNALS;

let claim: ((sig: Sig) => void) | null = null;
let received: Sig | null = null;

export function installSignalHandlers(): void {
  for (const sig of Object.keys(SIGNALS) as Sig[]) {
    process.on(sig, () => {
      // A second signal, or nobody waiting to clean up: leave now.
      if (received || !claim) process.exit(128 + SIGNALS[sig]);
      received = sig;
      claim(sig);
    });
  }
}

/** Resolves on the first SIGINT, SIGTERM or SIGHUP; until then those signals no longer exit. */
export function waitForSignal(): Promise<Sig> {
  return new Promise((resolve) => {
    claim = resolve;
  });
}
