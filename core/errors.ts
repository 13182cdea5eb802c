// One error base for everything the lab reports to a user: the message is the one line
// printed, the exit code says what kind of failure it was. The CLI prints any LabError as
// `lab CMD: message` and exits with its code; anything else is a bug and keeps its stack.
//   2   the input (flags, lab file, a value out of range) or the machine (no engine, no root,
//       a missing tool, a sysctl the kernel refuses): every point would fail alike
//   1   a point could not be run (a tool crashed, the server died): finished points are kept
//   130 interrupted (Ctrl-C, SIGTERM)

export type ExitCode = 1 | 2 | 130;

export class LabError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Bad input: a flag, a lab file, a value. Exit 2. */
export class InputError extends LabError {
  constructor(message: string) {
    super(message, 2);
  }
}

/** A run folder that is not one, or records that cannot be read or compared. Exit 2. */
export class SweepError extends InputError {}

/** The machine cannot run this (no engine, no root, a missing tool or image). Exit 2. */
export class EnvironmentError extends LabError {
  constructor(message: string) {
    super(message, 2);
  }
}

/** A point failed for a reason that is not the input: exit 1, finished points kept. */
export class PointError extends LabError {
  constructor(message: string) {
    super(message, 1);
  }
}

/**
 * A clean-up (`lab down`, a lab's destroy) removed what it could and not all of it: `removed`
 * went, each line of `left` names one thing that did not and why. Exit 1.
 */
export class CleanupError extends LabError {
  constructor(
    readonly removed: number,
    readonly left: string[],
  ) {
    super(`could not remove ${left.length} thing(s): ${left.join('; ')}`, 1);
  }
}

export const isLabError = (err: unknown): err is LabError => err instanceof LabError;
