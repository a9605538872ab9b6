// W11 copy a 1 GiB file with fs/promises copyFile (source made by run.py).
'use strict';
const fs = require('fs');
const fsp = require('fs/promises');
const { performance } = require('perf_hooks');
const src = process.env.CORIO_BENCH_1G || '/tmp/corio-bench-1g.bin';
const dst = src + '.node-copy';

async function main() {
  require('child_process').execSync('sync');
  const t0 = performance.now();
  await fsp.copyFile(src, dst);
  const t = (performance.now() - t0) / 1000;
  const size = fs.statSync(dst).size;
  fs.unlinkSync(dst);
  console.log(`time=${t.toFixed(4)} check=${size}`);
}
main();
