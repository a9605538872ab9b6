// W3 sleepers: 100,000 async tasks each sleeping a pseudo-random 0..1000 ms.
'use strict';
const { performance } = require('perf_hooks');
const { setTimeout: sleep } = require('timers/promises');
const N = 100000;

// Deterministic LCG (seed 42): x = (x * 1103515245 + 12345) mod 2^31.
// Math.imul keeps the low 32 bits of the product exactly, which is enough mod 2^31.
const delays = new Array(N);
let x = 42;
for (let i = 0; i < N; i++) {
  x = (Math.imul(x, 1103515245) + 12345) & 0x7fffffff;
  delays[i] = x % 1001;
}

async function sleeper(ms) {
  await sleep(ms);
  return ms;
}

async function main() {
  const t0 = performance.now();
  const tasks = new Array(N);
  for (let i = 0; i < N; i++) tasks[i] = sleeper(delays[i]);
  let total = 0;
  for (let i = 0; i < N; i++) total += await tasks[i];
  const t1 = performance.now();
  console.log(`time=${((t1 - t0) / 1000).toFixed(6)} check=${total}`);
}

main();
