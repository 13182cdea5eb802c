// Lab files that must be refused, each with the message (after "FILE: ") that says why: the
// lab-file unit tests read them through loadLabFile, the bad-input campaign through `lab sweep`.
export const BAD_LAB_FILES: Array<[name: string, text: string, message: string]> = [
  ['no scenario', 'runtime: netns\n', 'scenario: got undefined'],
  ['scenario unknown', 'scenario: {name: flood}\n', 'scenario.name: got "flood": one of throughput, backlog'],
  ['runtime unknown', 'runtime: lxc\nscenario: {name: backlog}\n', 'runtime: got "lxc": one of auto, netns, docker, rootless, swarm'],
  ['subnet not a /24', 'subnet: 10.0.0.0/16\nscenario: {name: backlog}\n', 'subnet: got "10.0.0.0/16": an IPv4 /24 like 198.18.0.0/24'],
  ['unknown top-level field', 'scenari: {name: backlog}\nscenario: {name: backlog}\n', '(top level): unknown field(s) "scenari"'],
  ['unknown server field', 'scenario: {name: backlog}\nserver: {modle: single}\n', 'server: unknown field(s) "modle"'],
  [
    'model unknown',
    'scenario: {name: backlog}\nserver: {model: fast}\n',
    'server.model: got "fast": one of single, reuseport, acceptor, workers, reactors+workers, reactor-procs, iterative, fork, thread, prethread, prefork',
  ],
  ['kind unknown', 'scenario: {name: backlog}\nserver: {kind: apache}\n', 'server.kind: got "apache": one of tcplab, nginx, command'],
  [
    'kind command without a command',
    'scenario: {name: backlog}\nserver: {kind: command}\n',
    'server.command: got undefined: an argv (a list of strings) for server.kind command, or server.image (runtime docker)',
  ],
  [
    'image not an image reference',
    'scenario: {name: backlog}\nserver: {kind: command, image: "My Server"}\n',
    'server.image: got "My Server": a Docker image reference like my-server:1.0 (an image on the engine: the lab pulls nothing)',
  ],
  [
    'image on the netns runtime',
    'runtime: netns\nscenario: {name: backlog}\nserver: {kind: command, image: my-server:1.0}\n',
    'server.image: got "my-server:1.0": runtime docker (the netns runtime runs no image: give server.command, an argv, instead)',
  ],
  [
    'io_uring on a model it does not run',
    'scenario: {name: throughput}\nserver: {model: acceptor, threads: 2, io: io_uring}\n',
    'server.io: got "io_uring": epoll for model "acceptor" (io_uring runs the models single and reuseport)',
  ],
  [
    'io for nginx',
    'scenario: {name: throughput}\nserver: {kind: nginx, io: io_uring}\n',
    'server.io: got "io_uring": the default for server.kind nginx (the field is the tcplab reactor\'s)',
  ],
  ['io unknown', 'scenario: {name: throughput}\nserver: {io: aio}\n', 'server.io: got "aio": one of epoll, io_uring'],
  [
    'image on the swarm runtime',
    'runtime: swarm\nscenario: {name: throughput}\nserver: {kind: command, image: my-server:1.0}\n',
    'server.image: got "my-server:1.0": runtime docker (a swarm service cannot join another container\'s namespaces, which the lab\'s tools need)',
  ],
  [
    'command not a list of strings',
    'scenario: {name: backlog}\nserver: {kind: command, command: "node x.js"}\n',
    'server.command: got "node x.js": a list of strings (an argv)',
  ],
  [
    'nginx with a reactor model',
    'scenario: {name: backlog}\nserver: {kind: nginx, model: reuseport}\n',
    'server.model: got "reuseport": the default for server.kind nginx (the field is the tcplab reactor\'s)',
  ],
  [
    'nginx with shared epoll',
    'scenario: {name: backlog}\nserver: {kind: nginx, share: epoll}\n',
    'server.share: got "epoll": accept, exclusive or reuseport for server.kind nginx',
  ],
  [
    'herd on nginx',
    'scenario: {name: herd}\nserver: {kind: nginx}\n',
    'server.kind: got "nginx": tcplab for scenario herd (it reads the reactor\'s wake-up counters from /stats; server.kind nginx cannot provide it)',
  ],
  [
    'an accept rate on a command',
    'scenario: {name: overflow, options: {acceptRate: 50}}\nserver: {kind: command, command: [node, s.js]}\n',
    'server.kind: got "command": tcplab for scenario overflow (scenario.options.acceptRate 50 is the reactor\'s accept rate; server.kind command cannot provide it)',
  ],
  ['threads 0', 'scenario: {name: backlog}\nserver: {threads: 0}\n', 'server.threads: got 0: an integer from 1 to 256'],
  ['threads not an integer', 'scenario: {name: backlog}\nserver: {threads: 1.5}\n', 'server.threads: got 1.5: an integer from 1 to 256'],
  [
    'backlog a string',
    'scenario: {name: backlog}\nserver: {backlog: many}\n',
    'server.backlog: got "many": an integer from -2147483648 to 2147483647',
  ],
  ['trigger unknown', 'scenario: {name: backlog}\nserver: {trigger: both}\n', 'server.trigger: got "both"'],
  ['idle timeout negative', 'scenario: {name: backlog}\nserver: {idleTimeoutMs: -1}\n', 'server.idleTimeoutMs: got -1'],
  [
    'unknown sysctl',
    'scenario: {name: backlog}\nserver: {sysctls: {net.core.somaxconx: 5}}\n',
    'server.sysctls.net.core.somaxconx: unknown sysctl `net.core.somaxconx`; did you mean `net.core.somaxconn`?',
  ],
  [
    'global sysctl',
    'scenario: {name: backlog}\nserver: {sysctls: {net.core.rmem_max: 5}}\n',
    'server.sysctls.net.core.rmem_max: net.core.rmem_max cannot be set per host',
  ],
  ['sysctl out of range', 'scenario: {name: backlog}\nserver: {sysctls: {net.ipv4.tcp_syncookies: 3}}\n', 'server.sysctls.net.ipv4.tcp_syncookies:'],
  [
    'port range reversed',
    'scenario: {name: backlog}\nloadgens: [{sysctls: {net.ipv4.ip_local_port_range: "60000 50000"}}]\n',
    'loadgens.0.sysctls.net.ipv4.ip_local_port_range:',
  ],
  ['loadgen tool unknown', 'scenario: {name: throughput}\nloadgens: [{tool: siege}]\n', 'loadgens.0.tool: got "siege"'],
  ['two loadgens', 'scenario: {name: throughput}\nloadgens: [{}, {}]\n', 'loadgens: got [{},{}]: a list of one loadgen'],
  ['no loadgen', 'scenario: {name: throughput}\nloadgens: []\n', 'loadgens: got []: a list of one loadgen'],
  ['connections 0', 'scenario: {name: throughput}\nloadgens: [{options: {connections: 0}}]\n', 'loadgens.0.options.connections: got 0'],
  [
    'duration and requests',
    'scenario: {name: throughput}\nloadgens: [{options: {duration: 2, requests: 9}}]\n',
    'loadgens.0.options: give duration or requests, not both',
  ],
  [
    'keepAlive not a boolean',
    'scenario: {name: throughput}\nloadgens: [{options: {keepAlive: "no"}}]\n',
    'loadgens.0.options.keepAlive: got "no": true or false',
  ],
  [
    'unknown load option',
    'scenario: {name: throughput}\nloadgens: [{options: {conections: 5}}]\n',
    'loadgens.0.options: unknown field(s) "conections"',
  ],
  ['scenario option out of range', 'scenario: {name: backlog, options: {holdMs: 10}}\n', 'scenario.options.holdMs: got 10'],
  ['repetitions 0', 'scenario: {name: backlog}\nrepetitions: 0\n', 'repetitions: got 0'],
  ['axis without values', 'scenario: {name: backlog}\nsweep: {matrix: {server.backlog: []}}\n', 'sweep.matrix.server.backlog: got []'],
  ['axis not a list', 'scenario: {name: backlog}\nsweep: {matrix: {server.backlog: 16}}\n', 'sweep.matrix.server.backlog: got 16: a list of values'],
  [
    'axis on an unknown field',
    'scenario: {name: backlog}\nsweep: {matrix: {output: [a, b]}}\n',
    'sweep: axis "output" is not a field a point can vary',
  ],
  [
    'axis value invalid',
    'scenario: {name: backlog}\nsweep: {matrix: {server.model: [single, fast]}}\n',
    'sweep point p002 (server.model=fast): server.model:',
  ],
  [
    'axis sysctl value invalid',
    'scenario: {name: backlog}\nsweep: {matrix: {server.sysctls.net.ipv4.tcp_syncookies: [1, 9]}}\n',
    'sweep point p002 (server.sysctls.net.ipv4.tcp_syncookies=9): server.sysctls.net.ipv4.tcp_syncookies:',
  ],
  [
    'zip lengths differ',
    'scenario: {name: backlog}\nsweep: {zip: {server.backlog: [1, 2], server.threads: [1]}}\n',
    'sweep.zip: every axis must have the same number of values, got 2 and 1',
  ],
  [
    'chart axis that is not swept',
    'scenario: {name: backlog}\nsweep: {matrix: {server.backlog: [1, 2]}, x: server.threads}\n',
    'sweep.x: got "server.threads": one of server.backlog',
  ],
  ['unknown sweep field', 'scenario: {name: backlog}\nsweep: {grid: {}}\n', 'sweep: unknown field(s) "grid"'],
  [
    'scenario name unknown (all five listed)',
    'scenario: {name: dos}\n',
    'scenario.name: got "dos": one of throughput, backlog, overflow, synflood, timewait, herd, models, arrivals',
  ],
  ['option of another scenario', 'scenario: {name: overflow, options: {extraClients: 3}}\n', 'scenario.options: unknown field(s) "extraClients"'],
  ['throughput takes no options', 'scenario: {name: throughput, options: {holdMs: 900}}\n', 'scenario.options: unknown field(s) "holdMs"'],
  ['overflow held 0', 'scenario: {name: overflow, options: {held: 0}}\n', 'scenario.options.held: got 0: an integer from 1 to 1000'],
  [
    'overflow accept rate negative',
    'scenario: {name: overflow, options: {acceptRate: -5}}\n',
    'scenario.options.acceptRate: got -5: an integer from 0 to 100000',
  ],
  [
    'synflood beyond its source ports',
    'scenario: {name: synflood, options: {flood: 20000}}\n',
    'scenario.options.flood: got 20000: an integer from 1 to 10000',
  ],
  [
    'synflood interval a string',
    'scenario: {name: synflood, options: {intervalUs: fast}}\n',
    'scenario.options.intervalUs: got "fast": an integer from 10 to 1000000',
  ],
  ['timewait closer unknown', 'scenario: {name: timewait, options: {closer: both}}\n', 'scenario.options.closer: got "both": one of client, server'],
  [
    'timewait duration with a unit',
    'scenario: {name: timewait, options: {durationMs: 3s}}\n',
    'scenario.options.durationMs: got "3s": an integer from 200 to 600000',
  ],
  [
    'axis over closer invalid',
    'scenario: {name: timewait}\nsweep: {matrix: {scenario.options.closer: [client, nobody]}}\n',
    'sweep point p002 (scenario.options.closer=nobody): scenario.options.closer: got "nobody": one of client, server',
  ],
  [
    'axis over a loadgen sysctl invalid',
    'scenario: {name: timewait}\nsweep: {matrix: {loadgens.0.sysctls.net.ipv4.tcp_tw_reuse: [1, 5]}}\n',
    'sweep point p002 (loadgens.0.sysctls.net.ipv4.tcp_tw_reuse=5): loadgens.0.sysctls.net.ipv4.tcp_tw_reuse:',
  ],
  [
    'synflood with the client port range over its flood ports',
    'scenario: {name: synflood}\nloadgens: [{sysctls: {net.ipv4.ip_local_port_range: "15000 25000"}}]\n',
    'loadgens.0.sysctls.net.ipv4.ip_local_port_range: got "15000 25000": the synflood scenario keeps ports 20000-29999 for its flood; choose a range outside them',
  ],
  [
    'overflow with a sweep point over its held ports',
    'scenario: {name: overflow}\nsweep: {matrix: {loadgens.0.sysctls.net.ipv4.ip_local_port_range: ["40000 40999", "60000 61500"]}}\n',
    'sweep point p002 (loadgens.0.sysctls.net.ipv4.ip_local_port_range=60000 61500): loadgens.0.sysctls.net.ipv4.ip_local_port_range: got "60000 61500": the overflow scenario keeps ports 61000-61999 for its held handshakes',
  ],
  [
    'axis over a global sysctl on the loadgen',
    'scenario: {name: timewait}\nsweep: {matrix: {loadgens.0.sysctls.net.core.wmem_max: [4096]}}\n',
    'sweep point p001 (loadgens.0.sysctls.net.core.wmem_max=4096): loadgens.0.sysctls.net.core.wmem_max: net.core.wmem_max cannot be set per host',
  ],
  // The port range in another spelling the registry takes is the same range: still refused.
  [
    'synflood port range written with a dash',
    'scenario: {name: synflood}\nloadgens: [{sysctls: {net.ipv4.ip_local_port_range: "20000-29999"}}]\n',
    'loadgens.0.sysctls.net.ipv4.ip_local_port_range: got "20000-29999": the synflood scenario keeps ports 20000-29999 for its flood; choose a range outside them',
  ],
  [
    'overflow port range written with a comma',
    'scenario: {name: overflow}\nloadgens: [{sysctls: {net.ipv4.ip_local_port_range: "61500,62000"}}]\n',
    'loadgens.0.sysctls.net.ipv4.ip_local_port_range: got "61500,62000": the overflow scenario keeps ports 61000-61999 for its held handshakes',
  ],
  // The key in its /proc/sys spelling is the same key: the reserved ports are checked on it too.
  [
    'overflow port range over its held ports, the key spelled with slashes',
    'scenario: {name: overflow}\nloadgens: [{sysctls: {net/ipv4/ip_local_port_range: "60000 61500"}}]\n',
    'loadgens.0.sysctls.net/ipv4/ip_local_port_range: got "60000 61500": the overflow scenario keeps ports 61000-61999 for its held handshakes',
  ],
  // An axis is given once: not in both matrix and zip, nor as two spellings of one sysctl.
  [
    'an axis in both matrix and zip',
    'scenario: {name: backlog}\nsweep: {matrix: {server.backlog: [8, 16]}, zip: {server.backlog: [32, 64]}}\n',
    'sweep.zip.server.backlog: the same axis as sweep.matrix.server.backlog; give each axis once',
  ],
  [
    'a sysctl axis in two spellings',
    'scenario: {name: backlog}\nsweep: {matrix: {server.sysctls.net.core.somaxconn: [8], server.sysctls.net/core/somaxconn: [16]}}\n',
    'sweep.matrix.server.sysctls.net/core/somaxconn: the same axis as sweep.matrix.server.sysctls.net.core.somaxconn; give each axis once',
  ],
  [
    'a sysctl axis in matrix and zip in two spellings',
    'scenario: {name: backlog}\nsweep: {matrix: {server.sysctls.net.core.somaxconn: [8]}, zip: {server.sysctls.net/core/somaxconn: [16]}}\n',
    'sweep.zip.server.sysctls.net/core/somaxconn: the same axis as sweep.matrix.server.sysctls.net.core.somaxconn; give each axis once',
  ],
  [
    'a sysctl given twice in two spellings',
    'scenario: {name: backlog}\nserver: {sysctls: {net.core.somaxconn: 16, net/core/somaxconn: 32}}\n',
    'server.sysctls.net/core/somaxconn: the same sysctl as net.core.somaxconn; give it once',
  ],
  [
    'single model with 2 threads',
    'scenario: {name: backlog}\nserver: {threads: 2}\n',
    'server.threads: got 2: 1 for model "single" (use reuseport, acceptor or workers for more)',
  ],
  [
    'overflow that would open two billion connections',
    'scenario: {name: overflow}\nserver: {backlog: 2147483647, sysctls: {net.core.somaxconn: 2147483647}}\n',
    'scenario: the overflow client (held + limit + 1 + late) would open 2147483656 connections (accept queue limit 2147483647 = min(backlog 2147483647, somaxconn)); at most 20000: lower server.backlog or net.core.somaxconn',
  ],
  [
    'backlog burst over the default somaxconn is fine, over 20000 is not',
    'scenario: {name: backlog, options: {extraClients: 10000}}\nserver: {backlog: 12000, sysctls: {net.core.somaxconn: 65535}}\n',
    'scenario: the burst (limit + 1 + extraClients) would open 22001 connections (accept queue limit 12000 = min(backlog 12000, somaxconn)); at most 20000: lower server.backlog or net.core.somaxconn',
  ],
  [
    'a sweep of millions of points',
    'scenario: {name: backlog}\nsweep: {matrix: {server.backlog: [1,2,3,4,5,6,7,8,9,10], server.threads: [1,2,3,4,5,6,7,8,9,10], server.idleTimeoutMs: [1,2,3,4,5,6,7,8,9,10], server.port: [1,2,3,4,5,6,7,8,9,10]}}\nrepetitions: 100\n',
    'sweep: 10000 points × 100 repetitions is more than the 10000 point runs a sweep may have',
  ],
  [
    'herd on a design without waiters to herd',
    'scenario: {name: herd}\nserver: {model: single}\n',
    'scenario: the herd scenario needs server.model prethread with at least 4 waiters (server.threads), got model single with 1 thread(s)',
  ],
  [
    'share unknown',
    'scenario: {name: herd}\nserver: {model: prethread, threads: 4, share: herd}\n',
    'server.share: got "herd": one of accept, epoll, exclusive, reuseport',
  ],
  [
    'iterative with threads',
    'scenario: {name: backlog}\nserver: {model: iterative, threads: 2}\n',
    'server.threads: got 2: 1 for model "iterative" (use prethread for a pool of N)',
  ],
];
