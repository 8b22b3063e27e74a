// Start s3rver on a free loopback port with one bucket, print
// "ready s3=<port>" once it listens, and stop cleanly on SIGTERM.
// usage: node start.js DIRECTORY BUCKET
'use strict';
const S3rver = require('s3rver');

const [directory, bucket] = process.argv.slice(2);
if (!directory || !bucket) {
  console.error('usage: node start.js DIRECTORY BUCKET');
  process.exit(2);
}
const server = new S3rver({
  address: '127.0.0.1',
  port: 0,
  silent: true,
  directory,
  configureBuckets: [{ name: bucket }],
});
server.run().then(
  (addr) => {
    process.stdout.write(`ready s3=${addr.port}\n`);
  },
  (err) => {
    console.error(`s3rver: ${err.message}`);
    process.exit(1);
  },
);
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
