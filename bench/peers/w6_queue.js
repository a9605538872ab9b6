// W6 queue: 1,000,000 items through a bounded async queue of size 1 from
// one producer to one consumer async function.  Node has no async queue, so
// this is the usual promise idiom: put/get resolve a waiter directly
// (hand-off) and return a plain value when they need not wait.
'use strict';
const { performance } = require('perf_hooks');
const N = 1000000;

class AsyncQueue {
  constructor(max) {
    this.max = max;
    this.items = [];
    this.getters = [];
    this.putters = [];
  }

  put(v) {
    if (this.getters.length) { this.getters.shift()(v); return undefined; }
    if (this.items.length < this.max) { this.items.push(v); return undefined; }
    return new Promise((resolve) => this.putters.push([v, resolve]));
  }

  get() {
    if (this.items.length) {
      const v = this.items.shift();
      if (this.putters.length) {
        const [pv, resolve] = this.putters.shift();
        this.items.push(pv);
        resolve();
      }
      return v;
    }
    return new Promise((resolve) => this.getters.push(resolve));
  }
}

async function main() {
  const q = new AsyncQueue(1);
  const t0 = performance.now();
  const producer = (async () => {
    for (let i = 1; i <= N; i++) await q.put(i);
  })();
  let total = 0;
  for (let i = 0; i < N; i++) total += await q.get();
  await producer;
  const t1 = performance.now();
  console.log(`time=${((t1 - t0) / 1000).toFixed(6)} check=${total}`);
}

main();
