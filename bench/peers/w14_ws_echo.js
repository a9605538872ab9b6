// W14 peer: WebSocket echo on npm's `ws` (not in Debian: bench/ws_echo.py
// installs it with npm into a folder outside the repository, NODE_PATH).
const { WebSocketServer } = require("ws");
const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 }, () => {
  console.log(`port=${wss.address().port}`);
});
wss.on("connection", (ws) => {
  ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
});
