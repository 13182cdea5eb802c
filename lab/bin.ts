#!/usr/bin/env node
// The `lab` executable: lab/commands/cli.ts does the work.
import { run } from './commands/cli.js';

// `lab sysctls | head`: a closed pipe ends the output quietly, like other CLI tools.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});
process.exitCode = await run(process.argv.slice(2));
