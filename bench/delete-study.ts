/**
 * w5: DELETE of a 200-instance CT study (issue #15: "a 200-instance study in ≤ 2 s on Azurite"),
 * stored for the purpose into its own container and table so no other section's counts change;
 * timed from request to answer, then checked gone (404, no blobs left under the study).
 */
import { type BenchContext, freshStorage, stowAll, withServer } from './context.js';
import { call, expectStatus } from './http-client.js';
import { watchOtherLoad } from './machine-load.js';
import { timed } from './measure.js';
import { perItem, timedResult, type TargetCheck, type TimedResult } from './report.js';
import { syntheticSeries } from './workloads.js';
import { newInstanceUids } from '../support/dicom-builder.js';

const TARGET_SECONDS = 2;

export async function deleteStudyTiming(context: BenchContext): Promise<{ timing: TimedResult; check: TargetCheck }> {
  const count = context.settings.seriesInstances;
  const storage = freshStorage(context.target, 'w5');
  return withServer(storage, context.settings.concurrency, async (server, agent) => {
    const key = newInstanceUids();
    await stowAll(agent, server.baseUrl, syntheticSeries(count, key), 10, context.settings.concurrency);
    await server.takeStorage();
    const otherLoad = watchOtherLoad();
    const url = `${server.baseUrl}/v2/studies/${key.studyInstanceUid}`;
    const { ms, value } = await timed(() => call(agent, url, { method: 'DELETE', keep: true }));
    expectStatus(value, 204, `DELETE of the ${count}-instance study`);
    const load = otherLoad();
    const operations = perItem(await server.takeStorage(), count);
    expectStatus(await call(agent, url, { keep: true }), 404, 'GET of the deleted study');
    const container = context.target.blobs.getContainerClient(storage.container);
    let left = 0;
    for await (const blob of container.listBlobsFlat({ prefix: `${key.studyInstanceUid}/` })) left += blob.name ? 1 : 0;
    if (left > 0) throw new Error(`w5: ${left} blobs of the deleted study are left`);
    const seconds = ms / 1000;
    return {
      timing: timedResult(
        {
          id: 'w5',
          title: `DELETE a ${count}-instance CT study`,
          method: `DELETE /v2/studies/{study} of a ${count}-instance CT series stored for it (its own container and table), one request; then GET answers 404 and no blob is left under the study`,
        },
        [ms],
        undefined,
        load,
        { value: count / seconds, unit: 'inst/s' },
        operations,
      ),
      check: {
        name: `w5 DELETE of a ${count}-instance study`,
        value: `${seconds.toFixed(2)} s, ${operations ? `${operations.server.toFixed(2)} storage operations per instance` : 'operations not counted'}`,
        target: `≤ ${TARGET_SECONDS} s, ≤ 3 operations per instance`,
        met: seconds <= TARGET_SECONDS && (operations === undefined || operations.server <= 3),
      },
    };
  });
}
