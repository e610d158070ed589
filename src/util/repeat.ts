/** A background loop that can be stopped. */
export interface Repeating {
  /** Stops after the step under way, and waits for it. */
  stop(): Promise<void>;
}

/**
 * Runs `step` now and again after each pause of `pauseMs()` (asked anew after every step), never
 * two at once, until stopped. `step` must not reject: the loop does not catch for it. Its timers
 * do not keep the process alive.
 */
export function repeat(step: () => Promise<void>, pauseMs: () => number): Repeating {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const tick = (): void => {
    running = step().finally(() => {
      if (!stopped) timer = setTimeout(tick, pauseMs()).unref();
    });
  };
  tick();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
