// W7 lock: 100 async functions each taking one shared promise mutex 1,000
// times, with a yield to the event loop (setImmediate) inside the critical
// section.  The mutex hands itself to the first waiter (FIFO).
'use strict';
const { performance } = require('perf_hooks');
const TASKS = 100, ROUNDS = 1000;

class Mutex {
  constructor() { this.locked = false; this.waiters = []; }

  acquire() {
    if (!this.locked) { this.locked = true; return undefined; }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  release() {
    const w = this.waiters.shift();
    if (w) w(); else this.locked = false;
  }
}

const tick = () => new Promise((resolve) => setImmediate(resolve));
const lock = new Mutex();
let count = 0;

async function work() {
  for (let i = 0; i < ROUNDS; i++) {
    await lock.acquire();
    const c = count;
    await tick();
    count = c + 1;
    lock.release();
  }
}

async function main() {
  const t0 = performance.now();
  const tasks = [];
  for (let i = 0; i < TASKS; i++) tasks.push(work());
  for (const t of tasks) await t;
  const t1 = performance.now();
  console.log(`time=${((t1 - t0) / 1000).toFixed(6)} check=${count}`);
}

main();
