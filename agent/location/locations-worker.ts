// Worker thread entry: verifies 'locations/set' pushes off the agent's main
// thread (see locations-verify.ts). Stateless: one request in, one answer out.
// Loaded from dist/ as a file, or, in the single-executable ARM bundle, from
// the code string the bundle carries (agent/location/locations-worker-script.ts).
import { parentPort, workerData } from 'node:worker_threads';
import { publicKeyFromText } from '../../provisioning/protocol/signing.js';
import { verifyLocationsPush } from './locations-verify.js';
import type { WorkerReply, WorkerRequest, WorkerSetup } from './locations-verifier.js';

const setup = workerData as WorkerSetup;
const serverKey = publicKeyFromText(setup.serverPublicKey);

parentPort!.on('message', (req: WorkerRequest) => {
  let reply: WorkerReply;
  try {
    reply = { id: req.id, outcome: verifyLocationsPush(req.payload, { deviceId: setup.deviceId, serverKey, current: req.current }) };
  } catch (err) {
    // A bug here must answer, or the push would wait for ever; the main thread reports it.
    reply = { id: req.id, error: (err as Error).stack ?? String(err) };
  }
  parentPort!.postMessage(reply);
});
