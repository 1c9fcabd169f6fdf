#!/usr/bin/env node
// Wire oracle: run the official @octokit/rest client against a local capture server.
//
// Usage: node sdk_requests.mjs OPERATIONS_JSON  >  captured.json
//
// For every operation in OPERATIONS_JSON (operations.json next to this file) the octokit method
// named by "sdk" (e.g. "issues.listForRepo") is called with "sdk_params" against a server on
// 127.0.0.1 that records each request and answers with a plausible body. With "auth": false the
// client has no token (a public read). The last request of each operation is printed as
// {name, method, path, query, body, headers} with only the headers the oracle compares.
// tests/it/exec/oracle_github.rs runs the same operations through kosmo and compares.
//
// Install once: `npm ci` in this directory (node_modules is not committed).

import http from "node:http";
import fs from "node:fs";
import { Octokit } from "@octokit/rest";

export const COMPARED_HEADERS = ["authorization", "accept", "x-github-api-version"];
const TOKEN = "ghp_oracleToken0123456789";

const captured = [];

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const raw = Buffer.concat(chunks).toString("utf8");
    const url = new URL(req.url, "http://127.0.0.1");
    const headers = {};
    for (const h of COMPARED_HEADERS) headers[h] = req.headers[h] ?? null;
    captured.push({
      method: req.method,
      path: url.pathname,
      // Pairs as sent (decoded), in order, like Python's parse_qsl.
      query: [...url.searchParams.entries()],
      body: raw ? JSON.parse(raw) : null,
      headers,
      user_agent: req.headers["user-agent"] ?? null,
    });
    const body = url.pathname.startsWith("/search/")
      ? { total_count: 0, incomplete_results: false, items: [] }
      : req.method === "GET" && /\/(repos|issues|pulls)$/.test(url.pathname)
        ? []
        : { id: 1 };
    const out = Buffer.from(JSON.stringify(body));
    res.writeHead(req.method === "POST" ? 201 : 200, {
      "content-type": "application/json; charset=utf-8",
      "content-length": out.length,
      "x-github-request-id": "ORACLE:1",
    });
    res.end(out);
  });
});

await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const baseUrl = `http://127.0.0.1:${server.address().port}`;
const ops = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const out = [];
for (const op of ops) {
  captured.length = 0;
  let error = null;
  const octokit = new Octokit({
    baseUrl,
    ...(op.auth === false ? {} : { auth: TOKEN }),
    log: { debug() {}, info() {}, warn() {}, error() {} },
  });
  let target = octokit.rest;
  for (const part of op.sdk.split(".")) target = target[part];
  try {
    await target(op.sdk_params ?? {});
  } catch (e) {
    error = `${e.name}: ${e.message}`;
  }
  if (captured.length === 0) {
    out.push({ name: op.name, error: error ?? "no request captured" });
    continue;
  }
  out.push({ ...captured[captured.length - 1], name: op.name });
}
server.close();
process.stdout.write(JSON.stringify(out, null, 1));
