// W9 spawn: 1,000 `true` processes, 16 at a time (stdio inherited).
'use strict';
const { spawn } = require('child_process');
const { performance } = require('perf_hooks');
const N = 1000, FLIGHT = 16;

function run() {
  return new Promise((resolve, reject) => {
    const p = spawn('true', [], { stdio: 'inherit' });
    p.on('error', reject);
    p.on('exit', (code) => resolve(code));
  });
}

async function main() {
  let started = 0, done = 0;
  async function worker() {
    while (started < N) {
      started++;
      if (await run() === 0) done++;
    }
  }
  const t0 = performance.now();
  const ws = [];
  for (let i = 0; i < FLIGHT; i++) ws.push(worker());
  await Promise.all(ws);
  console.log(`time=${((performance.now() - t0) / 1000).toFixed(4)} check=${done}`);
}
main();
