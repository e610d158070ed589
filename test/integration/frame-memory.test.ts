import { describeFrameStaleness } from '../helpers/frame-staleness.js';
import { openTestStorage } from '../helpers/server.js';

describeFrameStaleness('Azurite', async () => (await openTestStorage()).storage);
