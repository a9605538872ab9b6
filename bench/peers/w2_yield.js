// W2 yields: 1,000 async tasks each yielding to the event loop 1,000 times.
'use strict';
const { performance } = require('perf_hooks');
const TASKS = 1000, YIELDS = 1000;

const tick = () => new Promise((resolve) => setImmediate(resolve));

async function work() {
  for (let j = 0; j < YIELDS; j++) await tick();
  return YIELDS;
}

async function main() {
  const t0 = performance.now();
  const tasks = [];
  for (let i = 0; i < TASKS; i++) tasks.push(work());
  let total = 0;
  for (const t of tasks) total += await t;
  const t1 = performance.now();
  console.log(`time=${((t1 - t0) / 1000).toFixed(6)} check=${total}`);
}

main();
