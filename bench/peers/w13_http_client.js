// W13: keep-alive HTTP client in Node.  node w13_http_client.js MODE URL N CONC
// MODE "agent": http.get on an http.Agent({keepAlive: true, maxSockets: CONC});
// MODE "fetch": the global fetch (undici; keep-alive by default).
// Warm-up of CONC*10 GETs, then N GETs from CONC concurrent loops; prints
// time=, cpu= (/proc/self/stat user+system) and ok=.
'use strict';
const http = require('http');
const fs = require('fs');
const [mode, url, nArg, cArg] = process.argv.slice(2);
const n = +(nArg || 20000), conc = +(cArg || 16);
const agent = new http.Agent({ keepAlive: true, maxSockets: conc, maxFreeSockets: conc });

function cpu() {
  const s = fs.readFileSync('/proc/self/stat', 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return (+f[11] + +f[12]) / 100;
}

function getAgent() {
  return new Promise((resolve, reject) => {
    http.get(url, { agent }, (res) => {
      const parts = [];
      res.setEncoding('utf8');
      res.on('data', (d) => parts.push(d));
      res.on('end', () => resolve(res.statusCode === 200 && parts.join('') === 'hello'));
      res.on('error', reject);
    }).on('error', reject);
  });
}

async function getFetch() {
  const r = await fetch(url);
  const t = await r.text();
  return r.status === 200 && t === 'hello';
}

const get = mode === 'fetch' ? getFetch : getAgent;
let ok = 0;

async function worker(count) {
  for (let i = 0; i < count; i++) if (await get()) ok++;
}

async function run(total) {
  const ws = [];
  for (let i = 0; i < conc; i++) {
    ws.push(worker(Math.floor(total / conc) + (i < total % conc ? 1 : 0)));
  }
  await Promise.all(ws);
}

(async () => {
  await run(conc * 10);
  ok = 0;
  const c0 = cpu(), t0 = process.hrtime.bigint();
  await run(n);
  const t1 = process.hrtime.bigint(), c1 = cpu();
  console.log(`time=${(Number(t1 - t0) / 1e9).toFixed(4)} cpu=${(c1 - c0).toFixed(4)} ok=${ok}`);
  agent.destroy();
  process.exit(0);
})();
