// W1 spawn: 1,000,000 async tasks each returning its index, awaited in order.
'use strict';
const { performance } = require('perf_hooks');
const N = 1000000;

async function work(i) { return i; }

async function main() {
  const t0 = performance.now();
  const tasks = new Array(N);
  for (let i = 0; i < N; i++) tasks[i] = work(i + 1);
  let sum = 0;
  for (let i = 0; i < N; i++) sum += await tasks[i];
  const t1 = performance.now();
  console.log(`time=${((t1 - t0) / 1000).toFixed(6)} check=${sum}`);
}

main();
