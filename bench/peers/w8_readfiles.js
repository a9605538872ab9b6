// W8 read files: 10,000 files of 1 KiB (made before timing), read with
// fs/promises readFile, 64 reads in flight.
'use strict';
const fs = require('fs');
const fsp = require('fs/promises');
const os = require('os');
const path = require('path');
const { performance } = require('perf_hooks');
const N = 10000, FLIGHT = 64, SIZE = 1024;

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'node-w8-'));
  const block = Buffer.alloc(SIZE, 'x');
  const paths = [];
  for (let i = 1; i <= N; i++) {
    paths.push(path.join(dir, 'f' + i));
    fs.writeFileSync(paths[i - 1], block);
  }
  let next = 0, total = 0;
  async function worker() {
    while (next < N) {
      const p = paths[next++];
      const data = await fsp.readFile(p);
      total += data.length;
    }
  }
  const t0 = performance.now();
  const ws = [];
  for (let i = 0; i < FLIGHT; i++) ws.push(worker());
  await Promise.all(ws);
  const t = (performance.now() - t0) / 1000;
  fs.rmSync(dir, { recursive: true });
  console.log(`time=${t.toFixed(4)} check=${total}`);
}
main();
