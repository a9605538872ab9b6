// W11 peer: Node's http module, hello server on process.argv[2].
const http = require('http');
http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end('hello world\n');
}).listen(+process.argv[2], '127.0.0.1', () => console.log('ready'));
