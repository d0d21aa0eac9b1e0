/**
 * Simulated I/O latency for the fake database, cache and external APIs.
 *
 * SIMULATED_LATENCY_MS controls the base delay (default 2 ms). `0` disables
 * delays entirely: the returned promise resolves without a timer.
 */
const DEFAULT_LATENCY_MS = 2;

export function latencyMs(): number {
  const raw = process.env.SIMULATED_LATENCY_MS;
  if (raw === undefined || raw.trim() === '') {
    return DEFAULT_LATENCY_MS;
  }
  const parsed = Number(raw);
  return Number.isFinite(parsed) && parsed >= 0 ? parsed : DEFAULT_LATENCY_MS;
}

/** Waits `factor` times the configured base latency. */
export function simulateLatency(factor = 1): Promise<void> {
  const ms = latencyMs() * factor;
  if (ms <= 0) {
    return Promise.resolve();
  }
  return new Promise((resolve) => setTimeout(resolve, ms));
}
