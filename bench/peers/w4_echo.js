// W4 peer: TCP echo server in Node.js.  Prints "port=N"; serves until
// stdin closes.
const net = require("net");
const server = net.createServer({ noDelay: true }, (sock) => {
  sock.on("data", (d) => sock.write(d));
  sock.on("error", () => {});
});
server.listen(Number(process.argv[2] || 0), "127.0.0.1", () => {
  process.stdout.write(`port=${server.address().port}\n`);
});
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
