// The layering `npm run lint` enforces (dependency-cruiser, which sees type-only imports too):
//   core/    the field table and the errors: imports nothing of the project's
//   native/  the addon's typed surface: core/ only
//   sysctl/  the sysctl registry and how a host applies them: core/ only
//   server/  the server process: core/, native/, sysctl/
//   lab/     the orchestrator: anything below it
// and no import cycle anywhere, type-only imports included.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-cycle',
      severity: 'error',
      comment: 'every folder reads in one direction: no cycle of imports, type-only ones included',
      from: {},
      to: { circular: true },
    },
    {
      name: 'below-lab',
      severity: 'error',
      comment: 'core/, native/, sysctl/ and server/ are what lab/ stands on: they never import it',
      from: { path: '^(core|native|sysctl|server)/' },
      to: { path: '^lab/' },
    },
    {
      name: 'core-alone',
      severity: 'error',
      comment: 'core/ is the foundation: it imports nothing of the project',
      from: { path: '^core/' },
      to: { path: '^(native|sysctl|server|lab)/' },
    },
    {
      name: 'native-sysctl-on-core',
      severity: 'error',
      comment: 'native/ and sysctl/ stand on core/ alone',
      from: { path: '^(native|sysctl)/' },
      to: { path: '^(native|sysctl|server)/', pathNot: '^$1/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|build|node_modules)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
