// Entry of the ARM executable: one binary for two programs, so the phone carries
// one Node runtime, not two. Invoked through its e911ctl symlink it is the CLI;
// otherwise it is the agent. `--check-native` loads every addon in lib/ and says
// whether it fits this runtime; `--version` names the versions inside.
import path from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { checkCarried, nativeDir } from './native.js';

/**
 * V8 flags of the phone's runtime, set here because node refuses them in NODE_OPTIONS and a
 * single executable takes none on its command line. Set before the agent's modules are
 * evaluated (main.js is imported below, on demand), they apply to all its code. `--no-opt`:
 * no optimising compiler, whose code and compile-time memory was about 9 MB of idle RSS
 * (docs/performance.md, with the emergency benchmark's digit -> INVITE figures beside).
 */
export const RUNTIME_V8_FLAGS = ['--no-opt'];
for (const flag of RUNTIME_V8_FLAGS) setFlagsFromString(flag);

async function run(argv: string[], env: NodeJS.ProcessEnv): Promise<number | null> {
  const invokedAs = path.basename(argv[1] ?? '');
  const args = argv.slice(2);
  if (invokedAs.startsWith('e911ctl')) {
    const ctl = await import('../cli/e911ctl.js');
    return ctl.main(args, env);
  }
  if (args[0] === '--check-native') {
    const addons = checkCarried(env);
    const report = { dir: nativeDir(env), node: process.version, arch: process.arch, abi: process.versions.modules, addons };
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return addons.length > 0 && addons.every((a) => a.ok) ? 0 : 1;
  }
  if (args[0] === '--version') {
    const { AGENT_VERSION } = await import('../root.js');
    process.stdout.write(`e911-agent ${AGENT_VERSION} node ${process.version} ${process.platform}-${process.arch}\n`);
    return 0;
  }
  const agent = await import('../main.js');
  // The PJSIP addon, when built for this target, sits in lib/ like the others.
  await agent.main(args, { ...env, E911_VOICE_ADDON: env.E911_VOICE_ADDON || path.join(nativeDir(env), 'e911_voice.node') });
  // The agent runs until a signal; its own handlers exit.
  return null;
}

run(process.argv, process.env).then(
  (code) => {
    if (code !== null) process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`e911-agent: failed to start: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
