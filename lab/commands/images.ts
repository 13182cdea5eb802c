// lab images: the Docker images for the current sources, built when missing.
import { InputError } from '../../core/errors.js';
import { badValue, IMAGE_RE } from '../../core/fields.js';
import { say, type LabCommand } from './command.js';

export type ImagesInvocation = { cmd: 'images'; base: string; wrk2: boolean };

function imageRef(flag: string, v: string): string {
  if (!IMAGE_RE.test(v)) throw new InputError(badValue(flag, v, 'an image reference like debian:bookworm-slim'));
  return v;
}

export const images: LabCommand<ImagesInvocation> = {
  define(program, done) {
    program
      .command('images')
      .description('build the Docker images for the current sources when missing (tags tcplab-server/loadgen:<hash> and :latest)')
      .option('--base <image>', 'base image for every stage', 'debian:bookworm-slim')
      .option('--wrk2', 'also build wrk2 from its upstream source (needs internet)')
      .action((o: { base: string; wrk2?: boolean }) => done({ cmd: 'images', base: imageRef('--base', o.base), wrk2: o.wrk2 ?? false }));
  },
  async run(inv) {
    const { DockerRuntime } = await import('../runtime/docker.js');
    const rt = new DockerRuntime({ base: inv.base, wrk2: inv.wrk2, progress: (l) => process.stderr.write(l + '\n') });
    await rt.check();
    const im = await rt.prepare();
    say(`${im.server}\n${im.loadgen}\n`);
    return 0;
  },
};
