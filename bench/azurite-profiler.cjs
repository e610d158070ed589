// Loaded with `node -r` into the Azurite child of bench section la when BENCH_AZURITE_PROFILE names a
// directory (bench/local-archive.ts). It writes there, with wall-clock times to line up with la's
// per-request log:
// - stalls.log: every event-loop stall of 50 ms or more (a 10 ms timer that fired late; on a busy
//   machine also time the process waited for a core), V8 garbage collection pauses of 50 ms or
//   more, and the start and end of each blob garbage collection (BlobGCManager.markSweep);
// - azurite-N.cpuprofile: a V8 CPU profile between SIGUSR2 signals (the first starts it, the next
//   writes it; open in Chrome DevTools or speedscope).
// DICOMWEB_AZURITE_GC_SECONDS shortens the pause between collections (Azurite's is 10 minutes), so
// that a small run sees several.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const inspector = require('node:inspector');
const process = require('node:process');
const { setInterval } = require('node:timers');

const dir = process.env.DICOMWEB_AZURITE_PROFILE_DIR;
if (dir) {
  fs.mkdirSync(dir, { recursive: true });
  const log = (line) => fs.appendFileSync(path.join(dir, 'stalls.log'), `${new Date().toISOString()} ${line}\n`);
  const TICK_MS = 10;
  let last = Date.now();
  setInterval(() => {
    const now = Date.now();
    const late = now - last - TICK_MS;
    if (late >= 50) log(`stall ${late} ms (from ${new Date(last).toISOString()})`);
    last = now;
  }, TICK_MS).unref();

  // V8's own garbage collection pauses, to tell them from Azurite's work.
  const { PerformanceObserver, constants } = require('node:perf_hooks');
  const kinds = {
    [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
    [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
    [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
    [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weak callbacks',
  };
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if (entry.duration >= 50) log(`v8 gc ${kinds[entry.detail?.kind] ?? 'other'} ${entry.duration.toFixed(0)} ms`);
    }
  }).observe({ entryTypes: ['gc'] });

  try {
    const azuriteRoot = path.dirname(require.resolve('azurite/package.json'));
    const gc = require(path.join(azuriteRoot, 'dist/src/blob/gc/BlobGCManager.js')).default.prototype;
    const markSweep = gc.markSweep;
    const pause = Number(process.env.DICOMWEB_AZURITE_GC_SECONDS);
    if (pause > 0) {
      const sleep = gc.sleep;
      gc.sleep = function () {
        return sleep.call(this, pause * 1000);
      };
    }
    gc.markSweep = async function () {
      const started = Date.now();
      log('gc start');
      try {
        return await markSweep.call(this);
      } finally {
        log(`gc end ${Date.now() - started} ms`);
      }
    };
  } catch (error) {
    log(`gc hook not installed: ${error.message}`);
  }

  const session = new inspector.Session();
  session.connect();
  let profiling = false;
  let count = 0;
  process.on('SIGUSR2', () => {
    if (!profiling) {
      profiling = true;
      session.post('Profiler.enable', () => session.post('Profiler.start', () => log('profile start')));
      return;
    }
    profiling = false;
    session.post('Profiler.stop', (error, result) => {
      if (error) return log(`profile failed: ${error.message}`);
      count += 1;
      const file = path.join(dir, `azurite-${count}.cpuprofile`);
      fs.writeFileSync(`${file}.part`, JSON.stringify(result.profile));
      fs.renameSync(`${file}.part`, file);
      log(`profile ${count} written`);
    });
  });
}
