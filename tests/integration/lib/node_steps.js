// A node program whose output depends only on its argument: timers,
// promises and hashing on libuv's event loop, a line per step.
// Usage: node node_steps.js STEPS
const crypto = require('crypto');
const steps = Number(process.argv[2]);
let x = 1n;
const h = crypto.createHash('sha256');
const tick = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
(async () => {
  for (let i = 0; i < steps; i++) {
    for (let k = 0; k < 3000; k++) x = (x * 6364136223846793005n + 1442695040888963407n) % (1n << 64n);
    h.update(x.toString());
    await tick(2);
    await Promise.resolve();
    console.log(i, x.toString(), h.copy().digest('hex').slice(0, 16));
  }
  console.log('done', h.digest('hex'));
})();
