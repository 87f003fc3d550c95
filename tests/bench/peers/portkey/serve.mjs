// Starts the pinned Portkey gateway on 127.0.0.1 only. Its start script (`--port=N`,
// `--headless`) listens on every interface: the listen call is given the loopback address.
import http from 'node:http';

const listen = http.Server.prototype.listen;
http.Server.prototype.listen = function loopback(port, host, ...rest) {
  return typeof port === 'number'
    ? listen.call(this, port, '127.0.0.1', ...rest)
    : listen.call(this, port, host, ...rest);
};

await import('@portkey-ai/gateway/build/start-server.js');
