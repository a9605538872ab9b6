// W10 executor on node: worker_threads.  The primes jobs on 1 worker (one
// after the other) and on 2 workers (at once); then 10,000 empty round
// trips (postMessage and the reply) one at a time.
const { Worker } = require('worker_threads');
const N = Number(process.env.W10_N || 5000000);
const EMPTY = 10000;

const source = `
const { parentPort } = require('worker_threads');
function primes(k, limit) {
  let count = 0;
  for (let n = k === 0 ? 5 : 3; n < limit; n += 4) {
    let prime = true;
    for (let d = 3; d * d <= n; d += 2) {
      if (n % d === 0) { prime = false; break; }
    }
    if (prime) count++;
  }
  return count;
}
parentPort.on('message', (m) => {
  parentPort.postMessage(m === null ? null : primes(m[0], m[1]));
});
`;

function call(w, msg) {
  return new Promise((resolve) => {
    w.once('message', resolve);
    w.postMessage(msg);
  });
}

async function main() {
  const w1 = new Worker(source, { eval: true });
  const w2 = new Worker(source, { eval: true });
  await Promise.all([call(w1, null), call(w2, null)]);   // started

  let t0 = process.hrtime.bigint();
  const a = await call(w1, [0, N]);
  const b = await call(w1, [1, N]);
  const t1 = Number(process.hrtime.bigint() - t0) / 1e9;
  const c1 = a + b + 1;                                   // + 1: the prime 2

  t0 = process.hrtime.bigint();
  const [a2, b2] = await Promise.all([call(w1, [0, N]), call(w2, [1, N])]);
  const t2 = Number(process.hrtime.bigint() - t0) / 1e9;
  if (a2 + b2 + 1 !== c1) throw new Error('mismatch');

  t0 = process.hrtime.bigint();
  for (let i = 0; i < EMPTY; i++) await call(w1, null);
  const te = Number(process.hrtime.bigint() - t0) / 1e9;
  await Promise.all([w1.terminate(), w2.terminate()]);
  console.log(`time=${(t1 + t2 + te).toFixed(6)} t1=${t1.toFixed(6)} ` +
    `t2=${t2.toFixed(6)} rtt_us=${(te / EMPTY * 1e6).toFixed(2)} check=${c1}`);
}

main();
