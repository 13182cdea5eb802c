// lab manifests: a point of a lab file as Kubernetes manifests, checked offline; applies nothing.
import { InputError } from '../../core/errors.js';
import { badValue, REGISTRY_RE } from '../../core/fields.js';
import { opt, say, type LabCommand } from './command.js';

export type ManifestsInvocation = { cmd: 'manifests'; file: string; point?: string; registry?: string };

function pointId(v: string): string {
  if (!/^p\d{3,}$/.test(v)) throw new InputError(badValue('--point', v, 'a point id like p001 (`lab predict FILE` lists them)'));
  return v;
}

function registry(v: string): string {
  if (!REGISTRY_RE.test(v)) throw new InputError(badValue('--registry', v, 'a registry and path like registry.example:5000/lab'));
  return v;
}

export const manifests: LabCommand<ManifestsInvocation> = {
  define(program, done) {
    program
      .command('manifests <file>')
      .description(
        'a point of a lab file as Kubernetes manifests (pods with their sysctls, a headless service), checked against the Kubernetes API schema offline; applies nothing',
      )
      .addOption(opt('--point <id>', 'which point (default p001; `lab predict FILE` lists them)'))
      .addOption(opt('--registry <prefix>', 'where the cluster pulls the lab images from, e.g. registry.example:5000/lab (default: the local names)'))
      .action((file: string, o: { point?: string; registry?: string }) =>
        done({
          cmd: 'manifests',
          file,
          ...(o.point !== undefined ? { point: pointId(o.point) } : {}),
          ...(o.registry !== undefined ? { registry: registry(o.registry) } : {}),
        }),
      );
  },
  async run(inv) {
    const { loadLabFile, expandSweep } = await import('../plan/labfile.js');
    const { manifestsFor, renderManifests, validateManifests } = await import('../plan/k8s.js');
    const { contextEntries, contextHash, IMAGE_NAMES } = await import('../runtime/images.js');
    const points = expandSweep(loadLabFile(inv.file));
    const id = inv.point ?? points[0]!.id;
    const point = points.find((p) => p.id === id);
    if (!point) throw new InputError(badValue('--point', id, `one of ${points.map((p) => p.id).join(', ')} (the points of ${inv.file})`));
    // The tags `lab images` builds for these sources.
    const hash = contextHash(await contextEntries(), { base: 'debian:bookworm-slim', wrk2: false });
    const at = (n: string) => `${inv.registry ? `${inv.registry}/` : ''}${n}:${hash}`;
    const m = manifestsFor(point, { server: at(IMAGE_NAMES.server), loadgen: at(IMAGE_NAMES.loadgen) });
    validateManifests(m.objects);
    say(renderManifests(m, inv.file));
    process.stderr.write(
      `lab manifests: ${inv.file} ${m.point}: ${m.objects.length} objects, valid against the Kubernetes API schema; ${m.unsafe.length ? `unsafe sysctls each node must allow: ${m.unsafe.join(', ')}` : 'no unsafe sysctl'}\n`,
    );
    return 0;
  },
};
