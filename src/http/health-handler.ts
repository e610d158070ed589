import type { Handler } from './context.js';

/** `GET /health/check`: 200 when storage answers, 503 otherwise (the body says which). */
export const handleHealth: Handler = async (_request, context) => {
  const started = Date.now();
  let healthy = true;
  try {
    await context.storage.changeFeed.latest();
  } catch (error) {
    healthy = false;
    context.log('health check: storage did not answer', error);
  }
  const body = {
    status: healthy ? 'Healthy' : 'Unhealthy',
    checks: [{ name: 'storage', status: healthy ? 'Healthy' : 'Unhealthy', durationMs: Date.now() - started }],
  };
  return new Response(JSON.stringify(body), {
    status: healthy ? 200 : 503,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
  });
};
