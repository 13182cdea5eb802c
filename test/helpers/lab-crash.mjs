// Creates a lab with a long-running process, says so, then waits to be killed.
// Usage: node lab-crash.mjs DIST_RUNTIME_NETNS RUN_ID LOG_DIR
const [modPath, runId, logDir] = process.argv.slice(2);
const { NetnsRuntime } = await import(modPath);
const lab = await new NetnsRuntime().create({
  runId,
  subnet: '198.18.7.0/24',
  logDir,
  hosts: [
    { name: 'server', role: 'server', sysctls: [] },
    { name: 'loadgen-1', role: 'loadgen', sysctls: [] },
  ],
});
const p = lab.host('server').start(['sleep', '300'], 'sleep');
console.log(JSON.stringify({ ready: true, pid: p.pid }));
setInterval(() => {}, 1000);
