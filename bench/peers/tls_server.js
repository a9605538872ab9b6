// TLS benchmark server, Node https-equivalent on tls (bench/tls.py).
const tls = require('tls'), fs = require('fs');
const [cert, key, portfile] = process.argv.slice(2);
const BULK = 256 * 1024 * 1024, chunk = Buffer.alloc(65536, 'x');
const srv = tls.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }, (s) => {
  let head = '';
  s.on('error', () => {});
  s.on('data', function onData(d) {
    head += d.toString('latin1');
    if (!head.includes('\r\n\r\n')) return;
    s.removeListener('data', onData);
    if (head.startsWith('GET /bulk')) {
      s.write(`HTTP/1.0 200 OK\r\ncontent-length: ${BULK}\r\n\r\n`);
      let left = BULK / chunk.length;
      const pump = () => {
        while (left > 0) { left--; if (!s.write(chunk)) return s.once('drain', pump); }
        s.end();
      };
      pump();
    } else s.end('HTTP/1.0 200 OK\r\ncontent-length: 5\r\n\r\nhello');
  });
});
srv.listen(0, '127.0.0.1', () => fs.writeFileSync(portfile, String(srv.address().port)));
