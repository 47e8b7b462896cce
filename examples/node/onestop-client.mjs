#!/usr/bin/env node
// A hospital's client of the onestop gateway, in Node.js 20 with no dependencies (its
// built-in crypto and fetch), written from docs/integration*.md alone.
//
// It settles an outpatient bill, sends it again as a retry would (a replay), "loses" the
// answer and finds the settlement by visit id, reverses it, verifies the receipts with the
// gateway's published keys, and reconciles the day. Exit status 0 only when every step
// answered as the guide says and the day balances.
//
// Environment: ONESTOP_URL (the gateway), HIS_CLIENT_ID and HIS_KEY (your client id and the
// file of your Ed25519 private key, PEM). MEMBER_ID chooses the patient (default M0002).

import { createHash, createPrivateKey, createPublicKey, randomBytes, sign, verify } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const URL_BASE = required("ONESTOP_URL");
const CLIENT_ID = required("HIS_CLIENT_ID");
const PRIVATE_KEY = createPrivateKey(readFileSync(required("HIS_KEY")));
const RECEIPTS = "receipts";
const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`set ${name} (see docs/integration.md)`);
    process.exit(2);
  }
  return value;
}

// Today's settlement day: Asia/Shanghai is UTC+8 all year.
function settlementDay(date = new Date()) {
  return new Date(date.getTime() + 8 * 3600 * 1000).toISOString().slice(0, 10);
}

// Percent-encode a query value. encodeURIComponent leaves ! ' ( ) * as they are, and fetch
// would encode ' itself after we signed: encode them here so that what is signed is sent.
function encode(value) {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function query(values) {
  return Object.entries(values)
    .map(([name, value]) => `${name}=${encode(String(value))}`)
    .join("&");
}

// The four headers: Ed25519 over METHOD \n PATH_AND_QUERY \n X-Timestamp \n X-Nonce \n
// lowercase hex SHA-256 of the body bytes, UTF-8, no final line feed; standard base64.
function signatureHeaders(method, target, body) {
  const timestamp = String(Math.floor(Date.now() / 1000));
  const nonce = randomBytes(16).toString("hex"); // new for every request, retries included
  const digest = body.length ? createHash("sha256").update(body).digest("hex") : EMPTY_SHA256;
  const signed = [method, target, timestamp, nonce, digest].join("\n");
  return {
    "X-Client-Id": CLIENT_ID,
    "X-Timestamp": timestamp,
    "X-Nonce": nonce,
    "X-Signature": sign(null, Buffer.from(signed, "utf8"), PRIVATE_KEY).toString("base64"),
  };
}

// One signed request. `body` is a Buffer of UTF-8 JSON (encode once, send the same bytes on a
// retry) or absent. Answers {status, headers, json}.
async function send(method, target, body = Buffer.alloc(0)) {
  const headers = signatureHeaders(method, target, body);
  if (body.length) headers["Content-Type"] = "application/json";
  const answer = await fetch(URL_BASE + target, {
    method,
    headers,
    body: body.length ? body : undefined,
    signal: AbortSignal.timeout(30_000),
  });
  const text = await answer.text();
  const json = text ? JSON.parse(text) : null;
  keep(json);
  return { status: answer.status, headers: answer.headers, json };
}

// Keep the latest answer of every settlement in receipts/SETTLEMENT_ID.json: our own record.
function keep(answer) {
  if (!answer || typeof answer !== "object") return;
  for (const result of answer.items ?? [answer]) {
    if (result.settlement_id && result.signature) {
      mkdirSync(RECEIPTS, { recursive: true });
      writeFileSync(join(RECEIPTS, `${result.settlement_id}.json`), JSON.stringify(result));
    }
  }
}

// Settle with the guide's retry rules: the same body every time, signed anew; wait on 408,
// 429, 500 and 503 and on no answer; any other refusal is final.
async function settle(body, attempts = 5) {
  for (let attempt = 0; attempt < attempts; attempt++) {
    let answer;
    try {
      answer = await send("POST", "/v1/settlements", body);
    } catch (error) {
      await sleep(2 ** attempt * 1000); // no answer: it may have settled; the same body is safe
      continue;
    }
    if (answer.status === 200 || answer.status === 201) return answer;
    if ([408, 429, 500, 503].includes(answer.status)) {
      await sleep(Number(answer.headers.get("retry-after") ?? 2 ** attempt) * 1000);
      continue;
    }
    throw new Error(`refused ${answer.status} ${answer.json.code}: ${answer.json.detail}`);
  }
  throw new Error("no answer: send the same bill again later, or find it by visit id");
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// JSON with every object's keys sorted, no spaces, UTF-8: what receipt signatures cover.
function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value).sort();
    return `{${keys.map((key) => `${JSON.stringify(key)}:${canonical(value[key])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

async function publishedKeys() {
  const answer = await fetch(`${URL_BASE}/v1/keys`, { signal: AbortSignal.timeout(30_000) }); // unsigned
  const { keys } = await answer.json();
  return new Map(keys.map((key) => [key.key_id, key]));
}

function verifyReceipt(receipt, keys) {
  const { key_id: keyId, algorithm, value } = receipt.signature;
  const published = keys.get(keyId);
  if (algorithm !== "ed25519" || !published) return false;
  const publicKey = createPublicKey(published.public_key);
  const raw = publicKey.export({ type: "spki", format: "der" }).subarray(-32);
  if (createHash("sha256").update(raw).digest("hex").slice(0, 16) !== keyId) return false;
  const { signature, replayed, ...signedPart } = receipt;
  return verify(null, Buffer.from(canonical(signedPart), "utf8"), publicKey, Buffer.from(value, "base64"));
}

// The day's figures from our receipts, counted as the gateway counts them.
function dayFigures(day) {
  const funds = ["total", "basic_fund", "supplementary", "assistance", "personal_account", "cash"];
  const mine = readdirSync(RECEIPTS)
    .filter((name) => name.endsWith(".json"))
    .map((name) => JSON.parse(readFileSync(join(RECEIPTS, name), "utf8")))
    .filter((receipt) => receipt.client_id === CLIENT_ID);
  const settled = mine.filter((r) => r.settled_at.slice(0, 10) === day);
  const reversed = mine.filter((r) => (r.reversed_at ?? "").slice(0, 10) === day);
  const sum = (list, fund) => list.reduce((total, r) => total + r.amounts[fund], 0);
  return {
    date: day,
    settlements: settled.length,
    reversals: reversed.length,
    amounts: Object.fromEntries(funds.map((fund) => [fund, sum(settled, fund) - sum(reversed, fund)])),
    settlement_ids: settled.map((r) => r.settlement_id),
  };
}

function check(condition, message) {
  if (!condition) {
    console.error(`FAILED: ${message}`);
    process.exit(1);
  }
}

async function main() {
  const visitId = `MZ-NODE-${Date.now()}`;
  const bill = {
    visit_id: visitId,
    member_id: process.env.MEMBER_ID ?? "M0002",
    visit_type: "outpatient",
    service_date: "2026-03-05",
    diagnoses: ["J06.9"],
    lines: [
      { line_no: 1, his_code: "YP0001", quantity: "2", unit_price: 2550, amount: 5100, date: "2026-03-05" },
      { line_no: 2, his_code: "YP0002T", quantity: "10", unit_price: 450, amount: 4500, date: "2026-03-05" },
    ],
  };
  const body = Buffer.from(JSON.stringify(bill), "utf8");

  const settled = await settle(body);
  check(settled.status === 201 && settled.json.status === "settled", `settle answered ${settled.status}`);
  const settlementId = settled.json.settlement_id;
  console.log(`settled ${settlementId} (HTTP 201): cash ${settled.json.amounts.cash} fen`);

  const replay = await settle(body);
  check(replay.status === 200 && replay.json.replayed === true, `the retry answered ${replay.status}`);
  check(replay.json.settlement_id === settlementId, "the retry answered another settlement");
  console.log(`replayed ${settlementId} (HTTP 200, replayed: true)`);

  // The answer is "lost": find the visit's settlement as a terminal that restarted would.
  const found = await send("GET", `/v1/settlements?${query({ visit_id: visitId })}`);
  check(found.status === 200, `the visit's list answered ${found.status}`);
  const current = found.json.items.find((item) => item.status === "settled");
  check(current?.settlement_id === settlementId, "the visit's settlement was not found");
  console.log(`found ${settlementId} by visit id ${visitId}`);

  const reversal = await send("POST", `/v1/settlements/${encode(settlementId)}/reversal`);
  check(reversal.status === 200 && reversal.json.status === "reversed", `reversal answered ${reversal.status}`);
  console.log(`reversed ${settlementId} at ${reversal.json.reversed_at}`);

  const keys = await publishedKeys();
  for (const receipt of [settled.json, replay.json, reversal.json]) {
    check(verifyReceipt(receipt, keys), `the ${receipt.status} receipt does not verify`);
  }
  const forged = { ...reversal.json, amounts: { ...reversal.json.amounts, cash: reversal.json.amounts.cash + 1 } };
  check(!verifyReceipt(forged, keys), "a changed receipt verified");
  console.log(`receipts of ${settlementId}: the signature verifies (key ${settled.json.signature.key_id})`);

  const day = settlementDay();
  const reconciled = await send("POST", "/v1/reconciliation", Buffer.from(JSON.stringify(dayFigures(day)), "utf8"));
  check(reconciled.status === 200, `reconciliation answered ${reconciled.status}`);
  console.log(`reconciliation of ${day}: ${reconciled.json.result}`);
  if (reconciled.json.result !== "balanced") {
    console.log(JSON.stringify(reconciled.json, null, 2));
    process.exit(1);
  }
}

main().catch((error) => {
  console.error(`FAILED: ${error.message}`);
  process.exit(1);
});
