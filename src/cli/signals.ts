/** Ctrl-C and SIGTERM as an AbortSignal, so a command stops its requests and says where it stopped. */
export interface Interrupt {
  readonly signal: AbortSignal;
  dispose(): void;
}

export function interruptSignal(): Interrupt {
  const controller = new AbortController();
  const stop = (name: NodeJS.Signals): void => {
    // A second Ctrl-C ends at once.
    if (controller.signal.aborted) process.exit(130);
    controller.abort(new Error(`stopped by ${name}`));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    },
  };
}
