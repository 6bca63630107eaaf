// Submit a cancellation to cancelflow with celery-node (npm ci, then):
//
//   CANCELFLOW_REDIS_URL=redis://127.0.0.1:6379/0 node submit.js order-4711-cancel [BATCH_ID]
//
// The idempotency key is the first argument (or CANCELFLOW_IDEMPOTENCY_KEY); the 6DOT50 batch to
// cancel the second (or CANCELFLOW_BATCH_ID). Prints the job id, which the key alone determines.
//
// Two things about celery-node 0.5.9: the queue is createClient's third argument (there is no
// per-task queue option; its default, "celery", is a queue no cancelflow worker reads), and
// sendTask() does not return the publish, so disconnecting right after it can close the
// connection before the message is written. Hence the message is published here and awaited.
"use strict";

const crypto = require("crypto");
const { createClient } = require("celery-node");

const EXAMPLE_BATCH = "f945d71c-b00f-4e77-8175-253093157a2f";
const NAMESPACE_URL = "6ba7b811-9dad-11d1-80b4-00c04fd430c8";
const QUEUE = "cancellations";
const TASK = "cancellations.submit";

// The job id: uuid5(NAMESPACE_URL, "cancelflow:" + idempotency key), as Python's uuid.uuid5.
function uuid5(namespace, name) {
  const bytes = crypto.createHash("sha1")
    .update(Buffer.from(namespace.replace(/-/g, ""), "hex"))
    .update(Buffer.from(name, "utf8"))
    .digest()
    .subarray(0, 16);
  bytes[6] = (bytes[6] & 0x0f) | 0x50;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = bytes.toString("hex");
  return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)].join("-");
}

async function main() {
  const broker = process.env.CANCELFLOW_REDIS_URL || "redis://127.0.0.1:6379/0";
  const key = process.argv[2] || process.env.CANCELFLOW_IDEMPOTENCY_KEY;
  if (!key) {
    console.error("usage: node submit.js IDEMPOTENCY_KEY [BATCH_ID]");
    return 2;
  }
  const batch = process.argv[3] || process.env.CANCELFLOW_BATCH_ID || EXAMPLE_BATCH;
  const request = {
    idempotency_key: key,
    reason: "customer request",
    legs: [{ provider: "sixdot50", batch_id: batch }],
  };
  // The result backend is never read (the job id is known), but celery-node connects to it.
  const client = createClient(broker, broker, QUEUE);
  try {
    await client.isReady();
    const taskId = crypto.randomUUID();
    // What client.sendTask(TASK, [], { request }) would publish: args [], kwargs { request }.
    const message = client.createTaskMessage(taskId, TASK, [], { request });
    await client.broker.publish(message.body, "", QUEUE, message.headers, message.properties);
  } finally {
    await client.disconnect();
  }
  console.log(uuid5(NAMESPACE_URL, "cancelflow:" + key));
  return 0;
}

main().then((code) => { process.exitCode = code; }, (error) => {
  console.error(error);
  process.exitCode = 1;
});
