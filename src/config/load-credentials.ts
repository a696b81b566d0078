/**
 * The secrets a config names by file: bearer tokens with their roles (`auth`), the TLS
 * certificate and key (`tls`), and any other secret (a directory token, a broker password). Each file is read relative to the config file's folder,
 * and every mistake is a ConfigError naming the key and the file.
 */
import { readFile } from "node:fs/promises";
import { ConfigError } from "../errors.js";
import type { AccessToken } from "../http/authentication.js";
import { checkTlsPair, type TlsOptions } from "../http/tls.js";
import type { ServerConfig } from "./config-schema.js";
import { resolveConfigPath } from "./load-config.js";

/**
 * Every accepted token: LABTHINGS_TOKEN (else `auth.tokenFile`) as the operator's, plus
 * `auth.tokens`; none means no authentication.
 */
export async function readAccessTokens(
  config: ServerConfig,
  baseDir: string,
  environment: NodeJS.ProcessEnv = process.env,
): Promise<AccessToken[]> {
  const tokens: AccessToken[] = [];
  const fromEnvironment = environment.LABTHINGS_TOKEN?.trim();
  if (fromEnvironment) tokens.push({ token: fromEnvironment, role: "operator" });
  else if (config.auth?.tokenFile !== undefined) {
    const token = await readSecretFile(baseDir, config.auth.tokenFile, "auth.tokenFile");
    tokens.push({ token, role: "operator" });
  }
  for (const [index, { file, role }] of (config.auth?.tokens ?? []).entries()) {
    tokens.push({ token: await readSecretFile(baseDir, file, `auth.tokens.${index}.file`), role });
  }
  if (config.auth && tokens.length === 0) {
    throw new ConfigError("auth", "give tokenFile or tokens (or set LABTHINGS_TOKEN)");
  }
  return tokens;
}

/** The certificate and key of `tls`, read and checked to belong together; undefined without `tls`. */
export async function readTlsFiles(
  config: ServerConfig,
  baseDir: string,
): Promise<TlsOptions | undefined> {
  if (!config.tls) return undefined;
  const certPath = resolveConfigPath(baseDir, config.tls.certFile);
  const keyPath = resolveConfigPath(baseDir, config.tls.keyFile);
  const tls = {
    cert: await readConfigFileBytes(certPath, "tls.certFile"),
    key: await readConfigFileBytes(keyPath, "tls.keyFile"),
  };
  checkTlsPair(tls, {
    cert: { key: "tls.certFile", name: certPath },
    key: { key: "tls.keyFile", name: keyPath },
  });
  return tls;
}

/** A secret kept in a file named by the config (a token, a password): trimmed, never empty. */
export async function readSecretFile(baseDir: string, path: string, key: string): Promise<string> {
  const file = resolveConfigPath(baseDir, path);
  const token = (await readConfigFileBytes(file, key)).toString("utf8").trim();
  if (token === "") throw new ConfigError(key, `${file} is empty`);
  return token;
}

async function readConfigFileBytes(file: string, key: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (error) {
    throw new ConfigError(key, `cannot read ${file}: ${(error as Error).message}`);
  }
}
