// EXPERIMENT, not what a user gets: preloaded into the mount process (node --import) by
// `npm run bench -- --experiment tcp-nodelay`, it turns on TCP_NODELAY for every socket the
// process opens (postgres.js opens its sockets without it). It exists to measure what the fix of
// the Nagle stall on COPY (see docs/performance.md) would be worth before the shim makes it.
import net from 'node:net';

type Connect = (this: net.Socket, ...args: unknown[]) => net.Socket;
const connect = net.Socket.prototype.connect as unknown as Connect;
(net.Socket.prototype as unknown as { connect: Connect }).connect = function (this: net.Socket, ...args: unknown[]) {
  this.setNoDelay(true);
  return connect.apply(this, args);
};
