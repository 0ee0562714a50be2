// A Node 20 client of `bus gateway` (no npm packages: the built-in fetch).
//   GATEWAY=http://127.0.0.1:8080 SIREN=213105554 node examples/node-client.mjs [invoice.xml]
// Submits a UBL invoice, waits until the bus accepted or refused it, prints the inbox's events.
import { readFile } from "node:fs/promises";
import { randomUUID } from "node:crypto";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const gateway = process.env.GATEWAY ?? "http://127.0.0.1:8080";
const siren = process.env.SIREN ?? "213105554";
const file = process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), "invoice-ubl.xml");

async function call(path, init = {}) {
  const answer = await fetch(gateway + path, init);
  const body = await answer.json();
  if (!answer.ok) {
    // RFC 9457 problem details: the bus's error class, message and hint.
    throw new Error(`${answer.status} ${body.error_class}: ${body.detail} — ${body.hint}`);
  }
  return body;
}

const submission = await call(`/v1/administrations/${siren}/documents?file_name=invoice.xml`, {
  method: "POST",
  headers: { "content-type": "application/xml", "idempotency-key": randomUUID() },
  body: await readFile(file),
});
console.log(JSON.stringify({ submitted: submission }));

let status = { status: "pending" };
for (let i = 0; i < 120 && status.status === "pending"; i++) {
  status = await call(submission.status_url);
  if (status.status === "pending") await new Promise((done) => setTimeout(done, 1000));
}
console.log(JSON.stringify({ status }));
if (status.status !== "accepted") process.exit(1);

const inbox = await call(`/v1/administrations/${siren}/inbox?wait=10`);
for (const event of inbox.events) {
  console.log(JSON.stringify({ inbox: { cursor: event.cursor, type: event.type, subject: event.subject } }));
}
