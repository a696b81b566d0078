/**
 * `labthings-ts init <folder>`: a project a newcomer can run at once. It copies
 * `templates/init/` (a Thing with a property, a setting, an action with progress and an
 * event; its config; a test of the Thing on its own and over HTTP; the tsconfig the
 * decorators need) and writes a package.json that depends on this labthings-ts, with
 * the same test tools this project is tested with.
 */
import { existsSync, readFileSync } from "node:fs";
import { cp, mkdir, readdir, rename, writeFile } from "node:fs/promises";
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { ArgumentError, parseArguments, reportFailure } from "./cli-errors.js";

export const INIT_USAGE = `Usage: labthings-ts init <folder> [options]

Make a new project in <folder> (new or empty): a Lamp Thing to change into your own
instrument (src/lamp.ts), the config that serves it (labthings.json), its tests
(test/lamp.test.ts) and a package.json whose 'npm start' and 'npm test' work at once.

Options:
      --name NAME     the package name (default: the folder's name)
      --from SPEC     where the project gets labthings-ts: a version range, a folder
                      or a .tgz (default: this copy: ^VERSION when installed from npm,
                      the folder of this clone otherwise)
  -h, --help          show this help`;

/** This package's root: `dist/src/cli/init.js` and `src/cli/init.ts` are both three levels down… */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) dir = dirname(dir);
  return dir;
}

interface OwnPackage {
  name: string;
  version: string;
  engines?: { node?: string };
  devDependencies?: Record<string, string>;
  overrides?: Record<string, string>;
  allowScripts?: Record<string, boolean>;
}

/** The new project's package.json. */
function projectPackage(name: string, dependency: string, own: OwnPackage, target: string): object {
  const tool = (dependency: string) => own.devDependencies?.[dependency] ?? "*";
  return {
    name,
    version: "0.1.0",
    private: true,
    type: "module",
    scripts: {
      start: "labthings-ts serve --config labthings.json",
      // Node's watch mode restarts the server (a clean shutdown) when a Thing's file changes.
      dev: "node --watch node_modules/labthings-ts/dist/src/cli/main.js serve --config labthings.json",
      test: "tsc --noEmit && vitest run",
    },
    engines: own.engines,
    dependencies: { "labthings-ts": dependency },
    // The versions labthings-ts itself is tested with.
    // vite 7 as well: vite 8 (oxc) leaves standard decorators untransformed for Node 20.
    devDependencies: {
      "@types/node": tool("@types/node"),
      typescript: tool("typescript"),
      vite: tool("vite"),
      vitest: tool("vitest"),
    },
    // Fastify's light-my-request 6.8 pulls in cookie@2, which wants Node 22: 6.6 runs on 20.
    ...(own.overrides?.["light-my-request"]
      ? { overrides: { "light-my-request": own.overrides["light-my-request"] } }
      : {}),
    // labthings-ts arrives built: its own `prepare` (a build from source) must not run.
    // npm names a file: dependency by its absolute location in this list.
    allowScripts: {
      ...own.allowScripts,
      [dependency.startsWith("file:")
        ? `file:${resolve(target, dependency.slice(5))}`
        : "labthings-ts"]: false,
    },
  };
}

/** Where the new project gets labthings-ts from when `--from` does not say. */
function defaultDependency(root: string, version: string, target: string): string {
  // Installed from the registry (inside node_modules): the same major and minor.
  if (root.split(sep).includes("node_modules")) return `^${version}`;
  // A clone: link to it, so the project runs the code the clone has.
  return `file:${relative(target, root) || "."}`;
}

/** `--from`: a range stays as it is; a folder or tarball becomes a `file:` path from the project. */
function dependencyFrom(spec: string, target: string): string {
  const looksLikePath = spec.startsWith(".") || isAbsolute(spec) || spec.endsWith(".tgz");
  if (!looksLikePath) return spec;
  return `file:${relative(target, resolve(spec)) || "."}`;
}

/** A folder name as an npm package name. */
function packageName(folder: string): string {
  const name = basename(resolve(folder))
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, "-")
    .replace(/^[._-]+/, "");
  return name || "my-lab";
}

/** Run `labthings-ts init`; sets process.exitCode (2: bad arguments or a folder in use). */
export async function init(args: string[]): Promise<void> {
  try {
    const { values, positionals } = parseArguments("init", {
      args,
      options: {
        name: { type: "string" },
        from: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      allowPositionals: true,
      strict: true,
    });
    if (values.help) {
      console.log(INIT_USAGE);
      return;
    }
    const [folder, ...extra] = positionals;
    if (folder === undefined) throw new ArgumentError("init", "give the folder to create");
    if (extra.length > 0) throw new ArgumentError("init", `unexpected argument '${extra[0]}'`);
    const target = resolve(folder);
    if (existsSync(target) && (await readdir(target)).length > 0) {
      throw new ArgumentError(
        "init",
        `${folder} is not empty: give a new folder (nothing in it is changed)`,
      );
    }
    const root = packageRoot();
    const own = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as OwnPackage;
    const dependency = values.from
      ? dependencyFrom(values.from, target)
      : defaultDependency(root, own.version, target);
    const name = values.name ?? packageName(folder);
    await mkdir(target, { recursive: true });
    await cp(join(root, "templates", "init"), target, { recursive: true });
    // npm leaves .gitignore files out of packages, so the template's is named gitignore.
    await rename(join(target, "gitignore"), join(target, ".gitignore"));
    await writeFile(
      join(target, "package.json"),
      `${JSON.stringify(projectPackage(name, dependency, own, target), null, 2)}\n`,
    );
    const shown = relative(process.cwd(), target) || ".";
    console.log(`Created ${shown}/: a Lamp Thing (src/lamp.ts), labthings.json and its tests.
labthings-ts comes from ${dependency}.

Next:
  cd ${shown}
  npm install
  npm start      # serves the Lamp: http://127.0.0.1:5000/ (dashboard) and /docs
  npm run dev    # the same, restarted whenever you save a change
  npm test       # type-checks, then tests the Lamp on its own and over HTTP`);
  } catch (error) {
    reportFailure(error);
  }
}
